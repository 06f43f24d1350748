import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { colourLook, loadFixture } from '../../kit/fixture.js';
import { colourAt, decodePicture, looksLike } from '../../kit/pictures.js';
import { waitFor } from '../../kit/processes.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { IN_WORKERS, startGateway } from '../helpers/gateway.js';
import { keyframeCached } from '../helpers/pushes.js';

// Thumbnails of three real WebRTC publishers (werift over WHIP), each of one colour, taken every
// 2 s in worker threads and written by the main thread: each file is a JPEG of its own stream's
// colour, replaced as the streams' keyframes come (every 2 s), and served by the GET.

const FIXTURES = join(import.meta.dirname, '..', '..', '.bench', 'fixture');
const COLOURS = { red: '#ff0000', green: '#00ff00', blue: '#0000ff' };

t.test(
  'every 2 s each stream gets a JPEG of its own colour, replaced at its next keyframe, served by GET',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'thumbnails-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const gw = await startGateway({ ...IN_WORKERS, thumbnail_interval_s: 2, thumbnail_dir: dir });
    t.teardown(() => gw.close());
    for (const [name, colour] of Object.entries(COLOURS)) {
      const fixture = loadFixture(FIXTURES, colourLook(colour, '320x240', 440));
      const publisher = await SyntheticPublisher.publish(fixture, gw.baseUrl, name, { audio: false });
      t.teardown(() => publisher.stop());
    }
    for (const name of Object.keys(COLOURS)) await keyframeCached(gw, name);

    const file = (name: string): string => join(dir, `${name}.jpg`);
    const exists = async (path: string): Promise<boolean> => (await stat(path).catch(() => undefined)) !== undefined;
    for (const name of Object.keys(COLOURS)) await waitFor(`a thumbnail of ${name}`, () => exists(file(name)), 15_000);
    for (const [name, colour] of Object.entries(COLOURS)) {
      const picture = await decodePicture(file(name));
      t.match(picture, { width: 320, height: 240 }, `${name}: a JPEG of the stream's size`);
      const centre = colourAt(picture, 0.5, 0.5);
      t.ok(looksLike(centre, colour), `${name}'s thumbnail is ${colour}: ${centre.join(',')}`);
    }

    // The fixture has a keyframe every 2 s: the next thumbnail replaces the file (a new inode by the rename).
    const before = await stat(file('red'));
    await waitFor(
      'the red thumbnail replaced',
      async () => {
        const now = await stat(file('red'));
        return now.ino !== before.ino && now.mtimeMs > before.mtimeMs;
      },
      10_000,
    );
    t.ok((await decodePicture(file('red'))).width === 320, 'the new one is a whole JPEG');
    t.same(
      (await readdir(dir)).sort(),
      ['blue.jpg', 'green.jpg', 'red.jpg'],
      'one file per stream, nothing left aside',
    );

    const res = await fetch(`${gw.baseUrl}/rest-api/stream/thumbnail?streamName=green`);
    t.equal(res.status, 200);
    t.equal(res.headers.get('content-type'), 'image/jpeg');
    t.equal(res.headers.get('cache-control'), 'no-cache');
    const modified = Date.parse(res.headers.get('last-modified') ?? '');
    t.ok(Math.abs(Date.now() - modified) < 10_000, `Last-Modified is recent: ${res.headers.get('last-modified')}`);
    const served = join(dir, 'served.jpg.tmp');
    await writeFile(served, Buffer.from(await res.arrayBuffer()));
    t.ok(looksLike(colourAt(await decodePicture(served), 0.5, 0.5), COLOURS.green), 'the GET serves green');

    // A parameter of the page's own (a cache buster) is left alone.
    const busted = await fetch(`${gw.baseUrl}/rest-api/stream/thumbnail?streamName=green&t=${Date.now()}`);
    t.equal(busted.status, 200, 'another parameter beside streamName is left alone');
    await busted.arrayBuffer();

    const missing = await fetch(`${gw.baseUrl}/rest-api/stream/thumbnail?streamName=nobody`);
    t.equal(missing.status, 404);
    t.match(await missing.json(), { error: 'not_found', message: /nobody/, field: 'streamName' });
    const bad = [
      ['', 'streamName'],
      ['?streamName=', 'streamName'],
      ['?streamName=a%2Fb', 'streamName'],
    ];
    for (const [query, field] of bad) {
      const refused = await fetch(`${gw.baseUrl}/rest-api/stream/thumbnail${query}`);
      t.equal(refused.status, 400, `"${query}": 400`);
      t.match(await refused.json(), { error: 'invalid_request', field }, `"${query}": names ${field}`);
    }
  },
);

t.test('with thumbnails off (the default) nothing is written and the GET answers 404', async (t) => {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  const res = await fetch(`${gw.baseUrl}/rest-api/stream/thumbnail?streamName=cam`);
  t.equal(res.status, 404);
  t.match(await res.json(), { error: 'not_found', message: /cam.*thumbnail_interval_s is 0/ });
});
