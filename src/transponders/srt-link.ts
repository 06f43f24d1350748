import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { EcmaArray, encodeAmf0, type Amf0Value } from '../rtmp/amf0.js';
import { flvFileHeader, flvTag, FlvTagType } from '../media/flv.js';
import type { DestinationResolver } from '../security/destination-policy.js';
import { scrubDestination, type Destination } from './destination.js';
import type { DeliveryProbe } from './lag-guard.js';
import type { MediaOutput, OutBufferSettings, OutBufferState } from './out-buffer.js';
import { OpenError, type FailureKind } from './restore.js';
import { GuardedLink, type Link, type LinkFactory, type LinkStats } from './rtmp-link.js';

/** Output waiting for ffmpeg beyond this fails the link (as an RTMP link's backlog does). */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;
/** SRT's usual payload: seven MPEG-TS packets. */
const PACKET_SIZE = 1316;
/** The last lines of ffmpeg's log kept to tell why it ended. */
const LOG_LINES = 20;

export interface SrtLinkSettings {
  ffmpegPath: string;
  /** Starts ffmpeg through the gateway's supervisor. */
  spawn: (args: readonly string[]) => FfmpegProcess;
  resolveDestination: DestinationResolver;
  connectTimeoutMs: number;
  stopTimeoutMs: number;
  maxLagMs: number;
  outBuffer: OutBufferSettings;
  onBufferState: (state: OutBufferState) => void;
}

/**
 * ffmpeg's arguments for one SRT session: FLV from standard input, copied (H.264 and AAC as they
 * are) into MPEG-TS over SRT in caller mode, to `address`. The SRT options go as ffmpeg options
 * rather than in the URL, so their values reach libsrt exactly as given (its URL options are not
 * unescaped).
 */
export function srtArgs(destination: Destination, address: string, connectTimeoutMs: number): string[] {
  return [
    ...FFMPEG_QUIET,
    // The stream's codec headers come first: little needs reading before the output opens.
    '-probesize', '262144', '-analyzeduration', '500000',
    '-f', 'flv', '-i', 'pipe:0',
    '-map', '0', '-c', 'copy', '-flush_packets', '1',
    ...srtOutput(destination, address, connectTimeoutMs),
  ];
}

/** ffmpeg's log as the link reads it: `Output #0` tells the session is up. */
export const FFMPEG_QUIET = ['-hide_banner', '-nostdin', '-loglevel', 'info', '-nostats'];

/** The output part of ffmpeg's arguments: MPEG-TS to the SRT destination at `address`, its options. */
export function srtOutput(destination: Destination, address: string, connectTimeoutMs: number): string[] {
  const srt = destination.srt ?? {};
  const host = address.includes(':') ? `[${address}]` : address;
  return [
    '-f', 'mpegts',
    ...(srt.streamId !== undefined ? ['-srt_streamid', srt.streamId] : []),
    ...(srt.passphrase !== undefined ? ['-passphrase', srt.passphrase] : []),
    ...(srt.keyLength !== undefined ? ['-pbkeylen', String(srt.keyLength)] : []),
    // libsrt takes the latency in microseconds.
    ...(srt.latencyMs !== undefined ? ['-latency', String(srt.latencyMs * 1000)] : []),
    '-connect_timeout', String(connectTimeoutMs),
    '-pkt_size', String(PACKET_SIZE),
    `srt://${host}:${destination.port}?mode=caller`,
  ];
}

/** Why an SRT session's ffmpeg ended, from its last lines (scrubbed), and what kind of failure it is. */
export function srtFailure(lines: readonly string[], destination: Destination): { reason: string; kind: FailureKind } {
  const text = lines.join('\n');
  if (/Incorrect passphrase|BADSECRET/i.test(text)) return { reason: 'the SRT destination refused the passphrase', kind: 'rejected' };
  if (/passphrase|NOSECRET|KMREQ/i.test(text)) return { reason: 'the SRT destination asks for a passphrase (or another one)', kind: 'rejected' };
  const rejected = /REJECT\w*[^:]*:\s*(.+?)(?: - not processing further)?$/im.exec(text);
  if (rejected) return { reason: `the SRT destination refused the connection: ${scrubDestination(rejected[1]!, destination)}`, kind: 'rejected' };
  if (/Connection setup failure|connection time ?out|timed out/i.test(text)) return { reason: 'the SRT destination did not answer (connection timed out)', kind: 'unreachable' };
  // libsrt says no more of a caller nobody answered.
  if (/Connection to srt:\S* failed/i.test(text) || /^srt:\S*: Input\/output error$/m.test(text)) return { reason: 'the SRT destination did not answer', kind: 'unreachable' };
  const last = [...lines].reverse().find((l) => /error|fail|refused|lost|broken/i.test(l)) ?? lines.at(-1) ?? 'ffmpeg ended';
  return { reason: `SRT output ended: ${scrubDestination(last.trim(), destination)}`, kind: 'unreachable' };
}

