import { EventEmitter } from 'node:events';
import pino, { type Logger } from 'pino';
import t, { type Test } from 'tap';
import { monotonicMs } from '../../src/core/clock.js';
import type { FfmpegProcess } from '../../src/ffmpeg/ffmpeg-process.js';
import { flvFileHeader, flvTag, FlvTagType, type FlvTag } from '../../src/media/flv.js';
import { ffmpegPipelines } from '../../src/pipeline/ffmpeg-pipeline.js';
import type { Pipeline } from '../../src/pipeline/pipeline.js';
import type { AudioPacket } from '../../src/media/sinks.js';

/** An ffmpeg that reads nothing unless told: its backlog is the test's to set. */
class SlowFfmpeg extends EventEmitter {
  readonly pid = 1;
  readonly started = Promise.resolve(1);
  inputBacklog = 0;
  videoBacklog = 0;
  written = 0;
  write(data: Buffer): boolean {
    this.written += data.length;
    return true;
  }
  writeVideo(): boolean {
    return true;
  }
  async stop(): Promise<void> {}
  /** Writes FLV audio tags at these times (ms), as its output. */
  outputAudio(times: number[], first = false): void {
    const tags = times.map((ms) => flvTag(FlvTagType.AUDIO, ms, Buffer.from([0xaf, 1, 0x21])));
    this.emit('output', Buffer.concat(first ? [flvFileHeader(), ...tags] : tags));
  }
}

/** A pipeline of a push passing its video through, on `ffmpeg`, the machine `saturated` or not. */
async function passThroughPipeline(t: Test, ffmpeg: SlowFfmpeg, saturated: boolean, log: Logger): Promise<Pipeline> {
  const pipelines = ffmpegPipelines({
    encoding: {
      keepAspectRatio: true,
      transcodingEnabled: true,
      videoBitrateKbps: 1000,
      preset: 'veryfast',
      audioBitrateKbps: 128,
      aacCoder: 'fast',
      audioSampleRate: 48000,
      keyframeIntervalS: 2,
    },
    analyzeDurationUs: 0,
    startTimeoutMs: 60_000,
    stopTimeoutMs: 1000,
    spawn: () => ffmpeg as unknown as FfmpegProcess,
    saturated: () => saturated,
    log,
  });
  const pipe = await pipelines({ plan: { video: 'copy' }, muted: false, sound: undefined });
  t.teardown(() => pipe.close());
  return pipe;
}

t.test(
  'an encoder behind on the audio: what it cannot take is discarded, and its later tags moved on by as much',
  async (t) => {
    const ffmpeg = new SlowFfmpeg();
    const warnings: string[] = [];
    const log = pino(
      { level: 'info' },
      { write: (line: string) => void warnings.push(JSON.parse(line).msg as string) },
    );
    const pipe = await passThroughPipeline(t, ffmpeg, true, log);
    const tags: FlvTag[] = [];
    pipe.onTags((more) => tags.push(...more));
    let lost: string | undefined;
    pipe.onLost((reason) => (lost = reason));
    const start = monotonicMs() - 10_000;
    pipe.begin(start);
    const samples = new Int16Array(960 * 2).fill(1000);
    const source = { audioPcm: () => samples };
    let at = start;
    /** 20 ms packets of sound, `count` of them. */
    const send = (count: number): void => {
      for (let i = 0; i < count; i++, at += 20)
        pipe.writeAudio({ payload: Buffer.alloc(0), captureMs: at } as AudioPacket, source);
    };
    // Before its first output, on a starved machine: what it has not read is not piled up.
    ffmpeg.inputBacklog = 48000 * 4;
    send(10);
    t.equal(ffmpeg.written, 0, 'before its first output too, audio it cannot take is left out');
    t.equal(Math.round(pipe.audioDiscardedMs), 200);
    ffmpeg.inputBacklog = 0;
    ffmpeg.outputAudio([0], true);
    send(50); // then a second taken
    const discardedAtStart = pipe.audioDiscardedMs;
    const taken = ffmpeg.written;
    t.equal(Math.round(taken / 192), 1000, 'a second of PCM written once it read its backlog');
    t.equal(pipe.behindSince, undefined, 'keeping up');

    ffmpeg.inputBacklog = 48000 * 4; // a second it has not read
    send(100); // two seconds it cannot take
    t.ok(pipe.behindSince !== undefined, 'behind');
    t.equal(ffmpeg.written, taken, 'none of it written');
    t.equal(Math.round(pipe.audioDiscardedMs - discardedAtStart), 2000, 'two seconds discarded, counted');
    t.ok(
      warnings.some((w) => /falls behind on the audio/.test(w)),
      'and logged',
    );

    ffmpeg.inputBacklog = 40_000; // read down to under a quarter of a second
    send(50);
    t.equal(pipe.behindSince, undefined, 'caught up');
    t.equal(Math.round((ffmpeg.written - taken) / 192), 1000, 'the next second written');
    ffmpeg.outputAudio([500, 980, 1000, 1500]);
    t.same(
      tags.filter((tag) => tag.type === FlvTagType.AUDIO).map((tag) => tag.timestamp),
      [0, 500, 980, 3000, 3500].map((ms) => ms + 200),
      'what ffmpeg made of the sound after each gap is moved on by what was left out before it',
    );
    t.equal(lost, undefined, 'the pipeline goes on');

    // A thread starved for seconds catches up on its silence in one block: 5.5 s of PCM at once,
    // more than ffmpeg is ever given to hold, however little it has unread.
    ffmpeg.inputBacklog = 0;
    const [writtenBefore, discardedBefore] = [ffmpeg.written, pipe.audioDiscardedMs];
    at += 5500;
    send(10);
    t.equal(lost, undefined, 'not replaced');
    t.ok(
      pipe.audioDiscardedMs - discardedBefore >= 5500,
      `the block discarded (${Math.round(pipe.audioDiscardedMs - discardedBefore)} ms)`,
    );
    t.ok(ffmpeg.written - writtenBefore < 48000 * 4, 'not written');
  },
);

t.test(
  'a thread starved past the stall limit: its late watch judges nothing, and the output waiting unread counts',
  async (t) => {
    const ffmpeg = new SlowFfmpeg();
    const pipe = await passThroughPipeline(t, ffmpeg, false, pino({ level: 'silent' }));
    let lost: string | undefined;
    pipe.onLost((reason) => (lost = reason));
    pipe.begin(monotonicMs());
    ffmpeg.outputAudio([0], true);
    // The thread gets no CPU for 6 s (past the 5 s an ffmpeg may stay silent). ffmpeg wrote on
    // meanwhile: its output is read after the overdue timers have run, as a pipe's would be.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        setImmediate(() => {
          ffmpeg.outputAudio([6000]);
          resolve();
        });
        const until = monotonicMs() + 6000;
        while (monotonicMs() < until); // starved
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1200)); // two watches on time after it
    t.equal(lost, undefined, 'not replaced: its output was there, waiting to be read');
    ffmpeg.outputAudio([7200]);
  },
);
