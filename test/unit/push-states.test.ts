import { encodingSettings } from '../helpers/encoding.js';
import t, { type Test } from 'tap';
import pino from 'pino';
import { FlvTagType, type FlvTag } from '../../src/media/flv.js';
import type { Publisher } from '../../src/publishers/publisher.js';
import { parseDestination } from '../../src/links/destination.js';
import type { EncodingPlan } from '../../src/pipeline/encoding.js';
import type { Pipeline, PipelineSpec, TagSource } from '../../src/pipeline/pipeline.js';
import type { PushConfig } from '../../src/pushes/settings.js';
import { TRANSITIONS, type PushState } from '../../src/pushes/states.js';
import { Push } from '../../src/pushes/push.js';
import { FakeCamera, FakeTrack, fakePublisher } from '../helpers/fake-ingest.js';
import { waitFor } from '../../kit/processes.js';
import type { Link, LinkStats } from '../../src/links/link.js';
import { type FailureKind, OpenError } from '../../src/links/failures.js';
import type { TagSink, VideoFrame } from '../../src/media/sinks.js';

// The push's state table, restore loop, standby and hand-over, with a fake link and fake
// pipelines: no socket, no ffmpeg, milliseconds each.

class FakeLink implements Link {
  readonly video: { timestamp: number; body: Buffer }[] = [];
  readonly audio: number[] = [];
  closed = false;
  readonly stats: LinkStats = { written: 0, acknowledged: 0, bufferings: 0, framesDropped: 0 };
  readonly lagMs = 0;
  readonly buffer = undefined;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;
  readonly out: TagSink = {
    writeMetadata: () => {},
    writeVideo: (timestamp, body) => void this.video.push({ timestamp, body }),
    writeAudio: (timestamp) => void this.audio.push(timestamp),
  };
  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
  }
  break(reason = 'connection reset', kind: FailureKind = 'unreachable'): void {
    this.#lost?.(reason, kind);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

class FakePipeline implements Pipeline {
  output: Promise<void>;
  readonly source: TagSource;
  audio = 0;
  video = 0;
  closed = false;
  behindSince: number | undefined;
  audioDiscardedMs = 0;
  #tags: ((tags: FlvTag[]) => void) | undefined;
  #lost: ((reason: string, kind: FailureKind) => void) | undefined;
  #failOutput: (error: OpenError) => void = () => {};
  /** `silent`: it writes nothing (an ffmpeg the machine does not get to); its output waits for a loss. */
  constructor(
    readonly spec: PipelineSpec,
    silent = false,
  ) {
    this.source = { shiftMs: 0, still: spec.still !== undefined, transcoding: spec.video !== undefined };
    this.output = silent ? new Promise((_, reject) => (this.#failOutput = reject)) : Promise.resolve();
    this.output.catch(() => {});
  }
  begin(captureMs: number): void {
    this.source.audioStartMs ??= captureMs;
    if (this.source.still) this.source.videoStartMs ??= captureMs;
  }
  writeAudio(): void {
    this.audio++;
  }
  writeVideo(frame: VideoFrame): void {
    if (this.source.videoStartMs === undefined && !frame.key) return;
    this.source.videoStartMs ??= frame.captureMs;
    this.video++;
  }
  readonly mixes = true;
  setMuted(): boolean {
    return true;
  }
  setSound(): boolean {
    return true;
  }
  onTags(listener: (tags: FlvTag[]) => void): void {
    this.#tags = listener;
  }
  onLost(listener: (reason: string, kind: FailureKind) => void): void {
    this.#lost = listener;
  }
  emit(tags: FlvTag[]): void {
    this.#tags?.(tags);
  }
  /** Lost, as a real pipeline is: its output rejects (before it wrote) and `onLost` is told. */
  lose(reason: string, kind: FailureKind = 'local'): void {
    this.#failOutput(new OpenError(reason, kind));
    this.#lost?.(reason, kind);
  }
  async close(): Promise<void> {
    this.closed = true;
    this.#failOutput(new OpenError('ffmpeg was ended by SIGINT', 'local'));
  }
}

const keyframeTag = (timestamp: number): FlvTag => ({
  type: FlvTagType.VIDEO,
  timestamp,
  body: Buffer.from([0x17, 1, 0, 0, 0, 9]),
});

interface Rig {
  push: Push;
  links: FakeLink[];
  pipelines: FakePipeline[];
  states: PushState[];
  /** What the next link attempts do: a link, or an error of this kind. */
  linkFailures: FailureKind[];
  /** How long the next link attempts take before they answer. */
  linkDelays: number[];
  /** When each link attempt began. */
  attempts: number[];
  /** Pipelines made from now on write nothing (an ffmpeg the machine does not get to). */
  silentPipelines: boolean;
}

const config: PushConfig = {
  startTimeoutMs: 200,
  restore: { enabled: true, attempts: 3, intervalMs: 5 },
  sendMetadata: true,
  encoding: encodingSettings,
  sendBuffer: { enabled: false, startMs: 0, maxMs: 0, pollingMs: 100, maxBufferings: -1 },
};

function rig(t: Test, publisher: Publisher, plan: EncodingPlan = { video: 'copy' }, settings = config): Rig {
  const links: FakeLink[] = [];
  const pipelines: FakePipeline[] = [];
  const linkFailures: FailureKind[] = [];
  const linkDelays: number[] = [];
  const attempts: number[] = [];
  const destination = parseDestination('rtmp://127.0.0.1:1935/live', publisher.name, { prefix: '', fullUrl: false });
  const push = new Push(
    publisher,
    destination,
    plan,
    { options: {}, video: {}, captions: 'roll-up' },
    settings,
    {
      links: async () => {
        attempts.push(Date.now());
        await tick(linkDelays.shift() ?? 0);
        const failure = linkFailures.shift();
        if (failure) throw new OpenError(`refused (${failure})`, failure);
        const link = new FakeLink();
        links.push(link);
        return link;
      },
      pipelines: async (spec) => {
        const pipe = new FakePipeline(spec, made.silentPipelines);
        pipelines.push(pipe);
        return pipe;
      },
    },
    pino({ level: 'silent' }),
  );
  const states: PushState[] = [];
  push.on('state', (state) => states.push(state));
  t.teardown(() => push.stop());
  const made: Rig = { push, links, pipelines, states, linkFailures, linkDelays, attempts, silentPipelines: false };
  return made;
}

/** The publisher's media reaches a push through its queue on the thread's next turn: one turn passes. */
function delivered(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function running(t: Test, publisher: Publisher, plan?: EncodingPlan, settings = config): Promise<Rig> {
  const r = rig(t, publisher, plan, settings);
  r.push.start();
  await r.push.ready;
  t.equal(r.push.state, 'running', 'running');
  await delivered();
  return r;
}

function videoPublisher(t: Test): { publisher: Publisher; camera: FakeCamera } {
  const track = new FakeTrack('video');
  const publisher = fakePublisher('cam', [track, new FakeTrack('audio')]);
  t.teardown(() => publisher.close());
  const camera = new FakeCamera(track);
  camera.warmUp();
  return { publisher, camera };
}

t.test('the table: ended states lead nowhere, and every state can end', async (t) => {
  t.same(TRANSITIONS.failed, []);
  t.same(TRANSITIONS.stopped, []);
  for (const state of ['starting', 'running', 'standby', 'resuming', 'reconnecting', 'reconnecting-away'] as const) {
    t.ok(
      TRANSITIONS[state].includes('stopping') && TRANSITIONS[state].includes('failed'),
      `${state} can stop and fail`,
    );
  }
  t.notOk(TRANSITIONS.starting.includes('standby'), 'a push not yet up cannot hold the output');
  t.notOk(
    TRANSITIONS['reconnecting-away'].includes('running'),
    'restored with the publisher away, the still picture goes out',
  );
  t.notOk(TRANSITIONS.reconnecting.includes('standby'), 'restored with the publisher there, its media goes out');
});

t.test('starts: one link, one pipeline, the cached keyframe passed through at once', async (t) => {
  const { publisher } = videoPublisher(t);
  const { links, pipelines, states, push } = await running(t, publisher);
  t.same(states, ['running']);
  t.equal(links.length, 1);
  t.equal(pipelines.length, 1);
  t.notOk(pipelines[0]!.spec.video, 'the pipeline makes audio only: video is passed through');
  t.ok(
    links[0]!.video.some((v) => v.body[0] === 0x17 && v.body[1] === 1),
    'the keyframe went out',
  );
  t.equal(push.writer.frames, 2, 'the keyframe and the frame after it');
});

t.test(
  'a startup whose pipeline the machine does not get to in time fails as unavailable: the pipeline owns that deadline',
  async (t) => {
    const { publisher } = videoPublisher(t);
    const watched = rig(t, publisher);
    watched.silentPipelines = true;
    watched.push.start();
    await waitFor('the pipeline', () => watched.pipelines.length === 1, 2000, 1);
    await tick(config.startTimeoutMs + 50);
    t.equal(watched.push.state, 'starting', 'no other timer of the push ends it meanwhile');
    watched.pipelines[0]!.lose('ffmpeg wrote no output within 200 ms', 'slow');
    await watched.push.ready;
    t.equal(watched.push.state, 'failed');
    t.equal(watched.push.errorCode, 'unavailable', "the machine's load, not the gateway's fault");
    t.match(watched.push.lastError, /ffmpeg wrote no output within 200 ms/);
    // An ffmpeg that ended is the gateway's own failure.
    const ended = rig(t, publisher);
    ended.silentPipelines = true;
    ended.push.start();
    await waitFor('the pipeline', () => ended.pipelines.length === 1, 2000, 1);
    ended.pipelines[0]!.lose('ffmpeg exited with code 1');
    await ended.push.ready;
    t.equal(ended.push.errorCode, 'internal');
  },
);

t.test('a lost link is restored after a wait; the counts say so', async (t) => {
  const { publisher, camera } = videoPublisher(t);
  const { links, states, push } = await running(t, publisher);
  links[0]!.break();
  t.equal(push.state, 'reconnecting');
  t.ok(links[0]!.closed, 'the broken link is closed');
  await tick(30);
  camera.frame(true);
  await delivered();
  t.equal(push.state, 'running');
  t.same(states, ['running', 'reconnecting', 'running']);
  t.equal(links.length, 2);
  t.match(push.toJSON(), { counters: { drops: 1, reconnects: 1 }, lastError: 'connection reset' });
  t.ok(
    links[1]!.video.some((v) => v.body[1] === 0),
    'the new link starts with a sequence header',
  );
});

t.test(
  'restore attempts keep their pace: an attempt that spent its wait on a silent network is followed at once',
  async (t) => {
    const track = new FakeTrack('audio');
    const publisher = fakePublisher('mic', [track]);
    t.teardown(() => publisher.close());
    const slow = { ...config, restore: { enabled: true, attempts: 0, intervalMs: 100 } };
    const { links, linkFailures, linkDelays, attempts, push } = await running(t, publisher, undefined, slow);
    linkFailures.push('unreachable', 'unreachable');
    linkDelays.push(300, 20);
    const brokeAt = Date.now();
    links[0]!.break();
    await tick(1200); // the third attempt comes 650-710 ms after the break
    t.equal(push.state, 'running', 'restored by the third attempt');
    const [, first, second, third] = attempts;
    t.ok(
      // timers fire late on a busy machine, never early: the upper bounds only rule out a second wait
      first! - brokeAt >= 90 && first! - brokeAt < 250,
      `the first attempt after the interval (${first! - brokeAt} ms)`,
    );
    t.ok(
      second! - first! >= 300 && second! - first! < 440,
      `the second as soon as the 300 ms attempt failed, its 150-190 ms wait already spent (${second! - first!} ms)`,
    );
    t.ok(third! - second! >= 200, `a quick failure still waits (${third! - second!} ms)`);
  },
);

t.test('a destination that refuses twice fails the push, releasing everything', async (t) => {
  const track = new FakeTrack('audio');
  const publisher = fakePublisher('mic', [track]);
  t.teardown(() => publisher.close());
  const { links, pipelines, linkFailures, push } = await running(t, publisher);
  linkFailures.push('rejected', 'rejected');
  links[0]!.break('publish refused', 'rejected');
  await tick(60);
  t.equal(push.state, 'failed');
  t.equal(push.errorCode, 'destination_refused');
  t.ok(links.every((l) => l.closed) && pipelines.every((p) => p.closed), 'every link and pipeline is closed');
});

t.test('stop during a restore wait: no attempt comes after', async (t) => {
  const track = new FakeTrack('audio');
  const publisher = fakePublisher('mic', [track]);
  t.teardown(() => publisher.close());
  const { links, states, push } = await running(t, publisher);
  links[0]!.break();
  let closed = false;
  push.on('closed', () => (closed = true));
  await push.stop();
  await tick(30);
  t.equal(links.length, 1, 'no new link');
  t.same(states, ['running', 'reconnecting', 'stopping', 'stopped']);
  t.ok(closed, 'closed is told');
});

const audioTag = (timestamp: number): FlvTag => ({
  type: FlvTagType.AUDIO,
  timestamp,
  body: Buffer.from([0xaf, 1, 0x21]),
});

t.test(
  "standby: the live pipeline goes on until the still picture's first keyframe, then the grace period ends the push",
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, links, states, push } = await running(t, publisher);
    t.ok(push.publisherLost('page closed', 80));
    t.equal(push.state, 'standby');
    await tick(5);
    t.equal(pipelines.length, 2);
    t.ok(pipelines[1]!.spec.still, 'a pipeline showing the still picture');
    t.notOk(pipelines[0]!.closed, 'the live pipeline goes on (its silence) while the still picture starts');
    pipelines[0]!.emit([audioTag(100)]);
    t.equal(links[0]!.audio.length, 1, 'its audio still goes out');
    pipelines[1]!.emit([audioTag(0), keyframeTag(0)]);
    t.ok(pipelines[0]!.closed, "replaced at the still picture's keyframe");
    t.notOk(links[0]!.closed, 'over the same link');
    t.match(push.toJSON(), { state: 'standby', lastError: /publisher lost: page closed/, standbyUntil: String });
    await tick(100);
    t.same(states, ['running', 'standby', 'stopping', 'stopped']);
    t.match(push.lastError, /did not come back/);
    t.ok(links[0]!.closed && pipelines[1]!.closed, 'everything is released');
  },
);

t.test(
  'held in standby for its simulcast layer, then its publisher lost: the push waits out the grace period, not ended',
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { states, push } = await running(t, publisher);
    // What the layer's hold does (`LayerPin`): standby for as long as the layer is away.
    t.ok(push.publisherLost('simulcast layer 0 stopped', 2 ** 31 - 1));
    t.equal(push.state, 'standby');
    t.ok(push.publisherLost('page closed', 60), 'the publisher lost meanwhile: still held');
    t.match(push.toJSON(), { state: 'standby', lastError: /publisher lost: page closed/ });
    await tick(100);
    t.same(states, ['running', 'standby', 'stopping', 'stopped'], "ended by the publisher's grace period");
    t.match(push.lastError, /did not come back/);
  },
);

t.test(
  'its publisher lost, then a layer event of that publisher: the grace period is not stretched to the layer hold',
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { states, push } = await running(t, publisher);
    t.ok(push.publisherLost('page closed', 60));
    t.ok(push.publisherLost('simulcast layer 0 stopped', 2 ** 31 - 1), 'still held');
    t.match(push.toJSON(), { state: 'standby', lastError: /publisher lost: page closed/ });
    await tick(100);
    t.same(states, ['running', 'standby', 'stopping', 'stopped'], "ended by the publisher's grace period");
  },
);

