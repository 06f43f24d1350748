import type { Amf0Value } from './amf0.js';
import type { VideoCodec } from './codecs.js';

/*
 * What media is handed along, and to what. A packet's way from the socket to the RTMP chunk is a chain
 * of sinks, each named by what it takes:
 *   the engine's socket → RtpSink (the track's `RtpReceiver`) → PacketSink (the video's depacketizer,
 *   the audio's fan-out) → FrameSink (the fan-out) → MediaSink (each push's input) → TagSink (the
 *   link's send buffer, then the RTMP connection).
 */

/** A received media packet, engine-neutral: what the RTP header says plus the payload. */
export interface MediaPacket {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payload: Buffer;
  /** Capture time on the publisher's clock (ms): 0 as read, set by the track's `RtpReceiver`. */
  captureMs: number;
}

/** A complete picture on the publisher's clock, made once per publisher and shared by every sink. */
export interface VideoFrame {
  readonly codec: VideoCodec;
  /** RTP timestamp (90 kHz). */
  readonly timestamp: number;
  /** Capture time on the publisher's clock (ms). */
  readonly captureMs: number;
  readonly key: boolean;
  /** The RTP packets it came in, and their payloads' bytes. */
  readonly packets: number;
  readonly bytes: number;
  /** H.264's SPS and PPS, when the frame carries them (a keyframe does). */
  readonly sps?: Buffer;
  readonly pps?: Buffer;
  /** The picture size its SPS codes, when it carries one that reads. */
  readonly size?: { width: number; height: number };
  /** H.264: the FLV video tag body of its SPS and PPS (AVCPacketType 0), when it carries them. */
  readonly sequenceHeader?: Buffer;
  /** H.264: the frame as an FLV video tag body (AVCPacketType 1). */
  readonly flv?: Buffer;
  /** The frame as its decoder reads it (Annex B for H.264), made once on first need. */
  bitstream(): Buffer;
}

/** An audio packet as sinks receive it: its payload and its capture time on the publisher's clock. */
export interface AudioPacket {
  payload: Buffer;
  /** Capture time on the publisher's clock (ms). */
  captureMs: number;
}

/** A caption as it went into a link's video. */
export interface LinkCue {
  /** After the link's first frame (ms). */
  linkMs: number;
  text: string;
  /** false: interim text, which the next caption writes over. */
  final: boolean;
}

/** What an engine hands a track's RTP to: datagrams as they came, or packets it read itself. */
export interface RtpSink {
  datagram(buffer: Buffer): void;
  packet(packet: MediaPacket): void;
}

/** Where a receiver hands each packet it accepts, timed: the video's depacketizer, the audio's fan-out. */
export interface PacketSink {
  push(packet: MediaPacket): void;
}

/** Where a depacketizer hands each whole frame: the publisher's fan-out. */
export interface FrameSink {
  frame(frame: VideoFrame): void;
}

/** What a publisher's fan-out gives its media to (a push, a recording, a snapshot): audio packets and whole frames. */
export interface MediaSink extends FrameSink {
  audio(packet: AudioPacket): void;
}

/** Where a link's FLV tags go: the RTMP connection itself, or a send buffer in front of it. */
export interface TagSink {
  writeMetadata(metadata: Record<string, Amf0Value>): void;
  writeVideo(timestamp: number, body: Buffer): void;
  writeAudio(timestamp: number, body: Buffer): void;
  /** A caption as it went into the video: a recording writes it out as WebVTT. */
  writeCaption?(cue: LinkCue): void;
}
