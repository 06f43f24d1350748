import t from 'tap';
import { RtmpError, RtmpPublisher, type RtmpPublishOptions } from '../../src/rtmp/client.js';
import type { Amf0Value } from '../../src/rtmp/amf0.js';
import { RtmpReceiver, type RtmpMediaMessage, type RtmpPublish } from '../helpers/rtmp-receiver.js';
import { freePort } from '../helpers/rtmp-server.js';

let receiver: RtmpReceiver;
t.before(async () => {
  receiver = await RtmpReceiver.start();
});
t.teardown(() => receiver.close());

const options = (overrides: Partial<RtmpPublishOptions> = {}): RtmpPublishOptions => ({
  protocol: 'rtmp',
  address: '127.0.0.1',
  port: receiver.port,
  host: 'localhost',
  app: 'live/instance',
  tcUrl: `rtmp://localhost:${receiver.port}/live/instance`,
  streamName: 'stream1?token=abc',
  flashVer: 'FMLE/3.0 (compatible; test)',
  timeoutMs: 2000,
  ...overrides,
});

t.test('publishes: connect carries app, tcUrl and flashVer; the server gets metadata and media in order', async (t) => {
  const publishes: RtmpPublish[] = [];
  const media: RtmpMediaMessage[] = [];
  const metadata: Record<string, Amf0Value>[] = [];
  receiver.on('publish', (p) => publishes.push(p));
  receiver.on('media', (m) => media.push(m));
  receiver.on('metadata', (_p, m) => metadata.push(m));
  const ended = new Promise<void>((resolve) => receiver.once('end', () => resolve()));

  const client = await RtmpPublisher.publish(options());
  t.match(publishes, [{ app: 'live/instance', tcUrl: `rtmp://localhost:${receiver.port}/live/instance`, flashVer: 'FMLE/3.0 (compatible; test)', streamName: 'stream1?token=abc' }]);
  client.writeMetadata({ width: 1280, height: 720 });
  client.writeVideo(0, Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0]), Buffer.alloc(9000, 3)]));
  client.writeAudio(21, Buffer.from([0xaf, 1, 5, 5]));
  await new Promise((r) => setTimeout(r, 100));
  t.same(metadata, [{ width: 1280, height: 720 }]);
  t.same(media.map((m) => [m.kind, m.timestamp, m.key, m.data.length]), [['video', 0, true, 9005], ['audio', 21, false, 4]]);
  t.ok(client.bytesWritten > 9009);
  await client.close();
  await ended;
  t.ok(client.closed);
  receiver.removeAllListeners();
});

t.test('a refused publish rejects with the server code and description', async (t) => {
  receiver.refuse = { code: 'NetStream.Publish.BadName', description: 'Stream already publishing' };
  t.teardown(() => (receiver.refuse = undefined));
  const error = await RtmpPublisher.publish(options()).catch((e: unknown) => e);
  t.type(error, RtmpError);
  t.equal((error as RtmpError).message, 'NetStream.Publish.BadName: Stream already publishing');
  t.equal((error as RtmpError).code, 'NetStream.Publish.BadName');
});

t.test('a closed port rejects with the connection error', async (t) => {
  const error = await RtmpPublisher.publish(options({ port: await freePort() })).catch((e: unknown) => e);
  t.match(String(error), /ECONNREFUSED/);
});

t.test('a server that never answers the handshake times out', async (t) => {
  const { createServer } = await import('node:net');
  const silent = createServer((socket) => socket.resume()); // reads, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { silent.close(() => r()); }));
  const started = Date.now();
  const error = await RtmpPublisher.publish(options({ port: (silent.address() as { port: number }).port, timeoutMs: 300 })).catch((e: unknown) => e);
  t.match(String(error), /did not accept the publish within 300 ms/);
  t.ok(Date.now() - started < 1500);
});