t.test(
  "passthrough back from standby: the still picture until live video goes out, its sound until the new pipeline's",
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, links, states, push } = await running(t, publisher);
    await showStill(push, pipelines);
    const still = pipelines[1]!;
    const { publisher: back, camera } = videoPublisher(t);
    push.resume(back, { video: 'copy' });
    t.equal(push.state, 'running');
    await tick(5);
    t.equal(pipelines.length, 3);
    const live = pipelines[2]!;
    t.notOk(live.spec.still, 'a live pipeline again');
    t.notOk(still.closed, "the still picture's pipeline goes on meanwhile");
    const stillVideo = links[0]!.video.length;
    still.emit([keyframeTag(100), audioTag(100)]);
    t.equal(links[0]!.video.length, stillVideo + 1, 'and its picture, until live video comes');
    t.equal(links[0]!.audio.length, 1, 'and its sound');
    stillReaches(still, live.source.audioStartMs!, 'audio');
    live.emit([audioTag(0)]);
    t.notOk(still.closed, "the new pipeline's audio does not end the still picture before live video replaced it");
    const sentVideo = links[0]!.video.length;
    camera.frame(true);
    await delivered();
    const liveVideo = links[0]!.video.length;
    t.ok(liveVideo > sentVideo, 'live video goes out at once');
    t.ok(still.closed, "the still picture ended with live video there and the new pipeline's audio ready");
    t.same(states, ['running', 'standby', 'running']);
    t.equal(push.standby.until, undefined, 'no deadline left');
  },
);

