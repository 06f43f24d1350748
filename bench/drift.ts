import type { Fixture } from '../kit/fixture.js';
import { seededRandom } from '../kit/stats.js';
import { OpusTimeline } from '../src/audio/opus-timeline.js';
import { ClockMapping } from '../src/media/clock-mapping.js';
import { OPUS_SILENCE_20MS } from '../src/media/ogg.js';
import type { Bench } from './report.js';

/** A day of a stream, compressed: its packets mapped in-process, on simulated arrival times. */
const DAY_MS = 86_400_000;
/** The A/V offset is taken once the mappings settled (their first fit and pull): this far in. */
const SETTLED_MS = 60_000;
/** The bytes of an Ogg page of one silent Opus frame: how a filled gap is told from sound. */
const SILENT_PAGE_BYTES = 27 + 1 + OPUS_SILENCE_20MS.length;

/**
 * A publisher whose sound card runs `ppm` off the system clock that stamps its video, for a day:
 * its video (30 fps at 90 kHz) and its Opus (20 ms at 48 kHz) each mapped by the gateway's clock
 * mapping from arrivals 5 ms after capture plus up to 40 ms of jitter, the sound relayed as a push
 * relays it. Returns how far the sound moved against the pictures after they settled (the largest
 * change of their offset, ms) and the sound lost (ms dropped, and ms of silence put in for sound).
 */
function day(fixture: Fixture, ppm: number): { driftMs: number; lostMs: number; filledMs: number } {
  const next = seededRandom(1000 + ppm);
  const arrival = (captured: number): number => captured + 5 + 40 * next() ** 3;
  const video = new ClockMapping(90_000, 0, 5, 5);
  const audio = new ClockMapping(48_000, 0, 5, 5);
  let now = 5;
  let filledPages = 0;
  const relay = new OpusTimeline({
    write: (page) => void (page.length === SILENT_PAGE_BYTES && filledPages++),
    now: () => now,
  });
  relay.begin(5);
  const audioStep = 20 / (1 + ppm / 1e6);
  let videoFrame = 0;
  let audioPacket = 0;
  let settled: number | undefined;
  let driftMs = 0;
  while (audioPacket * audioStep < DAY_MS) {
    // The two tracks in the order they are captured; each mapped at its arrival.
    const videoAt = (videoFrame * 1000) / 30;
    const audioAt = audioPacket * audioStep;
    if (videoAt <= audioAt) {
      const mapped = video.next((videoFrame * 3000) % 2 ** 32, arrival(videoAt));
      videoFrame++;
      const offset = audio.captureMs(((audioPacket - 1) * 960) % 2 ** 32) - (audioAt - audioStep) - (mapped - videoAt);
      if (videoAt >= SETTLED_MS) {
        settled ??= offset;
        driftMs = Math.max(driftMs, Math.abs(offset - settled));
      }
    } else {
      now = arrival(audioAt);
      const captureMs = audio.next((audioPacket * 960) % 2 ** 32, now);
      relay.push(fixture.audio[audioPacket % fixture.audio.length]!, captureMs);
      audioPacket++;
    }
  }
  relay.close();
  return { driftMs, lostMs: relay.dropped / 48, filledMs: filledPages * 20 };
}

/**
 * Lip sync over a compressed day: the sound of a publisher whose sound card runs ±100 ppm off its
 * video's clock, against its pictures, after the clock mappings settled, and the sound the push's
 * relay lost or filled with silence. Targets: 30 ms of drift at most, no sound lost.
 */
export function driftDay(bench: Bench, fixture: Fixture): void {
  console.log('\nLip sync over a compressed day: a sound card ±100 ppm off the clock of its video');
  for (const ppm of [100, -100]) {
    const { driftMs, lostMs, filledMs } = day(fixture, ppm);
    const name = `${ppm > 0 ? '+' : ''}${ppm} ppm for a day`;
    bench.report(`drift: the sound against the pictures, ${name}`, driftMs, 'ms', { max: 30 });
    bench.report(`drift: sound lost, ${name}`, lostMs + filledMs, 'ms', { max: 0 });
  }
}
