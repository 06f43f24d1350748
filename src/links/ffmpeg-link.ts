import type { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { EcmaArray, encodeAmf0, type Amf0Value } from '../media/amf0.js';
import { flvFileHeader, flvTag, FlvTagType } from '../media/flv.js';
import type { SendBufferSettings } from './send-buffer.js';
import type { DeliveryProbe, Link, LinkStats, SendBufferState } from './link.js';
import { type FailureKind, OpenError } from './failures.js';
import { GuardedLink } from './guarded-link.js';
import type { LinkCue, TagSink } from '../media/sinks.js';

/** Output waiting for ffmpeg beyond this fails the link (as an RTMP link's backlog does). */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;
/** The last lines of ffmpeg's log kept to tell why it ended. */
const LOG_LINES = 20;

/** ffmpeg's log as a link reads it: `Output #0` tells the output is open. */
export const FFMPEG_QUIET = ['-hide_banner', '-nostdin', '-loglevel', 'info', '-nostats'];

/** ffmpeg's input part for a link: FLV from standard input, copied as it is. */
export const FLV_STDIN = [
  // The stream's codec headers come first: little needs reading before the output opens.
  '-probesize',
  '262144',
  '-analyzeduration',
  '500000',
  '-f',
  'flv',
  '-i',
  'pipe:0',
  '-map',
  '0',
  '-c',
  'copy',
];

export interface FfmpegLinkSettings {
  connectTimeoutMs: number;
  stopTimeoutMs: number;
  maxLagMs: number;
  sendBuffer: SendBufferSettings;
  onBufferState: (state: SendBufferState) => void;
}

/** What one kind of ffmpeg output (SRT, recording) reads in ffmpeg's log. */
export interface FfmpegOutput {
  /** Why ffmpeg ended (or must end), from its last lines, scrubbed of secrets. */
  failure(lines: readonly string[]): { reason: string; kind: FailureKind };
  /** Each line ffmpeg logs. */
  onLine?(line: string): void;
  /** After ffmpeg ended, however it did. */
  onEnded?(): void;
  /** Each caption the link's video carries (a recording writes them beside its parts). */
  caption?(cue: LinkCue): void;
  /**
   * When the output counts as open, if not once ffmpeg describes it (a recording: once its first
   * part is in `record_dir`); rejecting it changes nothing, the output ends by `fail`.
   */
  opened?: Promise<void>;
}

/**
 * A link whose far end is an ffmpeg reading the link's media as FLV on its standard input and
 * writing it out (MPEG-TS over SRT, MP4 files). ffmpeg opens its output once it has read the
 * stream's first media (its codecs), so the link is open at once and `connected` tells when the
 * output opened: until then a failure rejects it; after, a failure is a loss. A lag guard and the
 * send buffer sit in front, as on an RTMP link; the lag is what ffmpeg has not read yet.
 */
export class FfmpegLink extends GuardedLink implements Link {
  readonly out: TagSink;
  readonly connected: Promise<void>;
  readonly #lines: string[] = [];
  readonly #pipe: FlvPipe;
  #isConnected = false;
  /** Why the output was ended before it opened, when the gateway ended it: what the refusal says. */
  #endedBy: { reason: string; kind: FailureKind } | undefined;

  constructor(
    private readonly ffmpeg: FfmpegProcess,
    private readonly output: FfmpegOutput,
    private readonly settings: FfmpegLinkSettings,
  ) {
    const pipe = new FlvPipe(ffmpeg);
    super(pipe, pipe, settings);
    this.#pipe = pipe;
    const checked = (write: () => void): void => {
      write();
      if (ffmpeg.inputBacklog > MAX_BACKLOG_BYTES)
        this.end(`the output does not keep up: ${Math.round(ffmpeg.inputBacklog / 1048576)} MB waiting`, 'unreachable');
    };
    const front = this.front;
    this.out = {
      writeMetadata: (metadata) => front.writeMetadata(metadata),
      writeVideo: (timestamp, body) => checked(() => front.writeVideo(timestamp, body)),
      writeAudio: (timestamp, body) => checked(() => front.writeAudio(timestamp, body)),
      writeCaption: (cue) => output.caption?.(cue),
    };

    let connect!: () => void;
    let refuse!: (error: OpenError) => void;
    this.connected = new Promise<void>((resolve, reject) => {
      connect = resolve;
      refuse = reject;
    });
    this.connected.catch(() => {}); // told through `connected` to whoever waits; nobody may
    const opened = (): void => {
      if (this.#isConnected || this.closed) return;
      this.#isConnected = true;
      connect();
    };
    output.opened?.then(opened, () => {});
    ffmpeg.on('line', (line) => {
      this.#lines.push(line);
      if (this.#lines.length > LOG_LINES) this.#lines.shift();
      output.onLine?.(line);
      // ffmpeg describes its output once it is open (the SRT session up, the first file created).
      if (!output.opened && line.startsWith('Output #0')) opened();
    });
    void ffmpeg.closed.then(() => {
      output.onEnded?.();
      const { reason, kind } = this.#endedBy ?? output.failure(this.#lines);
      if (!this.#isConnected) refuse(new OpenError(`could not publish to the destination: ${reason}`, kind));
      this.end(reason, kind);
    });
    // ffmpeg's own timeouts cover the output's opening; this covers an ffmpeg that never gets that far.
    const timer = setTimeout(
      () => {
        if (this.#isConnected || this.closed) return;
        this.#lines.push('Connection setup failure: connection time out');
        void ffmpeg.kill();
      },
      settings.connectTimeoutMs * 2 + 5000,
    );
    timer.unref();
    void this.connected.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  }

  get stats(): LinkStats {
    return {
      written: this.#pipe.bytesWritten,
      acknowledged: this.#pipe.bytesWritten - this.#pipe.undeliveredBytes,
      bufferings: this.sendBuffer?.bufferings ?? 0,
      framesDropped: this.guard.framesDropped,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sendBuffer?.close();
    await this.ffmpeg.stop(this.settings.stopTimeoutMs);
  }

  /**
   * The output must end (a recording's disk filling up): the loss is told and the push
   * closes the link, so ffmpeg stops cleanly (a file's last part is finished, not cut).
   */
  fail(reason: string, kind: FailureKind): void {
    if (this.#isConnected) this.lose(reason, kind);
    else this.end(reason, kind);
  }

  /** Ends ffmpeg; the loss is told once the output was open (before, `connected` tells it). */
  end(reason: string, kind: FailureKind): void {
    void this.ffmpeg.kill();
    if (this.#isConnected) this.lose(reason, kind);
    else {
      this.#endedBy ??= { reason, kind };
      this.closed = true;
    }
  }
}

/** Video held for the audio's first tag at most this much (bytes): then it goes without. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

/**
 * The link's media as an FLV byte stream into ffmpeg's standard input, counted; what the lag guard
 * measures. ffmpeg learns the stream's kinds from its first bytes (`-probesize`): the video of the
 * start (the frames cached since the keyframe, at once) would fill them before the audio's first
 * tag came, and ffmpeg would take a stream without sound. So the video waits for the audio's first
 * tag, which follows within a moment: a push always has audio (silence when its publisher has none).
 */
class FlvPipe implements TagSink, DeliveryProbe {
  bytesWritten = 0;
  /** Video tags written before the audio's first, until it comes. */
  #held: Buffer[] | undefined = [];
  #heldBytes = 0;

  constructor(private readonly ffmpeg: FfmpegProcess) {
    this.#write(flvFileHeader());
  }

  /** Written but not yet read by ffmpeg (it reads as fast as its output takes). */
  get undeliveredBytes(): number {
    return this.ffmpeg.inputBacklog;
  }

  writeMetadata(metadata: Record<string, Amf0Value>): void {
    this.#write(flvTag(FlvTagType.SCRIPT, 0, encodeAmf0('onMetaData', new EcmaArray(metadata))));
  }

  writeVideo(timestamp: number, body: Buffer): void {
    const tag = flvTag(FlvTagType.VIDEO, timestamp, body);
    if (!this.#held) return this.#write(tag);
    this.#held.push(tag);
    this.#heldBytes += tag.length;
    if (this.#heldBytes > MAX_HELD_BYTES) this.#release();
  }

  writeAudio(timestamp: number, body: Buffer): void {
    this.#write(flvTag(FlvTagType.AUDIO, timestamp, body));
    this.#release();
  }

  #release(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const tag of held ?? []) this.#write(tag);
  }

  #write(data: Buffer): void {
    if (this.ffmpeg.write(data)) this.bytesWritten += data.length;
  }
}
