import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { colourLook, loadFixture, type Fixture } from '../kit/fixture.js';
import { GatewayProcess } from '../kit/gateway-process.js';
import { now, sleep, waitFor } from '../kit/processes.js';
import type { RtmpMediaMessage, RtmpReceiver } from '../kit/rtmp-receiver.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { flvFileHeader, flvTag } from '../src/media/flv.js';
import { layoutSlots, type Slot } from '../src/mixers/layout.js';
import { CpuWindow } from './proc.js';
import type { Bench } from './report.js';

const SIZE = { width: 1280, height: 720 };
const run = promisify(execFile);
/** What the peers say a mixer takes: Web Call Server recommends 2 cores a mixer, LiveKit admits a RoomComposite job as 4 CPUs. */
const WCS_CORES = 2;
const LIVEKIT_CPUS = 4;

/**
 * The mixer: what 2 and 4 inputs of 720p30 cost made into one 720p30 picture (the gateway and every
 * ffmpeg, above the same gateway with the same streams and no mixer), how long from starting a
 * mixer and its push to its first picture at an RTMP server, and how long from adding an input
 * to the first picture at the server that shows it (read by decoding what arrived). Its own
 * gateway with one worker: a mixer takes the streams of its worker.
 */
export async function mixer(bench: Bench, fixture: Fixture, receiver: RtmpReceiver): Promise<void> {
  const { report, plan } = bench;
  console.log(
    `\nMixer: 720p30 inputs into one 720p30 picture, pushed to an RTMP server (${plan.pushSeconds} s a window)`,
  );
  const gateway = await GatewayProcess.start(join(bench.work, 'gateway-mixer.log'), {
    GATEWAY_WORKERS: '1',
    GATEWAY_LIMIT_MIXERS: '2',
    GATEWAY_TRANSCODING_PRESET: process.env.MIXER_PRESET,
  });
  const publishers: SyntheticPublisher[] = [];
  // Made (once, by an ffmpeg the thread waits for) before any publisher sends: the first input turns to it.
  const cyan = loadFixture(join(bench.work, 'fixture'), colourLook('#00ffff', '1280x720', 880));
  try {
    for (let i = 0; i < 4; i++) publishers.push(await SyntheticPublisher.publish(fixture, gateway.baseUrl, `in${i}`));
    await sleep(2000);
    const cpu = async (): Promise<number> => {
      const pids = [...(await gateway.ownPids()), ...(await gateway.ffmpegPids())];
      const window = new CpuWindow(pids);
      await sleep(plan.pushSeconds * 1000);
      return window.end().of(pids);
    };
    const without = await cpu();

    const askedAt = now();
    const firstPicture = nextVideo(receiver, 'mix');
    let sequenceHeader: Buffer | undefined;
    let audioHeader: Buffer | undefined;
    const headers = (message: RtmpMediaMessage): void => {
      if (message.publish.streamName !== 'mix' || !message.sequenceHeader) return;
      if (message.kind === 'video') sequenceHeader = message.data;
      else audioHeader = message.data;
    };
    receiver.on('media', headers);
    const started = await gateway.request('POST', '/rest-api/mixer/startup', {
      uri: 'mixer://mix',
      layout: 'grid',
      ...SIZE,
      fps: 30,
    });
    if (started.status !== 200)
      throw new Error(`mixer startup answered ${started.status}: ${JSON.stringify(started.body)}`);
    const push = await waitFor('the mixer publishing', async () => {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName: 'mix',
        rtmpUrl: `${receiver.url()}/mix`,
        rtmpTransponderFullUrl: true,
      });
      return reply.status === 200 ? reply : undefined;
    });
    report('mixer: start -> first picture at the RTMP server', (await firstPicture) - askedAt, 'ms', { max: 1000 });

    const add = async (stream: string): Promise<void> => {
      const reply = await gateway.request('POST', '/rest-api/mixer/add', {
        uri: 'mixer://mix',
        remoteStreamName: stream,
      });
      if (reply.status !== 200) throw new Error(`mixer add answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    };
    await add('in0');
    await add('in1');
    await sleep(2000);
    const two = (await cpu()) - without;
    await add('in2');
    await add('in3');
    await sleep(2000);
    const four = (await cpu()) - without;
    const cores = (percent: number): string =>
      `${(percent / 100).toFixed(2)} core (Web Call Server: ${WCS_CORES} cores a mixer; LiveKit: ${LIVEKIT_CPUS} CPUs a RoomComposite)`;
    console.log(`  2 inputs: ${cores(two)}\n  4 inputs: ${cores(four)}`);
    report('mixer: gateway and ffmpeg CPU, 2 inputs 720p30 -> 720p30', two / 100, 'core', { max: 0.6 });
    report('mixer: gateway and ffmpeg CPU, 4 inputs 720p30 -> 720p30', four / 100, 'core', { max: 1.0 });

    // A fifth input, one colour, so the pictures that show it can be told from those that do not.
    const colour = await SyntheticPublisher.publish(
      loadFixture(join(bench.work, 'fixture'), colourLook('#ff00ff', '1280x720', 660)),
      gateway.baseUrl,
      'magenta',
    );
    publishers.push(colour);
    await waitFor(
      'a keyframe of the fifth input',
      async () =>
        ((await gateway.request('POST', '/rest-api/stream/find', { name: 'magenta' })).body?.[0]?.keyframes ?? 0) > 0,
    );
    const slot = layoutSlots({ kind: 'grid' }, SIZE, 5)[4]!;
    receiver.off('media', headers);
    if (!sequenceHeader || !audioHeader) throw new Error("the mixer's sequence headers did not arrive");
    const watch = watchColour(receiver, 'mix', sequenceHeader, centre(slot), (r, g, b) => r > 200 && g < 60 && b > 200);
    await watch.decoding;
    const addedAt = now();
    await add('magenta');
    const shownAt = await watch.shown;
    report('mixer: input added -> shown at the RTMP server', shownAt - addedAt, 'ms', { max: 500 });

    // The first input turns cyan and its tone 880 Hz, picture and sound at the same moment: how long
    // until the output shows it, and how far apart its picture and sound are there.
    const first = layoutSlots({ kind: 'grid' }, SIZE, 5)[0]!;
    const recorder = recordFlv(receiver, 'mix', sequenceHeader, audioHeader);
    const watchCyan = watchColour(
      receiver,
      'mix',
      sequenceHeader,
      centre(first),
      (r, g, b) => r < 60 && g > 200 && b > 200,
    );
    await watchCyan.decoding;
    await recorder.started;
    const switched = await publishers[0]!.switchTo(cyan);
    const cyanAt = await watchCyan.shown;
    await sleep(1500);
    const sync = await avOffset(recorder.stop(join(bench.work, 'mixer-sync.flv')), first, 880);
    report('mixer: input frame -> output frame at the RTMP server', cyanAt - switched.videoDueAt, 'ms', { max: 150 });
    // Positive: the picture later than its sound.
    const offset = sync.pictureS - sync.soundS - (switched.videoDueAt - switched.audioDueAt) / 1000;
    report('mixer: an input picture against its sound in the output', Math.abs(offset) * 1000, 'ms', { max: 40 });
    console.log(
      `  (the picture ${offset >= 0 ? 'after' : 'before'} the sound by ${Math.abs(offset * 1000).toFixed(0)} ms)`,
    );
    bench.details.mixer = { withoutMixer: without, two, four, syncOffsetMs: offset * 1000 };
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: push.body.mediaSessionId });
  } finally {
    await Promise.all(publishers.map((p) => p.stop()));
    await gateway.stop();
  }
}

/** The centre of `slot`, as fractions of the output picture. */
const centre = (slot: Slot): { x: number; y: number } => ({
  x: (slot.x + slot.width / 2) / SIZE.width,
  y: (slot.y + slot.height / 2) / SIZE.height,
});

/** When the next video frame of `stream` arrives at the receiver. */
function nextVideo(receiver: RtmpReceiver, stream: string): Promise<number> {
  return new Promise((resolve) => {
    const listener = (message: RtmpMediaMessage): void => {
      if (message.publish.streamName !== stream || message.kind !== 'video' || message.sequenceHeader) return;
      receiver.off('media', listener);
      resolve(message.arrivalMs);
    };
    receiver.on('media', listener);
  });
}

/**
 * When the first picture of `stream` whose point (`x`, `y`, fractions) `matches` arrives: what
 * arrives from the next keyframe on (after the stream's `sequenceHeader`) is decoded by an ffmpeg,
 * to 64x36, one picture for each frame, in order. `decoding` once the keyframe came.
 */
function watchColour(
  receiver: RtmpReceiver,
  stream: string,
  sequenceHeader: Buffer,
  point: { x: number; y: number },
  matches: (r: number, g: number, b: number) => boolean,
): { decoding: Promise<void>; shown: Promise<number> } {
  const decoder = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-threads',
      '1',
      '-f',
      'flv',
      '-i',
      'pipe:0',
      '-fps_mode',
      'passthrough',
      '-vf',
      'scale=64:36',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  decoder.stdin.on('error', () => {});
  decoder.stdin.write(Buffer.concat([flvFileHeader(), flvTag(9, 0, sequenceHeader)]));
  const arrivals: number[] = [];
  let pending = Buffer.alloc(0);
  let decoded = 0;
  let started: () => void = () => {};
  const decoding = new Promise<void>((resolve) => (started = resolve));
  const shown = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error('the added input was not seen within 20 s')), 20_000);
    const finish = (error?: Error, at?: number): void => {
      clearTimeout(timer);
      receiver.off('media', listener);
      decoder.kill('SIGKILL');
      if (error) reject(error);
      else resolve(at!);
    };
    const listener = (message: RtmpMediaMessage): void => {
      if (message.publish.streamName !== stream || message.kind !== 'video' || message.sequenceHeader) return;
      if (arrivals.length === 0 && !message.key) return;
      if (arrivals.length === 0) started();
      arrivals.push(message.arrivalMs);
      decoder.stdin.write(flvTag(9, message.timestamp, message.data));
    };
    receiver.on('media', listener);
    decoder.stdout.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      const frame = 64 * 36 * 3;
      while (pending.length >= frame) {
        const at = (Math.round(point.y * 35) * 64 + Math.round(point.x * 63)) * 3;
        const [r, g, b] = [pending[at]!, pending[at + 1]!, pending[at + 2]!];
        pending = pending.subarray(frame);
        const arrivedAt = arrivals[decoded++];
        if (matches(r, g, b) && arrivedAt !== undefined) return finish(undefined, arrivedAt);
      }
    });
  });
  return { decoding, shown };
}

/**
 * What of `stream` arrives from its next keyframe on, kept as an FLV file (`stop` writes it and
 * gives its path): its sequence headers first, then each message at its RTMP timestamp.
 */
function recordFlv(
  receiver: RtmpReceiver,
  stream: string,
  videoHeader: Buffer,
  audioHeader: Buffer,
): { started: Promise<void>; stop(file: string): string } {
  const tags: Buffer[] = [];
  let begin: () => void = () => {};
  const started = new Promise<void>((resolve) => (begin = resolve));
  const listener = (message: RtmpMediaMessage): void => {
    if (message.publish.streamName !== stream || message.sequenceHeader) return;
    if (tags.length === 0) {
      if (message.kind !== 'video' || !message.key) return;
      tags.push(flvFileHeader(), flvTag(9, message.timestamp, videoHeader), flvTag(8, message.timestamp, audioHeader));
      begin();
    }
    tags.push(flvTag(message.kind === 'video' ? 9 : 8, message.timestamp, message.data));
  };
  receiver.on('media', listener);
  return {
    started,
    stop(file: string): string {
      receiver.off('media', listener);
      writeFileSync(file, Buffer.concat(tags));
      return file;
    },
  };
}

/**
 * In a recording of the mixer: the time (s, on its timeline) of the first picture whose `slot`
 * turned cyan, and of the first 5 ms of sound where a `toneHz` tone came in (its level above half
 * of what it reaches).
 */
async function avOffset(file: string, slot: Slot, toneHz: number): Promise<{ pictureS: number; soundS: number }> {
  const frames = async (filter: string, stream: 'v' | 'a', key: string): Promise<{ time: number; value: number }[]> => {
    const { stdout } = await run(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        file,
        '-map',
        `0:${stream}`,
        stream === 'v' ? '-vf' : '-af',
        `${filter},${stream === 'v' ? '' : 'a'}metadata=print:key=${key}:file=-`,
        '-f',
        'null',
        '-',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const out: { time: number; value: number }[] = [];
    let time = NaN;
    for (const line of stdout.split('\n')) {
      const at = /pts_time:([-\d.]+)/.exec(line);
      if (at) time = Number(at[1]);
      const value = new RegExp(`${key.replaceAll('.', '\\.')}=([-\\d.inf]+)`).exec(line);
      if (value) out.push({ time, value: Number(value[1]) });
    }
    return out;
  };
  const x = slot.x + slot.width / 4;
  const y = slot.y + slot.height / 4;
  // Cyan: Cr far below the middle (BT.601: 16); the test picture before it averages near 128.
  const pictures = await frames(
    `crop=${slot.width / 2}:${slot.height / 2}:${x}:${y},signalstats`,
    'v',
    'lavfi.signalstats.VAVG',
  );
  const picture = pictures.find((p) => p.value < 60);
  const sound = await frames(
    `bandpass=f=${toneHz}:width_type=q:w=8,asetnsamples=n=240,astats=metadata=1:reset=1`,
    'a',
    'lavfi.astats.Overall.RMS_level',
  );
  // Where the tone settles: the median level from half a second after the picture changed.
  const after = sound
    .filter((s) => picture && s.time > picture.time + 0.5)
    .map((s) => s.value)
    .sort((a, b) => a - b);
  const settled = after[after.length >> 1] ?? 0;
  // The first moment at half that level (-6 dB), from a little before the picture changed on.
  const onset = sound.find((s) => picture && s.time > picture.time - 0.5 && s.value > settled - 6);
  if (!picture || !onset)
    throw new Error(`the switch was not found in ${file} (picture ${picture?.time}, sound ${onset?.time})`);
  return { pictureS: picture.time, soundS: onset.time };
}
