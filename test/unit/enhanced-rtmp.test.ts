import t from 'tap';
import { decodeAmf0, encodeAmf0, type Amf0Value } from '../../src/media/amf0.js';
import { Av1Frame, av1CodecConfiguration, type Av1Sequence, type Obu } from '../../src/media/av1.js';
import {
  exVideoBody,
  FlvTagType,
  fourCcNumber,
  isKeyframeBody,
  isVideoFrameTag,
  isVideoSequenceHeader,
  readExVideoHeader,
  VideoPacketType,
} from '../../src/media/flv.js';
import { passthroughMetadata, TagWriter } from '../../src/pushes/tag-writer.js';

// Enhanced RTMP's video tags as the gateway writes them for AV1: the extended header, the sequence
// start with the stream's own av1C, coded frames, and onMetaData naming the codec by its FourCC.

const sequence = (width: number): { info: Av1Sequence; obu: Obu } => {
  const payload = Buffer.from([0x00, 0x00, 0x00, width & 0xff, 0x4f]);
  return {
    info: {
      ...{ profile: 0, level: 8, tier: 0, highBitdepth: false, twelveBit: false, monochrome: false },
      ...{ subsamplingX: true, subsamplingY: true, chromaSamplePosition: 0, width, height: (width * 9) / 16 },
      reducedStillPictureHeader: false,
    },
    obu: { type: 1, header: Buffer.from([0x08]), payload, length: 1 + payload.length },
  };
};

let captureMs = 1000;
/** An AV1 temporal unit as the depacketizer makes it: the Enhanced RTMP body with room for its header. */
function av1Frame(key: boolean, width = 1280): Av1Frame {
  const obus = Buffer.from([0x32, 0x03, 1, 2, 3]); // one OBU_FRAME with its size
  const body = Buffer.concat([Buffer.alloc(5), obus]);
  captureMs += 33;
  const pending = { timestamp: captureMs * 90, captureMs, key, damaged: false, packets: 1, bytes: obus.length };
  return new Av1Frame(pending, body, key ? sequence(width) : undefined);
}

t.test('the extended video header: FourCC, packet type and frame type, told apart from FLV’s own', async (t) => {
  t.equal(fourCcNumber('av01'), 0x61763031, "onMetaData's videocodecid for AV1");
  const start = exVideoBody(VideoPacketType.SequenceStart, 'av01', true, Buffer.from([0x81, 0x08]));
  t.same([...start.subarray(0, 5)], [0x90, 0x61, 0x76, 0x30, 0x31], 'IsExHeader, key frame, SequenceStart, "av01"');
  t.same(readExVideoHeader(start), { packetType: 0, fourCc: 'av01', key: true });
  const inter = exVideoBody(VideoPacketType.CodedFrames, 'av01', false, Buffer.from([1]));
  t.equal(inter[0], 0xa1, 'inter frame, CodedFrames');
  t.equal(readExVideoHeader(Buffer.from([0x17, 1, 0, 0, 0])), undefined, 'an AVC body is no extended one');

  const avcHeader = Buffer.from([0x17, 0, 0, 0, 0]);
  const avcKey = Buffer.from([0x17, 1, 0, 0, 0]);
  const avcInter = Buffer.from([0x27, 1, 0, 0, 0]);
  t.same(
    [start, inter, avcHeader, avcKey, avcInter].map(isVideoSequenceHeader),
    [true, false, true, false, false],
    'a sequence header in either form',
  );
  t.same([start, inter, avcHeader, avcKey, avcInter].map(isKeyframeBody), [true, false, true, true, false]);
  const tag = (body: Buffer) => ({ type: FlvTagType.VIDEO, timestamp: 0, body });
  t.same(
    [start, inter, avcHeader, avcKey, avcInter].map((body) => isVideoFrameTag(tag(body))),
    [false, true, false, true, true],
    'a picture in either form',
  );
});