t.test(
  "passthrough back from standby: once live video went out, the still picture's picture stops and its sound goes on until the new pipeline's",
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, links, push } = await running(t, publisher);
    await showStill(push, pipelines);
    const still = pipelines[1]!;
    const { publisher: back, camera } = videoPublisher(t);
    push.resume(back, { video: 'copy' });
    await tick(5);
    const live = pipelines[2]!;
    camera.frame(true);
    await delivered();
    const liveVideo = links[0]!.video.length;
    const audio = links[0]!.audio.length;
    still.emit([keyframeTag(5000), audioTag(5000)]);
    t.notOk(still.closed, "the still picture's pipeline goes on for its sound");
    t.equal(links[0]!.video.length, liveVideo, 'but not its picture');
    t.equal(links[0]!.audio.length, audio + 1, 'its sound');
    stillReaches(still, live.source.audioStartMs!, 'audio');
    live.emit([audioTag(0)]);
    t.ok(still.closed, "the still picture ended at the new pipeline's first audio");
  },
);

t.test(
  'passthrough: the publisher lost again before its new pipeline took over: the still picture shows again',
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, links, push } = await running(t, publisher);
    await showStill(push, pipelines);
    const still = pipelines[1]!;
    const { publisher: back } = videoPublisher(t);
    push.resume(back, { video: 'copy' });
    await tick(5);
    t.ok(push.publisherLost('gone again', 10_000));
    await tick(5);
    t.ok(pipelines[2]!.closed, 'the live pipeline that had not taken over is closed');
    const sentVideo = links[0]!.video.length;
    still.emit([keyframeTag(200)]);
    t.equal(links[0]!.video.length, sentVideo + 1, 'the still picture goes out again until the new one takes over');
    t.equal(push.state, 'standby');
  },
);