/** Links to one SRT destination: the first to `pinnedAddress`, every later one looked up and checked again. */
export function srtLinks(destination: Destination, settings: SrtLinkSettings, pinnedAddress?: string): LinkFactory {
  let pinned = pinnedAddress;
  return async () => {
    const address = pinned ?? (await settings.resolveDestination(destination.host, destination.port).catch((error: Error) => {
      throw new OpenError(`could not publish to the destination: ${scrubDestination(error.message, destination)}`, 'rejected');
    }));
    pinned = undefined;
    return new SrtLink(settings.spawn(srtArgs(destination, address, settings.connectTimeoutMs)), destination, settings);
  };
}

/**
 * One SRT session: an ffmpeg reading the link's media as FLV and sending it as MPEG-TS over SRT.
 * ffmpeg connects once it has read the stream's first media (its codecs), so the link is open at
 * once and `connected` tells when the destination took the session: until then a failure rejects
 * it; after, a failure is a loss. A lag guard and the output buffer sit in front, as on an RTMP
 * link; the lag is what ffmpeg has not read yet (it reads as fast as SRT sends).
 */
export class SrtLink extends GuardedLink implements Link {
  readonly out: MediaOutput;
  readonly connected: Promise<void>;
  readonly #lines: string[] = [];
  readonly #pipe: FlvPipe;
  #isConnected = false;

  constructor(
    private readonly ffmpeg: FfmpegProcess,
    private readonly destination: Destination,
    private readonly settings: SrtLinkSettings,
  ) {
    const pipe = new FlvPipe(ffmpeg);
    super(pipe, pipe, settings);
    this.#pipe = pipe;
    const checked = (write: () => void): void => {
      write();
      if (ffmpeg.inputBacklog > MAX_BACKLOG_BYTES) this.#end(`the destination does not keep up: ${Math.round(ffmpeg.inputBacklog / 1048576)} MB waiting to be sent`, 'unreachable');
    };
    const front = this.front;
    this.out = {
      writeMetadata: (metadata) => front.writeMetadata(metadata),
      writeVideo: (timestamp, body) => checked(() => front.writeVideo(timestamp, body)),
      writeAudio: (timestamp, body) => checked(() => front.writeAudio(timestamp, body)),
    };

    let connect!: () => void;
    let refuse!: (error: OpenError) => void;
    this.connected = new Promise<void>((resolve, reject) => {
      connect = resolve;
      refuse = reject;
    });
    this.connected.catch(() => {}); // told through `connected` to whoever waits; nobody may
    ffmpeg.on('line', (line) => {
      this.#lines.push(line);
      if (this.#lines.length > LOG_LINES) this.#lines.shift();
      // ffmpeg describes its output once the SRT session is up.
      if (!this.#isConnected && line.startsWith('Output #0')) {
        this.#isConnected = true;
        connect();
      }
    });
    void ffmpeg.closed.then(() => {
      const { reason, kind } = srtFailure(this.#lines, destination);
      if (!this.#isConnected) refuse(new OpenError(`could not publish to the destination: ${reason}`, kind));
      this.#end(reason, kind);
    });
    // ffmpeg's own connect_timeout covers the handshake; this covers an ffmpeg that never gets that far.
    const timer = setTimeout(() => {
      if (this.#isConnected || this.closed) return;
      this.#lines.push('Connection setup failure: connection time out');
      void ffmpeg.kill();
    }, settings.connectTimeoutMs * 2 + 5000);
    timer.unref();
    void this.connected.then(() => clearTimeout(timer), () => clearTimeout(timer));
  }

  get stats(): LinkStats {
    return {
      written: this.#pipe.bytesWritten,
      acknowledged: this.#pipe.bytesWritten - this.#pipe.undeliveredBytes,
      bufferings: this.outBuffer?.bufferings ?? 0,
      framesDropped: this.guard.framesDropped,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.outBuffer?.close();
    await this.ffmpeg.stop(this.settings.stopTimeoutMs);
  }

  /** ffmpeg is ended; the loss is told once the session was up (before, `connected` tells it). */
  #end(reason: string, kind: FailureKind): void {
    void this.ffmpeg.kill();
    if (this.#isConnected) this.lose(reason, kind);
    else this.closed = true;
  }
}

/** The link's media as an FLV byte stream into ffmpeg's standard input, counted; what the lag guard measures. */
class FlvPipe implements MediaOutput, DeliveryProbe {
  bytesWritten = 0;

  constructor(private readonly ffmpeg: FfmpegProcess) {
    this.#write(flvFileHeader());
  }

  /** Written but not yet read by ffmpeg (it reads as fast as SRT sends). */
  get undeliveredBytes(): number {
    return this.ffmpeg.inputBacklog;
  }

  writeMetadata(metadata: Record<string, Amf0Value>): void {
    this.#write(flvTag(FlvTagType.SCRIPT, 0, encodeAmf0('onMetaData', new EcmaArray(metadata))));
  }

  writeVideo(timestamp: number, body: Buffer): void {
    this.#write(flvTag(FlvTagType.VIDEO, timestamp, body));
  }

  writeAudio(timestamp: number, body: Buffer): void {
    this.#write(flvTag(FlvTagType.AUDIO, timestamp, body));
  }

  #write(data: Buffer): void {
    if (this.ffmpeg.write(data)) this.bytesWritten += data.length;
  }
}
