import { CaptionTrack } from '../src/captions/track.js';
import type { Bench } from './report.js';

const FPS = 30;
const SECONDS = 600;

/**
 * What captions add to a push, in the gateway's thread: a caption track fed a caption every second
 * over ten minutes of 30 fps frames (the benchmark's 1280x720 frame sizes: ~10 KB, a 60 KB
 * keyframe every 2 s), each frame given its SEI. CPU time per frame, in-process (the push's whole
 * CPU differs from a push without captions by less than two windows of it differ).
 */
export function captionCost(bench: Bench): void {
  const frame = (size: number): Buffer => {
    const body = Buffer.alloc(5 + 4 + size);
    body.set([0x27, 1, 0, 0, 0]);
    body.writeUInt32BE(size, 5);
    body[9] = 0x41; // a non-IDR slice
    return body;
  };
  const inter = frame(10_000);
  const key = frame(60_000);
  const run = (): number => {
    const track = new CaptionTrack();
    const started = process.cpuUsage();
    for (let i = 0; i < SECONDS * FPS; i++) {
      const ms = Math.round((i * 1000) / FPS);
      if (i % FPS === 0)
        track.write({ text: `Caption number ${i / FPS}, sent a second after the one before.`, final: true, atMs: ms });
      track.frame(i % (2 * FPS) === 0 ? key : inter, ms, ms);
    }
    const used = process.cpuUsage(started);
    return (used.user + used.system) / (SECONDS * FPS);
  };
  run(); // compiled and warm
  const perFrameUs = Math.min(run(), run(), run());
  console.log(`\nCaptions: a caption a second, ${FPS} fps, in-process: ${perFrameUs.toFixed(2)} µs a frame`);
  bench.report('captions: CPU a push with a caption a second (in-process)', (perFrameUs * FPS) / 1e4, '% of a core', {
    max: 0.2,
  });
}