t.test(
  'publisher away is a state: an output lost meanwhile comes back to the still picture, and to live video once it is back',
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, links, states, push } = await running(t, publisher);
    await showStill(push, pipelines);
    links[0]!.break();
    t.equal(push.phase, 'reconnecting-away', 'the output is restored with the publisher away');
    t.equal(push.state, 'reconnecting', 'which shows as reconnecting');
    t.ok(push.awaitingPublisher);
    await waitFor('the restore', () => push.state !== 'reconnecting', 2000, 1);
    t.equal(push.phase, 'standby', 'back to the still picture, not to live video');
    t.ok(pipelines.at(-1)!.spec.still, 'the restored pipeline shows the still picture');
    t.match(push.toJSON(), { state: 'standby', standbyUntil: String });
    // Lost again, and the publisher back before the restore: the restore brings live video.
    links.at(-1)!.break();
    t.equal(push.phase, 'reconnecting-away');
    const { publisher: back, camera } = videoPublisher(t);
    push.resume(back, { video: 'copy' });
    t.equal(push.phase, 'reconnecting', 'the publisher is back, the output still being restored');
    t.notOk(push.awaitingPublisher);
    t.equal(push.standby.until, undefined, 'no grace period left');
    await waitFor('the restore', () => push.state !== 'reconnecting', 2000, 1);
    t.equal(push.state, 'running');
    t.notOk(pipelines.at(-1)!.spec.still, 'a live pipeline');
    const sent = links.at(-1)!.video.length;
    camera.frame(true);
    await delivered();
    t.ok(links.at(-1)!.video.length > sent, 'live video goes out');
    t.same(
      states,
      ['running', 'standby', 'reconnecting', 'standby', 'reconnecting', 'running'],
      'the shown states, each told once',
    );
  },
);

