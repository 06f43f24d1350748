import t from 'tap';
import { z } from 'zod';
import { bytes, count, fraction, hours, kbps, megabytes, ms, percent, seconds } from '../../src/config/fields.js';
import { configSchema } from '../../src/config/schema.js';
import { accessFields } from '../../src/config/sections/access.js';
import { audioFields } from '../../src/config/sections/audio.js';
import { clusterFields } from '../../src/config/sections/cluster.js';
import { destinationFields } from '../../src/config/sections/destinations.js';
import { httpFields } from '../../src/config/sections/http.js';
import { limitFields } from '../../src/config/sections/limits.js';
import { loggingFields } from '../../src/config/sections/logging.js';
import { overloadFields } from '../../src/config/sections/overload.js';
import { pushFields } from '../../src/config/sections/pushes.js';
import { recordingFields } from '../../src/config/sections/recordings.js';
import { stateFields } from '../../src/config/sections/state.js';
import { storageFields } from '../../src/config/sections/storage.js';
import { thumbnailFields } from '../../src/config/sections/thumbnails.js';
import { transcodingFields } from '../../src/config/sections/transcoding.js';
import { webhookFields } from '../../src/config/sections/webhooks.js';
import { webRtcFields } from '../../src/config/sections/webrtc.js';

const messages = (schema: z.ZodType, value: unknown): string[] => {
  const result = schema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.code}: ${issue.message}`);
};
const probes = [undefined, -1, 0, 0.5, 1, 59.5, 60, 61, 1e20, '5', null, true];

t.test('a whole-number builder is the int/min/max/default/describe chain it replaces', async (t) => {
  for (const [name, build] of Object.entries({ ms, seconds, bytes, kbps, count })) {
    const field = build(1, 60, 10, 'what it sets');
    const chain = z.number().int().min(1).max(60).default(10).describe('what it sets');
    t.equal(field.description, 'what it sets');
    t.equal(field.parse(undefined), 10, 'the default when not given');
    for (const value of probes) t.same(messages(field, value), messages(chain, value), `${name}: ${value}`);
    t.same(z.toJSONSchema(field), z.toJSONSchema(chain));
  }
  t.not(messages(ms(1, 60, 10), 0.5).length, 0, 'fractions refused');
});

t.test('hours, percent and fraction take fractions', async (t) => {
  for (const [name, build] of Object.entries({ hours, percent, fraction })) {
    const field = build(0, 60, 1, 'share');
    const chain = z.number().min(0).max(60).default(1).describe('share');
    t.equal(field.parse(0.5), 0.5);
    for (const value of probes) t.same(messages(field, value), messages(chain, value), `${name}: ${value}`);
    t.same(z.toJSONSchema(field), z.toJSONSchema(chain));
  }
});

t.test('megabytes without a maximum has no upper bound', async (t) => {
  const field = megabytes(0, null, 512, 'free space');
  t.equal(field.parse(undefined), 512);
  t.equal(field.parse(1e12), 1e12);
  t.same(messages(field, -1), messages(z.number().int().min(0).default(512), -1));
  t.same(z.toJSONSchema(field), z.toJSONSchema(z.number().int().min(0).default(512).describe('free space')));
  t.equal(megabytes(0, 10, 5).safeParse(11).success, false, 'a maximum when given');
});

t.test('a field inside an object goes without a description', async (t) => {
  t.equal(ms(100, 60_000, 5000).description, undefined);
  t.same(z.toJSONSchema(ms(100, 60_000, 5000)), z.toJSONSchema(z.number().int().min(100).max(60000).default(5000)));
});

t.test('the sections make the schema: every key in one section only, in their order', async (t) => {
  const sections = [
    httpFields,
    accessFields,
    webhookFields,
    limitFields,
    overloadFields,
    destinationFields,
    loggingFields,
    webRtcFields,
    pushFields,
    transcodingFields,
    audioFields,
    recordingFields,
    storageFields,
    thumbnailFields,
    clusterFields,
    stateFields,
  ];
  const keys = sections.flatMap((fields) => Object.keys(fields));
  t.same(keys, Object.keys(configSchema.shape));
  t.equal(new Set(keys).size, keys.length, 'no key given by two sections (the later would replace the earlier)');
});