t.test('an AV1 frame is its CodedFrames body; a keyframe carries the SequenceStart of its av1C', async (t) => {
  const key = av1Frame(true);
  t.same(readExVideoHeader(key.flv), { packetType: VideoPacketType.CodedFrames, fourCc: 'av01', key: true });
  t.same(key.data, Buffer.from([0x32, 0x03, 1, 2, 3]), 'the temporal unit follows the header');
  t.equal(key.data.buffer, key.flv.buffer, 'one buffer: the OBUs are a view of the body');
  const { info, obu } = sequence(1280);
  t.same(
    key.sequenceHeader,
    exVideoBody(VideoPacketType.SequenceStart, 'av01', true, av1CodecConfiguration(info, obu)),
  );
  t.same(key.size, { width: 1280, height: 720 });
  const inter = av1Frame(false);
  t.equal(inter.flv[0], 0xa1);
  t.equal(inter.sequenceHeader, undefined);
});

t.test('the tag writer passes AV1 through: metadata by FourCC, SequenceStart when new, then frames', async (t) => {
  const sent: [string, number, Buffer | Record<string, Amf0Value>][] = [];
  const writer = new TagWriter({
    sendMetadata: true,
    audioSampleRate: 48000,
    metadata: (size, codec) => passthroughMetadata(size, 30, { sampleRate: 48000, bitrateKbps: 128 }, codec),
    onBadSps: () => t.fail('an AV1 sequence header always gives a size'),
  });
  const out = {
    writeMetadata: (m: Record<string, Amf0Value>) => void sent.push(['meta', 0, m]),
    writeVideo: (ts: number, body: Buffer) => void sent.push(['video', ts, body]),
    writeAudio: () => {},
    writeCaption: () => t.fail('no caption goes into AV1'),
  };
  writer.useLink(out, true);
  writer.caption({ text: 'hello', final: true, atMs: captureMs });
  t.notOk(writer.writeFrame(av1Frame(false)), 'nothing before the first keyframe: no decoder configuration yet');
  const key = av1Frame(true);
  t.ok(writer.writeFrame(key));
  t.ok(writer.writeFrame(av1Frame(false)));
  t.ok(writer.writeFrame(av1Frame(true)), 'the same sequence header again');
  const resized = av1Frame(true, 1920);
  t.ok(writer.writeFrame(resized));
  t.same(
    sent.map(([kind, , body]) =>
      kind === 'meta'
        ? 'meta'
        : `${readExVideoHeader(body as Buffer)!.packetType}${isKeyframeBody(body as Buffer) ? 'k' : ''}`,
    ),
    ['meta', '0k', '1k', '1', '1k', '0k', '1k'],
    'metadata, SequenceStart, frames; a SequenceStart again only when the sequence header changed',
  );
  t.match(sent[0]![2], { videocodecid: 0x61763031, width: 1280, height: 720, framerate: 30, audiocodecid: 10 });
  t.equal(sent[2]![2], key.flv, 'the frame as it came: nothing written into it (no captions)');
  t.equal(writer.picture, undefined, 'no still picture is made of AV1');
  t.equal(writer.resolutionChanges, 1);
  t.same(writer.size, { width: 1920, height: 1080 });

  sent.length = 0;
  writer.useLink(out, true);
  writer.writeFrame(av1Frame(false));
  writer.writeFrame(av1Frame(true, 1920));
  t.same(
    sent.map(([kind, , body]) => (kind === 'meta' ? 'meta' : readExVideoHeader(body as Buffer)!.packetType)),
    ['meta', 0, 1],
    'a new link starts again with metadata and a SequenceStart, from a keyframe',
  );
});

t.test('AMF0 strict arrays are written and read back (fourCcList)', async (t) => {
  const encoded = encodeAmf0({ fourCcList: ['av01', 'hvc1'], capsEx: 0 });
  t.equal(encoded.includes(Buffer.from([0x0a, 0, 0, 0, 2])), true, 'a strict array of two');
  t.same(decodeAmf0(encoded), [{ fourCcList: ['av01', 'hvc1'], capsEx: 0 }]);
});