t.test('publisher away while the output is being restored: restored to the still picture', async (t) => {
  const { publisher } = videoPublisher(t);
  const r = await running(t, publisher);
  r.linkFailures.push('unreachable');
  r.links[0]!.break();
  t.ok(r.push.publisherLost('gone', 10_000));
  t.equal(r.push.phase, 'reconnecting-away');
  t.match(r.push.toJSON(), { state: 'reconnecting', lastError: /publisher lost: gone/, standbyUntil: String });
  await waitFor('the restore', () => r.push.state !== 'reconnecting', 2000, 1);
  t.equal(r.push.state, 'standby');
  t.ok(r.pipelines.at(-1)!.spec.still);
  t.same(r.states, ['running', 'reconnecting', 'standby']);
});

/** The publisher goes away: the still picture's pipeline starts and takes over at its first keyframe. */
async function showStill(push: Push, pipelines: FakePipeline[]): Promise<void> {
  push.publisherLost('gone', 10_000);
  await tick(5);
  pipelines.at(-1)!.emit([keyframeTag(0)]);
}

/**
 * The still picture's pipeline writes a frame of `kind` captured at `captureMs` (on its own clock,
 * placed `shiftMs` on, as it is since it took over): its output has got that far.
 */
function stillReaches(still: FakePipeline, captureMs: number, kind: 'audio' | 'video'): void {
  const startMs = kind === 'audio' ? still.source.audioStartMs! : still.source.videoStartMs!;
  const primingMs = kind === 'audio' ? (1024 / config.encoding.audioSampleRate) * 1000 : 0;
  const timestamp = Math.ceil(captureMs - startMs - still.source.shiftMs + primingMs);
  still.emit([kind === 'audio' ? audioTag(timestamp) : keyframeTag(timestamp)]);
}

