import t from 'tap';
import { PLATFORMS } from '../../src/links/platforms.js';
import { IngestHealth, type Health } from '../../src/pushes/health.js';

const youtube = PLATFORMS.find((p) => p.name === 'youtube')!;
const twitch = PLATFORMS.find((p) => p.name === 'twitch')!;
/** An AAC sequence header at 48 kHz (AAC-LC, sampling index 3, stereo), and a frame of `bytes`. */
const AAC_HEADER = Buffer.from([0xaf, 0x00, 0x11, 0x90]);
const aac = (bytes: number): Buffer => Buffer.concat([Buffer.from([0xaf, 0x01]), Buffer.alloc(bytes - 2)]);

/** `seconds` of a stream at 30 fps with a keyframe every `keyframeS`, 20 ms AAC frames unless `sound` is false. */
function feed(health: IngestHealth, seconds: number, keyframeS: number, sound = true, from = 0): void {
  if (sound && from === 0) health.audio(0, AAC_HEADER);
  for (let ms = from; ms < from + seconds * 1000; ms += 1) {
    if (ms % 33 === 0) health.video(ms, 10_000, ms % (keyframeS * 1000) < 33);
    if (sound && ms % 20 === 0) health.audio(ms, aac(400));
  }
}

t.test('nothing is told before 5 s of the stream were sent', async (t) => {
  const health = new IngestHealth(youtube);
  feed(health, 4, 2);
  t.equal(health.current, undefined);
  feed(health, 2, 2, true, 4000);
  t.equal(health.current?.status, 'good');
});

t.test('a stream as platforms want it: good, its measures as sent', async (t) => {
  const health = new IngestHealth(youtube);
  feed(health, 12, 2);
  const { status, issues, measures } = health.current!;
  t.equal(status, 'good', issues.join());
  t.match(measures, {
    keyframeIntervalMaxS: 2,
    keyframeIntervalMeanS: 2,
    audio: true,
    audioSampleRate: 48000,
    sizeChanges: 0,
  });
  t.ok(Math.abs(measures.fps - 30.3) < 0.5, `fps ${measures.fps}`);
  t.ok(Math.abs(measures.videoKbps - 2424) < 60, `video ${measures.videoKbps} kb/s`);
  t.ok(Math.abs(measures.audioKbps - 160) < 10, `audio ${measures.audioKbps} kb/s`);
  t.ok(Math.abs(measures.avOffsetMs!) < 30, `A/V offset ${measures.avOffsetMs} ms`);
});

t.test('keyframes too far apart: bad past what the platform takes, a warning past what it asks', async (t) => {
  const six = new IngestHealth(youtube);
  feed(six, 14, 6);
  t.same(six.current!.issues, ['keyframe interval 6.0 s (YouTube: at most 4 s)']);
  t.equal(six.current!.status, 'bad');
  const three = new IngestHealth(youtube);
  feed(three, 14, 3);
  t.same(three.current!.issues, ['keyframe interval 3.0 s (YouTube asks for 2 s)']);
  t.equal(three.current!.status, 'warning');
  const threeOnTwitch = new IngestHealth(twitch);
  feed(threeOnTwitch, 14, 3);
  t.equal(threeOnTwitch.current!.status, 'bad', 'Twitch takes 2 s at most');
  const none = new IngestHealth(undefined);
  feed(none, 14, 6);
  t.same(
    none.current!.issues,
    ['keyframe interval 6.0 s (most platforms take at most 4 s)'],
    'with no platform, what every one takes',
  );
});

t.test('keyframes that stopped: no interval closes, the time since the last one is told', async (t) => {
  const health = new IngestHealth(youtube);
  feed(health, 12, 1000);
  t.match(health.current!.measures, { keyframeIntervalMaxS: null, sinceKeyframeS: 12 });
  t.same(health.current!.issues, ['no keyframe for 12.0 s (YouTube: at most 4 s apart)']);
  t.equal(health.current!.status, 'bad');
});

t.test('no sound is bad; a size change is a warning, forgotten once out of the window', async (t) => {
  const mute = new IngestHealth(youtube);
  feed(mute, 8, 2, false);
  t.same(mute.current!.issues, ['no sound']);
  t.equal(mute.current!.status, 'bad');
  const resized = new IngestHealth(youtube);
  feed(resized, 6, 2);
  resized.resized();
  feed(resized, 2, 2, true, 6000);
  t.same(resized.current!.issues, ['picture size changed 1 time in 20 s']);
  feed(resized, 22, 2, true, 8000);
  t.equal(resized.current!.status, 'good', 'gone after 20 s');
});

t.test('a status change is told once, then each change; a timeline that goes back starts afresh', async (t) => {
  const told: Health[] = [];
  const health = new IngestHealth(youtube, (h) => told.push(h));
  feed(health, 10, 2);
  t.same(
    told.map((h) => h.status),
    ['good'],
  );
  feed(health, 16, 6, true, 10_000);
  t.same(
    told.map((h) => h.status),
    ['good', 'warning', 'bad'],
    'past what YouTube asks as the gap grows, then past what it takes, each once it held 5 s',
  );
  // A new connection's timeline starts at 0: the window starts again, the status told is kept.
  feed(health, 12, 2, true, 0);
  t.same(
    told.map((h) => h.status),
    ['good', 'warning', 'bad', 'good'],
  );
});

t.test(
  'a stream that flickers between states (a machine out of CPU) is told no change until one holds 5 s',
  async (t) => {
    const told: string[] = [];
    const health = new IngestHealth(youtube, (h) => told.push(h.status));
    feed(health, 10, 2);
    // Its sound comes and goes, 3 s gone then 2 s back, four times: each gap makes it bad for about a second.
    for (let from = 10_000; from < 30_000; from += 5000) {
      feed(health, 3, 2, false, from);
      feed(health, 2, 2, true, from + 3000);
    }
    t.same(told, ['good'], 'never told bad');
    feed(health, 8, 2, false, 30_000);
    t.same(told, ['good', 'bad'], 'told once the silence held');
  },
);

t.test('a push of sound alone is judged on its sound: good, where judged as video it is bad', async (t) => {
  const soundOnly = (pictures: boolean): IngestHealth => {
    const health = new IngestHealth(
      youtube,
      () => {},
      () => pictures,
    );
    health.audio(0, AAC_HEADER);
    for (let ms = 0; ms < 8000; ms += 20) health.audio(ms, aac(400));
    return health;
  };
  t.equal(soundOnly(false).current!.status, 'good');
  t.same(soundOnly(false).current!.issues, []);
  t.equal(soundOnly(true).current!.status, 'bad', 'judged as a video push: no keyframe, frame rate 0');
});
