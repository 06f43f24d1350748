import t from 'tap';
import { FlvTagType } from '../../src/media/flv.js';
import { encodeAmf0, type Amf0Value } from '../../src/media/amf0.js';
import { passthroughMetadata, TagWriter } from '../../src/pushes/tag-writer.js';

// A transcoding ffmpeg's onMetaData goes out with the frame rate sent (asked for, or the source's as
// measured), not ffmpeg's guess from the first timestamps: a browser's uneven 20 fps gave 40.
t.test('transcoded onMetaData carries the frame rate sent, the rest as ffmpeg wrote it', async (t) => {
  const sent: Record<string, Amf0Value>[] = [];
  const writer = new TagWriter({
    sendMetadata: true,
    audioSampleRate: 48000,
    metadata: (size) => passthroughMetadata(size, 20, { sampleRate: 48000, bitrateKbps: 128 }),
    onBadSps: () => {},
  });
  writer.useLink({ writeMetadata: (m) => sent.push(m), writeVideo: () => {}, writeAudio: () => {} }, true);
  const fromFfmpeg = encodeAmf0('onMetaData', {
    width: 960,
    height: 540,
    framerate: 40,
    videocodecid: 7,
    encoder: 'Lavf59.27.100',
  });
  writer.writeTag(
    { type: FlvTagType.SCRIPT, timestamp: 0, body: fromFfmpeg },
    { shiftMs: 0, still: false, transcoding: true, videoStartMs: 0 },
  );
  t.equal(sent.length, 1);
  t.match(sent[0], {
    width: 960,
    height: 540,
    framerate: 20,
    videocodecid: 7,
    audiocodecid: 10,
    audiosamplerate: 48000,
    encoder: 'webrtc-rtmp-gateway',
  });
});