t.test(
  'a still picture that is slow to start: the live pipeline takes the output to its start-up timeout',
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, push } = await running(t, publisher);
    push.publisherLost('gone', 10_000);
    await tick(config.startTimeoutMs - 50);
    t.notOk(pipelines[0]!.closed, 'still the live pipeline');
    await tick(80);
    t.ok(pipelines[0]!.closed, 'then the still picture takes over anyway');
    t.equal(push.feed.pending, undefined);
  },
);

const transcode: EncodingPlan = { video: 'transcode', reason: 'size', scale: { width: 640, height: 360 } };

t.test("transcoding back from standby: resuming until the new video's keyframe, then running", async (t) => {
  const { publisher } = videoPublisher(t);
  const { pipelines, links, states, push } = await running(t, publisher);
  // A transcoding push had its still picture from a passthrough frame: give it one.
  await showStill(push, pipelines);
  const { publisher: back, camera } = videoPublisher(t);
  push.resume(back, transcode);
  t.equal(push.state, 'resuming');
  await tick(5);
  const pending = pipelines[2]!;
  t.ok(pending.spec.video, 'the new pipeline transcodes');
  t.notOk(pipelines[1]!.closed, 'the still picture goes on meanwhile');
  camera.frame(true);
  camera.frame();
  await delivered();
  t.ok(pending.video > 0, 'the new pipeline is fed');
  stillReaches(pipelines[1]!, pending.source.videoStartMs!, 'video');
  stillReaches(pipelines[1]!, pending.source.audioStartMs! - 21, 'audio');
  const before = links[0]!.video.length;
  pending.emit([keyframeTag(0)]);
  t.equal(push.state, 'running');
  t.ok(pipelines[1]!.closed, "the still picture ended: its sound had reached the new pipeline's");
  t.equal(links[0]!.video.length, before + 1, 'the keyframe it held went out');
  t.ok(links[0]!.video.at(-1)!.timestamp > links[0]!.video[before - 1]!.timestamp, 'after what was sent');
  t.same(states, ['running', 'standby', 'resuming', 'running']);
});

