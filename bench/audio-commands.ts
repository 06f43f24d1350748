import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { now, sleep } from '../kit/processes.js';
import type { RtmpMediaMessage, RtmpReceiver } from '../kit/rtmp-receiver.js';
import { median } from '../kit/stats.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';
import { round, type Bench } from './report.js';

const run = promisify(execFile);
const AAC_FRAME = 1024;

/** An audio message as the RTMP server got it, with the level of its decoded samples. */
interface HeardFrame {
  arrivalMs: number;
  timestamp: number;
  /** RMS of the frame's samples, dBFS. */
  db: number;
}

/**
 * Decodes the AAC messages an RTMP server received (sequence header first) with ffmpeg and gives
 * each its level, so the moment the audio changed can be matched to the moment it arrived.
 */
async function levelsOfFrames(messages: RtmpMediaMessage[], workFile: string): Promise<HeardFrame[]> {
  const header = messages.find((m) => m.sequenceHeader);
  const frames = messages.filter((m) => !m.sequenceHeader);
  if (!header || frames.length === 0) throw new Error('no AAC received');
  await writeFile(workFile, flv([header, ...frames]));
  const { stdout } = await run(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-i', workFile, '-f', 's16le', '-ac', '1', '-ar', '48000', 'pipe:1'],
    {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  const pcm = new Int16Array(stdout.buffer, stdout.byteOffset, Math.floor(stdout.length / 2));
  // The decoder drops the encoder's priming: output sample 0 is the first frame's content.
  return frames.map((m, k) => {
    let sum = 0;
    const from = k * AAC_FRAME;
    const to = Math.min(pcm.length, from + AAC_FRAME);
    for (let i = from; i < to; i++) sum += pcm[i]! * pcm[i]!;
    const rms = to > from ? Math.sqrt(sum / (to - from)) / 32768 : 0;
    return { arrivalMs: m.arrivalMs, timestamp: m.timestamp, db: rms > 0 ? 20 * Math.log10(rms) : -Infinity };
  });
}

/**
 * How long after `commandMs` the first frame of a change arrived: the first frame arriving after
 * the command's request was sent that satisfies `changed`, whose predecessor did not.
 */
function changeLatency(
  frames: HeardFrame[],
  sentMs: number,
  answeredMs: number,
  changed: (db: number) => boolean,
): number | undefined {
  for (let k = 1; k < frames.length; k++) {
    const frame = frames[k]!;
    if (frame.arrivalMs < sentMs) continue;
    if (changed(frame.db) && !changed(frames[k - 1]!.db)) return frame.arrivalMs - answeredMs;
  }
  return undefined;
}

function flv(messages: RtmpMediaMessage[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x46, 0x4c, 0x56, 1, 0x04, 0, 0, 0, 9, 0, 0, 0, 0])];
  for (const m of messages) {
    const tag = Buffer.alloc(11);
    tag[0] = 8;
    tag.writeUIntBE(m.data.length, 1, 3);
    tag.writeUIntBE(m.timestamp & 0xffffff, 4, 3);
    tag[7] = (m.timestamp >>> 24) & 0xff;
    const size = Buffer.alloc(4);
    size.writeUInt32BE(11 + m.data.length);
    parts.push(tag, m.data, size);
  }
  return Buffer.concat(parts);
}

export async function audioCommands(
  bench: Bench,
  gateway: GatewayProcess,
  fixture: Fixture,
  receiver: RtmpReceiver,
): Promise<void> {
  console.log(`\nAudio commands on a live push (${bench.plan.audioRuns} runs of mute, sound_on, unmute)`);
  const name = 'audio-commands';
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, name);
  const messages: RtmpMediaMessage[] = [];
  const collect = (m: RtmpMediaMessage): void => {
    if (m.kind === 'audio' && m.publish.streamName === `rtmp_${name}`) messages.push(m);
  };
  receiver.on('media', collect);
  const commands: Array<{ action: string; sentMs: number; answeredMs: number }> = [];
  try {
    await sleep(1000);
    const started = await gateway.request('POST', '/rest-api/push/startup', {
      streamName: name,
      rtmpUrl: receiver.url(),
    });
    if (started.status !== 200) throw new Error(`startup answered ${started.status}`);
    const command = async (action: string, body: object = {}): Promise<void> => {
      const sentMs = now();
      const reply = await gateway.request('POST', `/rest-api/push/${action}`, {
        mediaSessionId: started.body.mediaSessionId,
        ...body,
      });
      if (reply.status !== 200) throw new Error(`${action} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      commands.push({ action, sentMs, answeredMs: now() });
    };
    await sleep(1500);
    for (let i = 0; i < bench.plan.audioRuns; i++) {
      await command('mute');
      await sleep(700 + ((i * 131) % 300));
      await command('sound_on', { soundFile: 'chime.wav' });
      await sleep(1300);
      await command('unmute');
      await sleep(700 + ((i * 173) % 300));
    }
    await gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId: started.body.mediaSessionId });
  } finally {
    receiver.off('media', collect);
    await publisher.stop();
  }
  const frames = await levelsOfFrames(messages, join(bench.work, 'audio-commands.flv'));
  const heard = (db: number): boolean => db > -50;
  const latencies: Record<string, number[]> = { mute: [], sound_on: [], unmute: [] };
  for (const c of commands) {
    const latency = changeLatency(frames, c.sentMs, c.answeredMs, c.action === 'mute' ? (db) => !heard(db) : heard);
    if (latency === undefined) throw new Error(`${c.action} at ${c.sentMs} never showed in the output`);
    latencies[c.action]!.push(latency);
  }
  bench.details.audioCommands = Object.fromEntries(Object.entries(latencies).map(([k, v]) => [k, v.map(round)]));
  for (const [action, values] of Object.entries(latencies)) {
    bench.report(`${action} reply -> change at RTMP server, median`, median(values) / 1000, 's', {
      runs: values.map((ms) => ms / 1000),
    });
    bench.report(`${action} reply -> change at RTMP server, max`, Math.max(...values) / 1000, 's', { max: 0.5 });
  }
}
