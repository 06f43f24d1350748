import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { probe } from '../../kit/probe.js';
import { startProcess, stopProcess, waitFor } from '../../kit/processes.js';
import { freePort } from '../../kit/rtmp-server.js';
import { startGateway } from '../helpers/gateway.js';
import { answerDeviations } from '../helpers/sdp-lines.js';

// Clients nobody here wrote: GStreamer's webrtcbin (Debian's 1.22, through kit/gst-webrtc.py)
// publishes H.264 and Opus over WHIP and watches over WHEP; the push goes to ffmpeg's own RTMP
// server (`-listen 1`), not nginx-rtmp, and ffprobe reads what it received.

const GST = join(import.meta.dirname, '..', '..', 'kit', 'gst-webrtc.py');

interface GstClient {
  child: ChildProcess;
  events: Record<string, any>[];
}

function gst(role: 'publish' | 'view', url: string): GstClient {
  const child = startProcess('/usr/bin/python3', [GST, role, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Record<string, any>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      // GStreamer's own lines
    }
  });
  child.stderr!.resume();
  return { child, events };
}

const last = (client: GstClient, event: string): Record<string, any> | undefined =>
  client.events.filter((e) => e.event === event).at(-1);

t.test(
  "GStreamer publishes over WHIP, H.264 passes through to ffmpeg's RTMP server, and GStreamer watches over WHEP",
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'gst-'));
    const gw = await startGateway();
    const clients: ChildProcess[] = [];
    let listener: ChildProcess | undefined;
    t.teardown(async () => {
      for (const child of clients) await stopProcess(child, 5000);
      if (listener) await stopProcess(listener, 5000);
      await gw.close();
      await rm(dir, { recursive: true, force: true });
    });

    const publisher = gst('publish', `${gw.baseUrl}/whip/gst`);
    clients.push(publisher.child);
    const answer = await waitFor(
      'the WHIP answer',
      async () => {
        const error = last(publisher, 'error');
        if (error)
          throw new Error(`gst-webrtc publish: ${error.message} ${JSON.stringify(last(publisher, 'answer') ?? {})}`);
        return last(publisher, 'answer');
      },
      20_000,
    );
    t.equal(answer.status, 201);
    t.same(
      answerDeviations(last(publisher, 'offer')!.sdp, answer.sdp),
      [],
      "the WHIP answer follows GStreamer's offer line by line",
    );
    await waitFor('GStreamer connected', async () => last(publisher, 'connected'), 20_000);
    await waitFor('a keyframe', async () => gw.publishers.get('gst')?.keyframe !== undefined, 15_000);
    const [stream] = (await gw.post('/rest-api/stream/find', { name: 'gst' })).body;
    t.match(stream, {
      state: 'publishing',
      video: { codec: 'H264', width: 1280, height: 720 },
      audio: { codec: 'opus' },
    });

    // ffmpeg as the RTMP server: it takes one publish and writes what it receives.
    const port = await freePort();
    const file = join(dir, 'received.flv');
    listener = startProcess('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-listen',
      '1',
      '-f',
      'flv',
      '-i',
      `rtmp://127.0.0.1:${port}/live/gst_key`,
      '-c',
      'copy',
      '-t',
      '6',
      '-y',
      file,
    ]);
    // Listening, as the kernel's table says (a connection to find out would be the one it takes).
    const listening = async (): Promise<boolean> =>
      (await readFile('/proc/net/tcp', 'utf8'))
        .split('\n')
        .some((line) => line.includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`));
    await waitFor('ffmpeg to listen', listening, 10_000);
    const push = await gw.post('/rest-api/push/startup', {
      streamName: 'gst',
      rtmpUrl: `rtmp://127.0.0.1:${port}/live/gst_key`,
      rtmpTransponderFullUrl: true,
    });
    t.equal(push.status, 200, JSON.stringify(push.body));
    t.match(push.body, { transcoding: false, width: 1280, height: 720 });

    const viewer = gst('view', `${gw.baseUrl}/whep/gst`);
    clients.push(viewer.child);
    const viewed = await waitFor(
      'the WHEP answer',
      async () =>
        last(viewer, 'answer') ?? (last(viewer, 'error') && Promise.reject(new Error(last(viewer, 'error')!.message))),
      20_000,
    );
    t.equal(viewed.status, 201);
    t.same(
      answerDeviations(last(viewer, 'offer')!.sdp, viewed.sdp),
      [],
      "the WHEP answer follows GStreamer's offer line by line",
    );
    t.notMatch(viewed.sdp, /^m=\w+ 0 /m, 'audio and video both answered (its offer says opus/48000, without the /2)');
    await waitFor(
      'GStreamer decoding the stream',
      async () => {
        const counts = last(viewer, 'counts');
        return counts && counts.video > 30 && counts.audio > 20 ? counts : undefined;
      },
      20_000,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}: ${JSON.stringify(viewer.events.filter((e) => e.event !== 'counts').concat(last(viewer, 'counts') ?? []))}`,
      );
    });
    t.match(last(viewer, 'counts'), { width: 1280, height: 720 }, 'the viewer decodes 1280x720 H.264 and Opus');

    await waitFor('ffmpeg to have received 6 s and ended', async () => listener!.exitCode !== null, 30_000);
    t.equal(listener.exitCode, 0, "ffmpeg's RTMP server took the publish");
    const recorded = await probe(file);
    t.match(
      recorded.streams.find((s) => s.codec_type === 'video'),
      { codec_name: 'h264', width: 1280, height: 720 },
    );
    t.match(
      recorded.streams.find((s) => s.codec_type === 'audio'),
      { codec_name: 'aac' },
    );
    t.ok(recorded.video.length > 120, `${recorded.video.length} video frames received`);

    // Its stop: SIGTERM, on which it sends the WHIP DELETE.
    await stopProcess(publisher.child, 5000);
    await waitFor('the publish ended', async () => gw.publishers.get('gst') === undefined, 10_000);
    t.pass('the WHIP DELETE ended it');
  },
);
