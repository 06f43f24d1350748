import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { keyframeCached } from '../helpers/pushes.js';
import t from 'tap';
import WebSocket from 'ws';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { chromiumOffer } from '../helpers/offers.js';
import { waitFor } from '../../kit/processes.js';
import { RtmpReceiver } from '../../kit/rtmp-receiver.js';
import { testFixture } from '../helpers/synthetic.js';

// Nothing a client sends stops the gateway: malformed WebSocket frames, oversize bodies, bad names
// and offers, too many sessions. A push runs throughout and must not notice.

let gw: TestGateway;
let receiver: RtmpReceiver;
let publisher: SyntheticPublisher;
let pushId: string;
t.before(async () => {
  receiver = await RtmpReceiver.start();
  gw = await startGateway({ limit_sessions_per_client: 1000 });
  publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'live');
  await keyframeCached(gw, 'live');
  const res = await gw.post('/rest-api/push/startup', { streamName: 'live', rtmpUrl: receiver.url() });
  pushId = res.body.mediaSessionId;
});
t.teardown(async () => {
  await publisher?.stop();
  await gw?.close();
  await receiver?.close();
});

/** Opens a WebSocket by hand, sends `frame` raw, and answers the close code the gateway sent (or 'none'). */
async function rawFrame(frame: Buffer): Promise<number | 'none'> {
  const { port } = new URL(gw.baseUrl);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let received = Buffer.alloc(0);
  socket.on('data', (d) => (received = Buffer.concat([received, d])));
  await new Promise((r) => setTimeout(r, 100));
  const headerEnd = received.indexOf('\r\n\r\n');
  received = received.subarray(headerEnd + 4);
  socket.write(frame);
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, 3000);
  });
  // The server's frames: the hello message, then a close frame (opcode 8) carrying the code.
  let at = 0;
  while (at + 2 <= received.length) {
    const opcode = received[at]! & 0x0f;
    let length = received[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = received.readUInt16BE(offset);
      offset += 2;
    }
    if (opcode === 8) return length >= 2 ? received.readUInt16BE(offset) : 1005;
    at = offset + length;
  }
  return 'none';
}

const mask = Buffer.from([1, 2, 3, 4]);
function masked(first: number, payload: Buffer): Buffer {
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([first, 0x80 | payload.length]), mask, body]);
}

t.test('malformed WebSocket frames end only their own connection, with the right close code', async (t) => {
  const oversize = Buffer.alloc(14);
  oversize[0] = 0x81;
  oversize[1] = 0x80 | 127;
  oversize.writeBigUInt64BE(1n << 40n, 2);
  const closeCode = (code: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    return b;
  };
  const frames: [string, Buffer, number][] = [
    ['an unmasked 3-byte frame', Buffer.from([0x81, 0x01, 0x61]), 1002],
    ['a frame announcing 1 TiB', oversize, 1009],
    ['invalid UTF-8 text', masked(0x81, Buffer.from([0xff, 0xfe, 0xfd])), 1007],
    ['a reserved opcode', masked(0x83, Buffer.from('x')), 1002],
    ['close code 999', masked(0x88, closeCode(999)), 1002],
    ['a continuation with nothing to continue', masked(0x80, Buffer.from('x')), 1002],
    ['reserved bits set', masked(0xc1, Buffer.from('x')), 1002],
  ];
  for (const [what, frame, code] of frames) {
    t.equal(await rawFrame(frame), code, what);
    t.equal((await fetch(gw.baseUrl + '/health')).status, 200, `alive after ${what}`);
  }
  const before = (gw.pushService.get(pushId).toJSON() as any).counters.frames as number;
  await waitFor(
    'frames after the bad ones',
    () => (gw.pushService.get(pushId).toJSON() as any).counters.frames > before,
    10000,
  );
  const push = gw.pushService.get(pushId).toJSON() as any;
  t.equal(push.state, 'running', 'the push runs on');
  t.ok(push.counters.frames > before, `and keeps sending (${before} → ${push.counters.frames} frames)`);
});

t.test('a WebSocket message over 64 KiB closes that connection with 1009', async (t) => {
  const ws = new WebSocket(gw.baseUrl.replace('http', 'ws') + '/ws');
  ws.on('error', () => {});
  await new Promise((r) => ws.once('open', r));
  const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
  ws.send('x'.repeat(65 * 1024));
  t.equal(await code, 1009);
});

t.test('bodies over the limits are 413: REST 64 KiB, an offer 128 KiB', async (t) => {
  const rest = await fetch(gw.baseUrl + '/rest-api/push/find_all', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pad: 'x'.repeat(65 * 1024) }),
  });
  t.equal(rest.status, 413);
  t.match(await rest.json(), { error: 'payload_too_large', field: 'body' });
  const offer = await fetch(gw.baseUrl + '/whip/big', {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: 'v=0\r\n' + 'a=x\r\n'.repeat(30_000),
  });
  t.equal(offer.status, 413);
});

