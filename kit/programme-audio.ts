import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Sound like what people send, made here with ffmpeg alone so its licence is the project's own:
 * speech (libflite's voices reading a text written for it, in a room with its noise) and music
 * (a synthesized pop loop: pad chords, plucked bass, an arpeggio, kick, snare and hi-hat, with an
 * echo). A pure tone flatters an AAC coder; these do not. 48 kHz stereo PCM (WAV).
 *
 * flite's voices are band-limited to 8 kHz, as a telephone-grade recording is; the room's pink
 * noise (-42 dB) fills the band above it, as a microphone in a room does.
 */
export type ClipKind = 'speech' | 'music' | 'programme';

const RATE = 48000;

const LINES = [
  'Good evening, and welcome back to the show. Tonight we are live from the studio, and the chat is already busy.',
  'Before we start, a few words about the schedule. The first guest joins us in ten minutes, right after the news.',
  'Thank you. It is a pleasure to be here. We have been working on this project for almost three years now.',
  'So tell us, what surprised you most? Honestly, how quickly people picked it up, and how many questions they asked.',
  'Let us take a short break. Stay with us: after the music, we will answer your questions, one by one.',
];

/** A WAV file of `seconds` of that kind in `dir`, made the first time it is asked for. */
export function clip(dir: string, kind: ClipKind, seconds: number): string {
  const path = join(dir, `${kind}-${seconds}s.wav`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  if (kind === 'programme') {
    // Speech over a music bed 14 dB down, as a show's host talks over its theme.
    const speech = clip(dir, 'speech', seconds);
    const music = clip(dir, 'music', seconds);
    run([
      '-i',
      speech,
      '-i',
      music,
      '-filter_complex',
      '[1]volume=-14dB[bed];[0][bed]amix=inputs=2:normalize=0',
      ...pcm(seconds),
      path,
    ]);
  } else if (kind === 'speech') speechClip(dir, seconds, path);
  else
    run([
      '-f',
      'lavfi',
      '-i',
      `aevalsrc=${musicExpression()}:s=${RATE}:c=stereo:d=${seconds}`,
      '-af',
      'aecho=0.8:0.6:43|61:0.25|0.2',
      ...pcm(seconds),
      path,
    ]);
  return path;
}

function speechClip(dir: string, seconds: number, path: string): void {
  const voices = ['slt', 'rms', 'awb', 'slt', 'rms'];
  const inputs: string[] = [];
  const lines: string[] = [];
  LINES.forEach((line, i) => {
    const file = join(dir, `speech-line-${i}.txt`);
    writeFileSync(file, line);
    inputs.push('-f', 'lavfi', '-i', `flite=textfile=${file}:voice=${voices[i]}`);
    lines.push(`[${i}]aresample=${RATE},apad=pad_dur=0.4[l${i}]`);
  });
  const n = LINES.length;
  const graph = [
    ...lines,
    `${LINES.map((_, i) => `[l${i}]`).join('')}concat=n=${n}:v=0:a=1,aloop=loop=-1:size=${RATE * 60},atrim=0:${seconds}[voice]`,
    '[voice]aecho=0.8:0.5:11|23:0.18|0.1,pan=stereo|c0=c0|c1=c0[room]',
    `anoisesrc=c=pink:r=${RATE}:a=0.008:seed=7[nl]`,
    `anoisesrc=c=pink:r=${RATE}:a=0.008:seed=11[nr]`,
    '[nl][nr]join=inputs=2:channel_layout=stereo[noise]',
    '[room][noise]amix=inputs=2:duration=first:normalize=0',
  ];
  run([...inputs, '-filter_complex', graph.join(';'), ...pcm(seconds), path]);
}

/** Equal-tempered ratios of a chord's third and fifth to its root. */
const MAJOR_THIRD = 1.259921;
const MINOR_THIRD = 1.189207;
const FIFTH = 1.498307;

/**
 * A four-bar loop at 120 beats a minute: C, Am, F, G. Each channel is one expression of `t`; the
 * arpeggio and hi-hat sit more to one side than the other.
 */
function musicExpression(): string {
  // The bar (0..3) and its root (Hz); the time within the bar, the beat, the eighth.
  const bar = 'floor(mod(t,8)/2)';
  const root = `if(eq(${bar},0),130.81,if(eq(${bar},1),110,if(eq(${bar},2),87.31,98)))`;
  const third = `if(eq(${bar},1),${MINOR_THIRD},${MAJOR_THIRD})`;
  const inBar = 'mod(t,2)';
  const inBeat = 'mod(t,0.5)';
  const inEighth = 'mod(t,0.25)';
  const saw = (hz: string, harmonics: number): string =>
    Array.from({ length: harmonics }, (_, k) => `sin(2*PI*${k + 1}*${hz}*t)/${k + 1}`).join('+');
  const pad = `0.05*sin(PI*${inBar}/2)*(${saw('ld(0)', 5)}+${saw(`ld(0)*${third}`, 5)}+${saw(`ld(0)*${FIFTH}`, 5)})`;
  const bass = `0.16*min(1,${inBeat}*200)*exp(-5*${inBeat})*(${saw('ld(0)/2', 4)})`;
  // The arpeggio climbs the chord two octaves up, an eighth note each.
  const step = 'mod(floor(t/0.25),4)';
  const note = `ld(0)*2*if(eq(${step},0),1,if(eq(${step},1),${third},if(eq(${step},2),${FIFTH},2)))`;
  const arp = `min(1,${inEighth}*300)*exp(-7*${inEighth})*(sin(2*PI*${note}*t)+0.3*sin(4*PI*${note}*t))`;
  const inKick = 'mod(t,1)';
  const kick = `0.35*exp(-9*${inKick})*sin(2*PI*(55*${inKick}+5*(1-exp(-20*${inKick}))))`;
  const inSnare = 'mod(t-0.5,1)';
  const snare = `if(gte(t,0.5),exp(-14*${inSnare})*(0.12*(2*random(1)-1)+0.1*sin(2*PI*185*${inSnare})),0)`;
  const hat = `exp(-45*${inEighth})*(2*random(2)-1)`;
  const channel = (arpLevel: number, hatLevel: number): string =>
    `st(0,${root});${pad}+${bass}+${arpLevel}*${arp}+${kick}+${snare}+${hatLevel}*${hat}`;
  return `'${channel(0.09, 0.03)}|${channel(0.04, 0.06)}'`;
}

function pcm(seconds: number): string[] {
  return ['-t', String(seconds), '-ar', String(RATE), '-ac', '2', '-c:a', 'pcm_s16le', '-f', 'wav'];
}

function run(args: string[]): void {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`ffmpeg could not make the clip: ${result.stderr || result.error}`);
}