/**
 * Standby, then the publisher back through a transcoding pipeline whose first keyframe was captured
 * `captureAgoMs` before the still picture's last frame (its encoder's delay): it has taken over.
 */
async function transcodedBack(t: Test, captureAgoMs: number) {
  const { publisher } = videoPublisher(t);
  const r = await running(t, publisher);
  await showStill(r.push, r.pipelines);
  const still = r.pipelines[1]!;
  const { publisher: back, camera } = videoPublisher(t);
  r.push.resume(back, transcode);
  await tick(5);
  const pending = r.pipelines[2]!;
  camera.frame(true);
  await delivered();
  stillReaches(still, pending.source.videoStartMs! + captureAgoMs, 'video');
  pending.emit([keyframeTag(0)]);
  return { ...r, still, pending };
}

t.test(
  "back from standby, transcoded: the still picture's sound goes on until the new pipeline's, whose waits",
  async (t) => {
    const { still, pending, links, push } = await transcodedBack(t, 300);
    t.equal(push.state, 'running', 'the new pipeline has the video');
    t.ok(still.source.audioOnly, "the still picture's video ended");
    t.notOk(still.closed, 'its sound goes on: it is behind');
    const startMs = pending.source.audioStartMs! + pending.source.shiftMs;
    t.ok(
      pending.source.shiftMs >= 300,
      `the new pipeline placed after the still's last frame (${pending.source.shiftMs} ms on)`,
    );
    pending.emit([audioTag(21), audioTag(43)]);
    const sent = links[0]!.audio.length;
    const frames = links[0]!.video.length;
    stillReaches(still, startMs - 100, 'video');
    stillReaches(still, startMs - 64, 'audio');
    stillReaches(still, startMs - 43, 'audio');
    t.equal(links[0]!.audio.length, sent + 2, "the still's sound goes out, the new pipeline's waits");
    t.equal(links[0]!.video.length, frames, "the still's picture does not");
    t.notOk(still.closed);
    stillReaches(still, startMs - 21, 'audio');
    t.ok(still.closed, "the still picture ended with the frame that meets the new pipeline's first");
    const audio = links[0]!.audio.slice(sent);
    t.equal(audio.length, 5, "then the new pipeline's sound it held");
    const steps = audio.slice(1).map((ts, i) => ts - audio[i]!);
    t.ok(
      steps.every((step) => step > 0 && step <= 22),
      `one sound, unbroken and without overlap: ${audio.join(' ')}`,
    );
    pending.emit([audioTag(64)]);
    t.equal(links[0]!.audio.length, sent + 6, "the new pipeline's sound goes straight out after that");
  },
);

t.test("a still picture's frame that would overlap the new pipeline's first sound is left out", async (t) => {
  const { still, pending, links } = await transcodedBack(t, 300);
  const startMs = pending.source.audioStartMs! + pending.source.shiftMs;
  pending.emit([audioTag(21)]);
  const sent = links[0]!.audio.length;
  stillReaches(still, startMs - 29, 'audio');
  stillReaches(still, startMs - 8, 'audio');
  t.ok(still.closed, 'the still picture ended');
  const audio = links[0]!.audio.slice(sent);
  t.equal(audio.length, 2, "one still frame, then the new pipeline's");
  t.ok(audio[1]! - audio[0]! >= 21, `no overlap: ${audio.join(' ')}`);
});

t.test("a still picture that stops sounding: the new pipeline's sound goes out after a second", async (t) => {
  const { still, pending, links } = await transcodedBack(t, 300);
  pending.emit([audioTag(21)]);
  const sent = links[0]!.audio.length;
  await tick(500);
  t.equal(links[0]!.audio.length, sent, 'held while the still might yet reach it');
  await waitFor('the hold to end', () => links[0]!.audio.length > sent, 2000, 10);
  t.ok(still.closed, 'the still picture ended');
});

t.test("the push ends while the still picture's sound goes on: both pipelines are closed", async (t) => {
  const { still, pending, push } = await transcodedBack(t, 300);
  t.notOk(still.closed);
  await push.stop();
  t.ok(still.closed && pending.closed, 'both closed');
});