t.test('one stream-name rule on every path: "." and ".." refused, 128 characters accepted', async (t) => {
  // By hand: fetch would resolve the dot segments itself, as a WHIP client given such a Location does.
  const whip = (name: string): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(gw.baseUrl);
      const req = request(
        { hostname, port, path: `/whip/${name}`, method: 'POST', headers: { 'content-type': 'application/sdp' } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.end('v=0\r\n');
    });
  for (const name of ['.', '%2e', '..', '%2e%2e', 'a'.repeat(129), 'bad%20name']) {
    const res = await whip(name);
    t.equal(res.status, 400, `WHIP ${name.slice(0, 20)}`);
    t.equal(res.body?.field, 'streamName');
  }
  const long = await whip('a'.repeat(128));
  t.equal(long.body?.field, 'offer', 'a 128-character name passes (the placeholder offer does not)');
  t.match((await gw.post('/rest-api/push/startup', { streamName: '..', rtmpUrl: receiver.url() })).body, {
    field: 'streamName',
  });
  t.equal(
    (await gw.post('/rest-api/push/startup', { streamName: 'a'.repeat(128), rtmpUrl: receiver.url() })).status,
    404,
    'REST: 128 characters is a valid name',
  );
});

t.test('offers the WebRTC engine cannot take are 400 naming what is wrong, checked before it sees them', async (t) => {
  const good = chromiumOffer();
  const cases: [string, string, RegExp][] = [
    ['no a=mid', good.replace(/a=mid:\d\r\n/g, ''), /no a=mid/],
    ['a bare a=candidate', good.replace('a=rtcp-mux\r\n', 'a=candidate\r\na=rtcp-mux\r\n'), /malformed a=candidate/],
    [
      'a .local candidate cut short',
      good.replace('a=rtcp-mux\r\n', 'a=candidate:1 1 udp 1 x.local\r\na=rtcp-mux\r\n'),
      /malformed a=candidate/,
    ],
    ['no media line', 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', /no media line/],
    [
      'a data channel the old way (DTLS/SCTP 5000)',
      good.replace('m=audio 9 UDP/TLS/RTP/SAVPF 111', 'm=application 9 DTLS/SCTP 5000'),
      /data channels must be UDP\/DTLS\/SCTP webrtc-datachannel/,
    ],
    ['no fingerprint', good.replace(/a=fingerprint:.*\r\n/g, ''), /fingerprint/],
    ['no ICE password', good.replace(/a=ice-pwd:.*\r\n/g, ''), /ice-pwd/],
    ['BUNDLE naming a missing mid', good.replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0 1 7'), /BUNDLE names mid 7/],
    ['the same mid twice', good.replace('a=mid:1', 'a=mid:0'), /used twice/],
    ['a payload type over 127', good.replace('SAVPF 96 102', 'SAVPF 96 102 300'), /payload types/],
    ['binary junk', '\u0000\u0001v=0', /v=0/],
  ];
  for (const [what, offer, message] of cases) {
    const res = await fetch(`${gw.baseUrl}/whip/bad-offer`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: offer,
    });
    t.equal(res.status, 400, what);
    t.match(await res.json(), { field: 'offer', message }, what);
  }
  t.equal(gw.publishers.get('bad-offer'), undefined);
});

t.test('limits: sessions per client 429, publishers and pushes 503 with Retry-After, per stream 429', async (t) => {
  const tight = await startGateway({
    limit_sessions_per_client: 2,
    limit_publishers: 1,
    limit_transponders: 1,
    limit_transponders_per_stream: 1,
  });
  t.teardown(() => tight.close());
  const open = (): Promise<string> =>
    new Promise((resolve) => {
      const ws = new WebSocket(tight.baseUrl.replace('http', 'ws') + '/ws');
      t.teardown(() => ws.close());
      ws.on('open', () => resolve('open'));
      ws.on('unexpected-response', (_q, res) => resolve(String(res.statusCode)));
      ws.on('error', () => resolve('error'));
    });
  t.equal(await open(), 'open');
  t.equal(await open(), 'open');
  t.equal(await open(), '429', 'a third session from the same address');

  const first = await SyntheticPublisher.publish(testFixture(), tight.baseUrl, 'one').catch((e: Error) => e);
  t.match(first instanceof Error ? first.message : 'published', /429/, 'WHIP counts against the same per-client limit');
});

t.test('limits: the publisher limit answers 503, the push limits 503 and 429', async (t) => {
  const tight = await startGateway({ limit_publishers: 1, limit_transponders: 2, limit_transponders_per_stream: 1 });
  t.teardown(() => tight.close());
  const one = await SyntheticPublisher.publish(testFixture(), tight.baseUrl, 'one');
  t.teardown(() => one.stop());
  const second = await fetch(`${tight.baseUrl}/whip/two`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: chromiumOffer(),
  });
  t.equal(second.status, 503);
  t.ok(Number(second.headers.get('retry-after')) > 0, 'Retry-After');
  await keyframeCached(tight, 'one');
  t.equal((await tight.post('/rest-api/push/startup', { streamName: 'one', rtmpUrl: receiver.url() })).status, 200);
  const again = await tight.post('/rest-api/push/startup', { streamName: 'one', rtmpUrl: receiver.url('other') });
  t.equal(again.status, 429, 'a second push of one stream');
  t.match(again.body.message, /limit_transponders_per_stream/);
});

t.test('a session that never completes ICE is closed after webrtc_connect_timeout_ms', async (t) => {
  const quick = await startGateway({ webrtc_connect_timeout_ms: 1000 });
  t.teardown(() => quick.close());
  const res = await fetch(`${quick.baseUrl}/whip/silent`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp' },
    body: chromiumOffer(),
  });
  t.equal(res.status, 201);
  t.ok(quick.publishers.get('silent'), 'published, waiting for ICE');
  await waitFor('the session to be closed', () => quick.publishers.get('silent') === undefined, 15000);
  t.equal(quick.publishers.get('silent'), undefined, 'closed, its socket freed');
});

t.test('nothing was left running by refused requests', async (t) => {
  t.equal(gw.ffmpeg.count, 1, "only the running push's ffmpeg");
});
