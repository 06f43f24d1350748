import t from 'tap';
import { GatewayError } from '../../src/core/errors.js';
import { planEncoding } from '../../src/pipeline/encoding.js';
import { destinationCodecs, PLATFORMS } from '../../src/links/platforms.js';
import { encodingSettings as settings } from '../helpers/encoding.js';

// Which video each destination is sent: the stream's own codec where the destination takes it, else
// H.264 transcoded; `videoCodec` asks for one, refused with the field named where it cannot be.

const platform = (name: string) => PLATFORMS.find((p) => p.name === name)!;
const rtmp = { protocol: 'rtmp' as const };
const youtube = destinationCodecs(platform('youtube'), rtmp);
const facebook = destinationCodecs(platform('facebook'), { protocol: 'rtmps' });
const server = destinationCodecs(undefined, rtmp);
const recording = destinationCodecs(undefined, { protocol: 'record' });

/** The 400 `planEncoding` throws, as field and message. */
function refusal(run: () => unknown): { field?: string; message: string } | undefined {
  try {
    run();
  } catch (error) {
    if (!(error instanceof GatewayError) || error.code !== 'invalid_request') throw error;
    return { field: error.field, message: error.message };
  }
  return undefined;
}

t.test('what each platform takes, with YouTube alone taking AV1 and HEVC (over Enhanced RTMP)', async (t) => {
  t.same(youtube.codecs, ['H264', 'AV1', 'HEVC']);
  t.same(destinationCodecs(platform('youtube-shorts'), rtmp).codecs, ['H264', 'AV1', 'HEVC']);
  for (const name of ['twitch', 'facebook', 'instagram', 'tiktok', 'kick'])
    t.same(destinationCodecs(platform(name), rtmp).codecs, ['H264'], name);
  t.same(recording, { codecs: ['H264'], by: 'a recording', strict: true });
  t.same(destinationCodecs(undefined, { protocol: 'srt' }).codecs, ['H264']);
  t.same(server, { codecs: ['H264'], by: 'an RTMP server', strict: false });
});

t.test('an AV1 stream passes through to YouTube, and is transcoded for H.264-only destinations', async (t) => {
  t.same(planEncoding('AV1', {}, settings, youtube), { video: 'copy' });
  t.match(planEncoding('AV1', {}, settings, facebook), { video: 'transcode', reason: 'source codec AV1 is not H.264' });
  t.match(planEncoding('AV1', {}, settings, server), { video: 'transcode' }, "a server's own: H.264 unless asked");
  t.match(planEncoding('AV1', {}, settings, recording), { video: 'transcode' });
  t.match(planEncoding('AV1', { videoCodec: 'h264' }, settings, youtube), { video: 'transcode' }, 'h264 asked');
  t.match(
    planEncoding('AV1', { height: 720 }, settings, youtube),
    { video: 'transcode', reason: 'height 720 requested', scale: { height: 720 } },
    'a size asked: transcoded to H.264, as any stream',
  );
  t.same(
    planEncoding('AV1', { videoCodec: 'passthrough' }, settings, server),
    { video: 'copy' },
    'a server said to take it',
  );
  t.same(planEncoding('AV1', { videoCodec: 'av1', audioBitrate: 96 }, settings, youtube), {
    video: 'copy',
    audioBitrateKbps: 96,
  });
});

t.test('H.264 goes as before; VP8 and VP9 are always transcoded', async (t) => {
  t.same(planEncoding('H264', {}, settings, youtube), { video: 'copy' });
  t.same(planEncoding('H264', { videoCodec: 'passthrough' }, settings, facebook), { video: 'copy' });
  t.same(planEncoding('H264', { videoCodec: 'h264' }, settings, recording), { video: 'copy' });
  t.match(planEncoding('VP9', {}, settings, youtube), { video: 'transcode' });
  t.match(planEncoding('VP8', { videoCodec: 'h264' }, settings, youtube), { video: 'transcode' });
});

t.test('a codec that cannot be sent as asked is a 400 naming videoCodec', async (t) => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'AV1 demanded as it is by Facebook',
      () => planEncoding('AV1', { videoCodec: 'passthrough' }, settings, facebook),
      /facebook takes H\.264 only, not AV1/,
    ],
    [
      'AV1 demanded by a recording',
      () => planEncoding('AV1', { videoCodec: 'av1' }, settings, recording),
      /a recording takes H\.264 only/,
    ],
    [
      'av1 of an H.264 stream',
      () => planEncoding('H264', { videoCodec: 'av1' }, settings, youtube),
      /never encoded here: the stream is H264/,
    ],
    ['hevc', () => planEncoding('H264', { videoCodec: 'hevc' }, settings, youtube), /no HEVC stream can be published/],
    [
      'VP8 as it is',
      () => planEncoding('VP8', { videoCodec: 'passthrough' }, settings, server),
      /VP8, which RTMP cannot carry/,
    ],
    [
      'passthrough with a size',
      () => planEncoding('AV1', { videoCodec: 'passthrough', height: 480 }, settings, youtube),
      /height 480 requested needs a transcode/,
    ],
    [
      'passthrough with a frame rate',
      () => planEncoding('H264', { videoCodec: 'passthrough', fps: 30 }, settings, youtube),
      /fps 30 requested/,
    ],
  ];
  for (const [name, run, message] of cases) {
    const refused = refusal(run);
    t.equal(refused?.field, 'videoCodec', name);
    t.match(refused?.message, message, name);
    t.match(refused?.message, /^videoCodec: /, `${name}: the message names the field`);
  }
});

t.test(
  'transcoding disabled: an AV1 stream for an H.264-only destination is refused, one for YouTube goes',
  async (t) => {
    const off = { ...settings, transcodingEnabled: false };
    t.same(planEncoding('AV1', {}, off, youtube), { video: 'copy' });
    t.throws(() => planEncoding('AV1', {}, off, facebook), { code: 'not_supported', message: /source codec AV1/ });
  },
);
