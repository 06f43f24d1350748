import { checkEvery } from '../core/tick.js';
import type { SecureContext } from 'node:tls';
import { RtmpPushClient, type RtmpPublishOptions } from '../rtmp/client.js';
import { RtmpError } from '../rtmp/errors.js';
import type { DestinationResolver } from '../security/destination-policy.js';
import { scrubDestination, type Destination } from './destination.js';
import { classifyFailure, OpenError } from './failures.js';
import { GuardedLink } from './guarded-link.js';
import type { Link, LinkFactory, LinkStats, SendBufferState } from './link.js';
import type { SendBufferSettings } from './send-buffer.js';
import type { TagSink } from '../media/sinks.js';

/** Output waiting in the gateway for a slow destination beyond this fails the link (~50 s at 2.5 Mb/s). */
const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;
/** How often the link looks at the destination's acknowledgements. */
const STALL_CHECK_MS = 250;
/**
 * While reconnecting, a TCP connection not made within this long is given up and tried afresh:
 * the kernel's own SYN retries back off to 3 s, 7 s and more, which would leave a returned network
 * unused for seconds.
 */
const RECONNECT_SOCKET_TIMEOUT_MS = 2000;

export interface RtmpLinkSettings {
  flashVer: string;
  /** Local address of the outbound RTMP connection; undefined lets the system choose. */
  localAddress?: string;
  secureContext: SecureContext;
  resolveDestination: DestinationResolver;
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  maxLagMs: number;
  sendBuffer: SendBufferSettings;
  onListenerError: (event: string, error: unknown) => void;
  onBufferState: (state: SendBufferState) => void;
}

/** What an RTMP session to `destination` at `address` is made of: the push's, and a check's. */
export function rtmpSession(
  destination: Destination,
  address: string,
  settings: Pick<RtmpLinkSettings, 'flashVer' | 'localAddress' | 'secureContext'>,
): Omit<RtmpPublishOptions, 'timeoutMs'> {
  const { protocol } = destination;
  if (protocol === 'srt' || protocol === 'record') throw new Error(`a ${protocol} destination has no RTMP session`);
  return {
    protocol,
    address,
    port: destination.port,
    host: destination.host,
    app: destination.app,
    tcUrl: destination.tcUrl,
    streamName: destination.streamName,
    query: destination.query,
    ...(destination.queryInAppOnly ? { queryInName: false } : {}),
    credentials: destination.credentials,
    flashVer: settings.flashVer,
    localAddress: settings.localAddress,
    secureContext: settings.secureContext,
  };
}

/**
 * Links to one destination: the first connects to `pinnedAddress` (what the startup resolved and
 * checked), every later one looks the host up and checks it again.
 */
export function rtmpLinks(destination: Destination, settings: RtmpLinkSettings, pinnedAddress?: string): LinkFactory {
  let pinned = pinnedAddress;
  return async (reconnecting, videoFourCcs) => {
    let rtmp: RtmpPushClient;
    try {
      const address = pinned ?? (await settings.resolveDestination(destination.host, destination.port));
      pinned = undefined;
      rtmp = await RtmpPushClient.publish({
        ...rtmpSession(destination, address, settings),
        timeoutMs: settings.connectTimeoutMs,
        socketTimeoutMs: reconnecting ? RECONNECT_SOCKET_TIMEOUT_MS : undefined,
        videoFourCcs,
        onListenerError: settings.onListenerError,
      });
    } catch (error) {
      throw new OpenError(
        `could not publish to the destination: ${scrubDestination((error as Error).message, destination)}`,
        classifyFailure(error),
      );
    }
    return new RtmpLink(rtmp, destination, settings);
  };
}

/**
 * The RTMP link: the publish session, a `LagGuard` that drops media up to a keyframe for a
 * destination too far behind, and the send buffer when enabled. It is the one place that decides
 * the destination stalled (`#checkStall`): media it does not take piling up beyond
 * MAX_BACKLOG_BYTES, or nothing acknowledged for `stallTimeoutMs`. A stall, or the connection's
 * end, is a loss.
 */
class RtmpLink extends GuardedLink implements Link {
  readonly out: TagSink;
  /** Stops its stall check. */
  readonly #uncheckStall: () => void;
  /** Since when output has waited on the destination without it acknowledging anything. */
  #overdueSince: number | undefined;
  #acknowledgements: number;

  constructor(
    private readonly rtmp: RtmpPushClient,
    private readonly destination: Destination,
    settings: RtmpLinkSettings,
  ) {
    super(rtmp, rtmp, settings);
    this.out = this.front;
    rtmp.on('closed', (error) => {
      this.#uncheckStall();
      if (error)
        this.lose(
          `destination connection lost: ${scrubDestination(error.message, this.destination)}`,
          classifyFailure(error),
        );
    });
    this.#acknowledgements = rtmp.acknowledgements;
    this.#uncheckStall = checkEvery(STALL_CHECK_MS, (now, onTime) =>
      this.#checkStall(settings.stallTimeoutMs, now, onTime),
    );
  }

  get stats(): LinkStats {
    return {
      written: this.rtmp.bytesWritten,
      acknowledged: this.rtmp.bytesAcknowledged,
      bufferings: this.sendBuffer?.bufferings ?? 0,
      framesDropped: this.guard.framesDropped,
    };
  }

  get acknowledgedAt(): number | undefined {
    return this.rtmp.lastAcknowledgedAt;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.#uncheckStall();
    this.sendBuffer?.close();
    await this.rtmp.close();
  }

  /**
   * Output stalls when the server stops acknowledging while output waits on it (a cut network, a
   * stopped server: the kernel keeps taking bytes for a long time); the connection is ended as a
   * dead one would be. A server that acknowledges, however slowly, has not stalled: a slow one is
   * the lag guard's to handle.
   */
  #checkStall(timeoutMs: number, now: number, onTime: boolean): void {
    if (this.#backlogged()) return;
    const { rtmp } = this;
    const progressed = rtmp.acknowledgements !== this.#acknowledgements;
    this.#acknowledgements = rtmp.acknowledgements;
    // A late check (the thread starved) may have acknowledgements waiting unread: it starts again.
    if (!rtmp.behind || progressed || !onTime) this.#overdueSince = undefined;
    else this.#overdueSince ??= now;
    if (this.#overdueSince === undefined || now - this.#overdueSince < timeoutMs) return;
    const what =
      rtmp.acknowledgements > 0
        ? `acknowledged nothing of the last ${Math.round(rtmp.unacknowledgedBytes / 1024)} KB`
        : 'took no data';
    rtmp.abort(new RtmpError(`the destination ${what} for ${Math.round((now - this.#overdueSince) / 1000)} s`));
  }

  /** A destination that takes less than it is sent would make the gateway buffer without end: true when it is lost so. */
  #backlogged(): boolean {
    const waiting = this.rtmp.bufferedBytes;
    if (waiting <= MAX_BACKLOG_BYTES) return false;
    this.#uncheckStall();
    this.lose(
      `the destination does not keep up: ${Math.round(waiting / 1048576)} MB waiting to be sent`,
      'unreachable',
    );
    return true;
  }
}
