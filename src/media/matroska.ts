import type { VideoCodec } from './codecs.js';

/**
 * A live Matroska stream of one video track (the publisher's frames, as they came) and one PCM
 * audio track, for an ffmpeg that transcodes: one input carrying both, so that ffmpeg reads one
 * pipe with a blocking read instead of polling two (DESIGN.md, "The vertical picture beside the
 * landscape one"). Written as it goes: the segment's size is unknown, and each block is a cluster of
 * its own, so a block is complete, readable and timed the moment it is written.
 */

/** Block times count in microseconds (a TimestampScale of 1000 ns). */
export const MATROSKA_CLOCK_RATE = 1_000_000;

const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  CodecID: 0x86,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  BitDepth: 0x6264,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
} as const;

/**
 * Matroska's codec IDs. H.264 goes as the Annex B stream the publisher sent, which ffmpeg's decoder
 * takes without a CodecPrivate; AV1 as its temporal units, whose keyframes carry the sequence header.
 */
const VIDEO_CODEC_ID: Record<VideoCodec, string> = {
  H264: 'V_MPEG4/ISO/AVC',
  VP8: 'V_VP8',
  VP9: 'V_VP9',
  AV1: 'V_AV1',
};

export const MATROSKA_VIDEO_TRACK = 1;
export const MATROSKA_AUDIO_TRACK = 2;

/** An element's ID bytes: the ID constants carry their length marker already. */
function idBytes(id: number): Buffer {
  const length = id >= 0x1000000 ? 4 : id >= 0x10000 ? 3 : id >= 0x100 ? 2 : 1;
  const bytes = Buffer.alloc(length);
  bytes.writeUIntBE(id, 0, length);
  return bytes;
}

/** A data size as an 8-byte EBML variable-length integer (fits any size up to 2^48). */
function sizeBytes(size: number): Buffer {
  const bytes = Buffer.alloc(8);
  writeSize(bytes, 0, size);
  return bytes;
}

function writeSize(bytes: Buffer, at: number, size: number): void {
  bytes.writeUInt8(0x01, at);
  bytes.writeUIntBE(size, at + 2, 6);
}

/** The size "unknown" (all value bits set), for a segment written live. */
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

function element(id: number, ...data: Buffer[]): Buffer {
  const body = Buffer.concat(data);
  return Buffer.concat([idBytes(id), sizeBytes(body.length), body]);
}

function uint(id: number, value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(value));
  return element(id, bytes);
}

function float(id: number, value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(value);
  return element(id, bytes);
}

const text = (id: number, value: string): Buffer => element(id, Buffer.from(value, 'latin1'));

/** The stream's start: the EBML header, a segment of unknown size, its Info and its two tracks. */
export function matroskaHeader(video: VideoCodec, audio: { sampleRate: number; channels: number }): Buffer {
  const ebml = element(
    ID.EBML,
    uint(ID.EBMLVersion, 1),
    uint(ID.EBMLReadVersion, 1),
    uint(ID.EBMLMaxIDLength, 4),
    uint(ID.EBMLMaxSizeLength, 8),
    text(ID.DocType, 'matroska'),
    uint(ID.DocTypeVersion, 4),
    uint(ID.DocTypeReadVersion, 2),
  );
  const scale = uint(ID.TimestampScale, 1_000_000_000 / MATROSKA_CLOCK_RATE);
  const info = element(ID.Info, scale, text(ID.MuxingApp, 'gateway'), text(ID.WritingApp, 'gateway'));
  const rate = float(ID.SamplingFrequency, audio.sampleRate);
  const pcm = element(ID.Audio, rate, uint(ID.Channels, audio.channels), uint(ID.BitDepth, 16));
  const tracks = element(
    ID.Tracks,
    trackEntry(MATROSKA_VIDEO_TRACK, TRACK_TYPE.video, VIDEO_CODEC_ID[video]),
    trackEntry(MATROSKA_AUDIO_TRACK, TRACK_TYPE.audio, 'A_PCM/INT/LIT', pcm),
  );
  return Buffer.concat([ebml, idBytes(ID.Segment), UNKNOWN_SIZE, info, tracks]);
}

const TRACK_TYPE = { video: 1, audio: 2 } as const;

/** A track numbered `number` (its UID the same), of `type`, in `codec`, with what else describes it. */
function trackEntry(number: number, type: number, codec: string, ...more: Buffer[]): Buffer {
  const ids = [uint(ID.TrackNumber, number), uint(ID.TrackUID, number)];
  return element(ID.TrackEntry, ...ids, uint(ID.TrackType, type), text(ID.CodecID, codec), ...more);
}

/**
 * What comes before the `size` bytes of one block of `track` at `time` (in 1/MATROSKA_CLOCK_RATE s,
 * never negative): a cluster of its own, whose time is the block's (the block's own offset is 0).
 * `key` marks a video keyframe (audio blocks are all keyframes).
 */
export function matroskaBlockHead(track: number, time: number, size: number, key: boolean): Buffer {
  // Written in one buffer: a frame's head is made 30 times a second a push.
  // Cluster ID, size | Timestamp ID, size, value | SimpleBlock ID, size | track, offset 0, flags.
  const head = Buffer.alloc(BLOCK_HEAD_BYTES);
  head.writeUInt32BE(ID.Cluster, 0);
  writeSize(head, 4, BLOCK_HEAD_BYTES - 12 + size);
  head.writeUInt8(ID.Timestamp, 12);
  writeSize(head, 13, 8);
  head.writeBigUInt64BE(BigInt(time), 21);
  head.writeUInt8(ID.SimpleBlock, 29);
  writeSize(head, 30, 4 + size);
  head.writeUInt8(0x80 | track, 38);
  head.writeUInt8(key ? 0x80 : 0, 41);
  return head;
}

/** A block's head as `matroskaBlockHead` writes it: the cluster's 12 bytes, its timestamp's 17, the block's 13. */
const BLOCK_HEAD_BYTES = 42;
