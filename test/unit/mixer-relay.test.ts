import { EventEmitter } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import t from 'tap';
import type { Publisher } from '../../src/publishers/publisher.js';
import { relayStream } from '../../src/mixers/relay.js';
import type { MediaSink, VideoFrame } from '../../src/media/sinks.js';

t.test(
  'a relayed frame crosses between threads as its own bytes, not the pool its bitstream is a view of',
  async (t) => {
    let sink: MediaSink | undefined;
    const publisher = Object.assign(new EventEmitter(), {
      attach: (s: MediaSink) => ((sink = s), true),
      detach: () => (sink = undefined),
      audioPcm: () => undefined,
    }) as unknown as Publisher;
    const { port1, port2 } = new MessageChannel();
    relayStream(publisher, port1);
    port2.postMessage({ t: 'replay' });
    await t.resolves(
      new Promise<void>((resolve) => {
        const waiting = setInterval(() => sink && (clearInterval(waiting), resolve()), 1);
      }),
    );
    // A small frame, as the depacketizer makes them: a view into Node's 8 KB pool.
    const pool = Buffer.from('a small frame of 24 bytes');
    t.ok(pool.buffer.byteLength >= 8192, "the bitstream is a view of Node's pool");
    const frame: VideoFrame = {
      codec: 'H264',
      key: true,
      captureMs: 1,
      timestamp: 90,
      packets: 1,
      bytes: pool.length,
      bitstream: () => pool,
    };
    const received = new Promise<{ data: Uint8Array }>((resolve) => port2.once('message', resolve));
    sink!.frame(frame);
    const { data } = await received;
    t.equal(Buffer.from(data).toString(), 'a small frame of 24 bytes', 'the same bytes');
    t.equal(data.buffer.byteLength, pool.length, 'and only they crossed');
    t.equal(
      pool.toString(),
      'a small frame of 24 bytes',
      "the publisher's own frame is left as it was for its other sinks",
    );
    port1.close();
    port2.close();
  },
);