t.test(
  "a still picture behind the clock (its ffmpeg was slow to start) goes on until it reaches the new video's keyframe",
  async (t) => {
    const { publisher } = videoPublisher(t);
    const { pipelines, links, push } = await running(t, publisher);
    await showStill(push, pipelines);
    const still = pipelines[1]!;
    await tick(300);
    const { publisher: back, camera } = videoPublisher(t);
    push.resume(back, transcode);
    await tick(5);
    const pending = pipelines[2]!;
    camera.frame(true);
    await delivered();
    pending.emit([keyframeTag(0)]);
    const keyframeAt = pending.source.videoStartMs!;
    t.ok(
      keyframeAt - still.source.videoStartMs! - still.source.shiftMs >= 150,
      'the new keyframe was captured well into the still picture',
    );
    stillReaches(still, keyframeAt - 100, 'video');
    t.equal(push.state, 'resuming', 'the still picture has not reached it: it goes on');
    t.notOk(still.closed);
    stillReaches(still, keyframeAt - 33, 'video');
    t.equal(push.state, 'running', 'taken over once it has');
    t.ok(still.source.audioOnly, "the still picture's video ended");
    const [last, first] = links[0]!.video.slice(-2).map((v) => v.timestamp);
    t.ok(
      first! > last! && first! - last! <= 34,
      `live video goes on one frame after the still picture (${last} ms, then ${first} ms)`,
    );
  },
);

t.test('a hand-over without video in time takes over anyway', async (t) => {
  const { publisher } = videoPublisher(t);
  const { pipelines, push } = await running(t, publisher);
  await showStill(push, pipelines);
  const { publisher: back } = videoPublisher(t);
  push.resume(back, transcode);
  await tick(config.startTimeoutMs + 30);
  t.equal(push.state, 'running');
  t.ok(pipelines[1]!.closed);
});

t.test('the publisher lost again while resuming: back to standby, the pending pipeline dropped', async (t) => {
  const { publisher } = videoPublisher(t);
  const { pipelines, states, push } = await running(t, publisher);
  await showStill(push, pipelines);
  const { publisher: back } = videoPublisher(t);
  push.resume(back, transcode);
  await tick(5);
  t.ok(push.publisherLost('gone again', 10_000));
  t.equal(push.state, 'standby');
  await tick(5);
  t.ok(pipelines[2]!.closed, 'the pending pipeline is closed');
  t.notOk(pipelines[1]!.closed, 'the still picture goes on');
  t.same(states, ['running', 'standby', 'resuming', 'standby']);
});

t.test('a pipeline lost while up is restored over the kept link', async (t) => {
  const track = new FakeTrack('audio');
  const publisher = fakePublisher('mic', [track]);
  t.teardown(() => publisher.close());
  const { pipelines, links, states, push } = await running(t, publisher);
  pipelines[0]!.lose('ffmpeg exited');
  t.equal(push.state, 'reconnecting');
  await tick(30);
  t.equal(push.state, 'running');
  t.equal(links.length, 1, 'the link was kept');
  t.equal(pipelines.length, 2);
  t.same(states, ['running', 'reconnecting', 'running']);
});

t.test("a restore attempt whose pipeline writes nothing in time is tried again, as the machine's load", async (t) => {
  const track = new FakeTrack('audio');
  const publisher = fakePublisher('mic', [track]);
  t.teardown(() => publisher.close());
  const made = await running(t, publisher);
  const { pipelines, push } = made;
  made.silentPipelines = true;
  pipelines[0]!.lose('ffmpeg exited');
  await waitFor("the restore's pipeline", () => pipelines.length === 2, 2000, 1);
  made.silentPipelines = false;
  pipelines[1]!.lose('ffmpeg wrote no output within 200 ms', 'slow');
  t.equal(push.state, 'reconnecting', 'not failed: the attempt failed');
  await waitFor('another attempt', () => pipelines.length === 3, 2000, 1);
  await waitFor('running', () => push.state === 'running', 2000, 1);
  t.ok(pipelines[1]!.closed, 'the silent pipeline was closed');
  t.match(push.lastError, /no output within 200 ms/);
});
