import { readFileSync } from 'node:fs';
import t from 'tap';
import { envName, envOverrides } from '../../src/config/load.js';
import { configReference, withReference } from '../../src/config/reference.js';
import { configSchema } from '../../src/config/schema.js';

const page = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

t.test(
  "docs/configuration.md's configuration table is the one the schema makes (npm run config-reference)",
  async (t) => {
    t.equal(withReference(page), page);
  },
);

t.test('the table has a row for every key, with its variable, default and description', async (t) => {
  const table = configReference();
  const keys = Object.keys(configSchema.shape);
  t.equal(table.split('\n').length, keys.length + 2);
  t.match(table, '| `http_port` | `GATEWAY_HTTP_PORT` | `8080` | HTTP port |');
  t.match(table, '| `rtmp_push_auto_start_url` | `GATEWAY_RTMP_PUSH_AUTO_START_URL` | `""` |');
  t.match(table, '| `webrtc_video_codecs` | `GATEWAY_WEBRTC_VIDEO_CODECS` | `["H264","VP8","VP9","AV1"]` |');
  t.match(
    table,
    '`{id, secret \\| secret_env \\| secret_file, scope: [control, metrics]}`',
    'a | in a description does not end the cell',
  );
});

t.test('a stale table is told apart', async (t) => {
  const stale = page.replace(
    '| `http_port` | `GATEWAY_HTTP_PORT` | `8080` |',
    '| `http_port` | `GATEWAY_HTTP_PORT` | `8081` |',
  );
  t.not(stale, page);
  t.equal(withReference(stale), page, 'made anew, the table is right again');
  t.throws(() => withReference('# no table here'), /no <!-- config-reference/);
});

t.test('the variable the table names is the one the gateway reads', async (t) => {
  for (const key of Object.keys(configSchema.shape)) {
    t.ok(key in envOverrides({ [envName(key)]: '1' }) || key in envOverrides({ [envName(key)]: '"x"' }), key);
  }
});
