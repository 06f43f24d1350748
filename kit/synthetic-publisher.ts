import { randomInt } from 'node:crypto';
import { RtpHeader, RtpPacket, type RTCPeerConnection, type RTCRtpSender } from 'werift';
import { WebSocket } from 'ws';
import { now, waitFor } from './processes.js';
import type { Fixture } from './fixture.js';
import { packetizeH264 } from './h264-packetizer.js';
import { av1RtpPayloads } from './av1-packetizer.js';
import { loopbackPeer } from './werift-peer.js';

export interface PublishOptions {
  audio?: boolean;
  token?: string;
  /** Publish over the SDK's WebSocket instead of WHIP, with `rtmpUrl` or `destinations` to republish to. */
  sdk?: SdkPublish;
  /**
   * One video packet in this many is lost on the way, the first time it is sent: only a
   * retransmission the gateway asks for (NACK) brings it. Audio is not touched.
   */
  loseOneVideoPacketIn?: number;
  /** How long it waits for WebRTC to connect before it gives up (30 s). */
  connectTimeoutMs?: number;
  /** The one address its ICE gathers on (127.0.0.1): a test host's link for a server in a namespace. */
  localAddress?: string;
  /** Signalling of another server in place of WHIP (a peer's API): the offer in, the answer out. */
  exchange?: (offer: string) => Promise<string>;
  /** The RTP timestamp of the first video frame, and of the first sound packet (random otherwise). */
  firstVideoTimestamp?: number;
  firstAudioTimestamp?: number;
  /** Keyframe requests (PLI) are ignored, as some hardware encoders do: keyframes come as the fixture has them. */
  ignoreKeyframeRequests?: boolean;
  /**
   * Its sound card runs this far off the clock that paces its video (0.005: 0.5 % fast, its 20 ms of
   * sound sent every 19.9 ms), as a real sender's does; 0 by default.
   */
  audioClockSkew?: number;
  /**
   * Nothing is sent for this long after connecting, then at once what fell due meanwhile, then on
   * time: first packets read late, as a busy gateway reads them.
   */
  holdFirstMs?: number;
  /** As `holdFirstMs`, for its sound alone: its pictures go on time, its first sound comes late at once. */
  holdFirstAudioMs?: number;
  /** false: it sends no RTCP sender reports, as OBS's WHIP output does not (werift sends them by default). */
  senderReports?: boolean;
  /**
   * Sends on this publisher's clock: each frame and sound packet in the same tick as its own of the
   * same index, from the same place in its fixture (so, with keyframe requests ignored by both, at
   * the same place in its GOP). Its fixture has the same frame rate and sound frames.
   */
  clockOf?: SyntheticPublisher;
}

/** What the SDK's publish message carries besides the offer. */
export interface SdkPublish {
  rtmpUrl?: string;
  rtmpTransponderFullUrl?: boolean;
  destinations?: { id: string; rtmpUrl: string; rtmpTransponderFullUrl?: boolean }[];
  token?: string;
}

export interface SentFrame {
  /** Frames sent by this publisher before this one (by the one whose clock it shares: `clockOf`). */
  index: number;
  /** The fixture's access unit that was sent. */
  unit: number;
  key: boolean;
  sentAt: number;
  /** When it was due: when a camera would have captured it. Later than `sentAt` only after a stall. */
  dueAt: number;
}

const VIDEO_PT = 96;
const AUDIO_PT = 111;
const TICK_MS = 5;

/**
 * A WebRTC publisher without a browser: werift as the client, WHIP for signalling, pre-encoded
 * H.264 and Opus from the fixture sent at real-time pace. All publishers of a process share one
 * timer, so a hundred of them cost little more than one.
 */
export class SyntheticPublisher {
  readonly frames: SentFrame[] = [];
  #resource?: string;
  #video?: RTCRtpSender;
  #audio?: RTCRtpSender;
  #startedAt = 0;
  #videoSent = 0;
  /** Next fixture access unit to send. */
  #unit = 0;
  #keyframeRequested = false;
  #ignoreKeyframeRequests = false;
  /** Nothing is sent before this; then everything due goes at once, as after a network hiccup. */
  #heldUntil = 0;
  #holdFirstAudioMs = 0;
  #audioHeldUntil = 0;
  #audioSent = 0;
  #holdFirstMs = 0;
  #senderReports = true;
  /** Real milliseconds per sound frame's worth of its sound card's clock (`audioClockSkew`). */
  #audioPace = 1;
  /** The sound frame its fixture's first packet went with (a fixture switched to starts from its first). */
  #audioOffset = 0;
  /** The WHIP Authorization header, when publishing needs a token. */
  #auth: Record<string, string> = {};
  #withAudio = true;
  #loseOneIn = 0;
  #connectTimeoutMs = 30_000;
  /** Video packets lost so far, and how many of them were sent again on request. */
  readonly videoLoss = { lost: 0, resent: 0 };
  /**
   * Datagrams (RTP, RTCP) werift's ICE connection was given and did not send, which it does not
   * tell: its consent to send had expired (RFC 7675: no answer to its checks for 30 s), or the
   * socket refused them. What they carried is lost before any server sees it.
   */
  sendsLost = 0;
  #videoSeq = randomInt(0, 0xffff);
  #audioSeq = randomInt(0, 0xffff);
  #videoTs0 = randomInt(0, 0x7fffffff);
  #audioTs0 = randomInt(0, 0x7fffffff);
  readonly #pc: RTCPeerConnection;
  #sdk: SdkPublish | undefined;
  #ws: WebSocket | undefined;
  /** With `sdk`: the gateway's messages on the WebSocket, in order. */
  readonly messages: Record<string, unknown>[] = [];
  #payloads: Buffer[][];

  #exchange: PublishOptions['exchange'];
  #clockOf: SyntheticPublisher | undefined;

  private constructor(
    private fixture: Fixture,
    readonly name: string,
    localAddress = '127.0.0.1',
  ) {
    this.#payloads = payloadsOf(fixture);
    this.#pc = loopbackPeer(localAddress, { video: VIDEO_PT, audio: AUDIO_PT }, fixture.codec);
  }

  /** The WebRTC connection's state, as the peer sees it. */
  get connectionState(): string {
    return this.#pc.connectionState;
  }

  /** Publishes `name` to the gateway's WHIP endpoint and starts sending once connected. */
  static async publish(
    fixture: Fixture,
    baseUrl: string,
    name: string,
    options: PublishOptions = {},
  ): Promise<SyntheticPublisher> {
    const publisher = new SyntheticPublisher(fixture, name, options.localAddress);
    publisher.#exchange = options.exchange;
    publisher.#withAudio = options.audio ?? true;
    publisher.#auth = options.token ? { authorization: `Bearer ${options.token}` } : {};
    publisher.#sdk = options.sdk;
    publisher.#loseOneIn = options.loseOneVideoPacketIn ?? 0;
    publisher.#connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    publisher.#videoTs0 = options.firstVideoTimestamp ?? publisher.#videoTs0;
    publisher.#audioTs0 = options.firstAudioTimestamp ?? publisher.#audioTs0;
    publisher.#ignoreKeyframeRequests = options.ignoreKeyframeRequests ?? false;
    publisher.#audioPace = 1 / (1 + (options.audioClockSkew ?? 0));
    publisher.#holdFirstMs = options.holdFirstMs ?? 0;
    publisher.#holdFirstAudioMs = options.holdFirstAudioMs ?? 0;
    publisher.#senderReports = options.senderReports ?? true;
    publisher.#clockOf = options.clockOf;
    try {
      await publisher.#connect(baseUrl);
    } catch (error) {
      await publisher.stop();
      throw error;
    }
    return publisher;
  }

  async #connect(baseUrl: string): Promise<void> {
    const pc = this.#pc;
    this.#video = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
    if (this.#withAudio) this.#audio = pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    // werift starts its report loop at the first packet sent unless it runs already: marked running, it never starts.
    if (!this.#senderReports)
      for (const sender of [this.#video, this.#audio])
        if (sender) (sender as unknown as { rtcpRunning: boolean }).rtcpRunning = true;
    // As an encoder would, answer a keyframe request with the next frame: here by skipping ahead
    // to the fixture's next keyframe.
    if (!this.#ignoreKeyframeRequests)
      this.#video.onPictureLossIndication.subscribe(() => (this.#keyframeRequested = true));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const offer = pc.localDescription!.sdp;
    const answer = this.#exchange
      ? await this.#exchange(offer)
      : this.#sdk
        ? await this.#signal(baseUrl, offer, this.#sdk)
        : await this.#whip(baseUrl, offer);
    this.answer = answer;
    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: WebRTC did not connect in ${this.#connectTimeoutMs / 1000} s`)),
        this.#connectTimeoutMs,
      );
      pc.connectionStateChange.subscribe((state) => {
        if (state === 'connected') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await connected;
    this.#countSendsLost(this.#video);
    if (this.#loseOneIn) this.#loseVideoPackets(this.#video, this.#loseOneIn);
    if (this.#clockOf) this.#shareClock(this.#clockOf);
    else {
      this.#startedAt = now();
      this.#heldUntil = this.#startedAt + this.#holdFirstMs;
      this.#audioHeldUntil = this.#startedAt + this.#holdFirstAudioMs;
    }
    pacer.add(this);
  }

  /**
   * The frame an FLV video tag (passed through by the gateway) carries: the last one sent before
   * `beforeMs` with the same picture. The fixture repeats every 10 s, so the match is unique for
   * any delay shorter than that.
   */
  frameOf(body: Buffer, beforeMs: number): SentFrame | undefined {
    const picture = flvNals(body).at(-1);
    if (!picture) return undefined;
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const frame = this.frames[i]!;
      if (frame.sentAt <= beforeMs && this.fixture.video[frame.unit]!.nals.at(-1)!.equals(picture)) return frame;
    }
    return undefined;
  }

  /** Counts in `sendsLost` what the (bundled) ICE connection drops without a word. */
  #countSendsLost(sender: RTCRtpSender): void {
    const connection = sender.dtlsTransport.iceTransport.connection;
    const send = connection.send.bind(connection);
    // Private in werift's types: what its `send` checks first.
    const maySend = (connection as unknown as { canSendApplicationData(): boolean }).canSendApplicationData.bind(
      connection,
    );
    connection.send = async (data) => {
      if (!maySend()) this.sendsLost++;
      return send(data).catch((error: unknown) => {
        this.sendsLost++;
        throw error;
      });
    };
  }

  /**
   * Drops one video packet in `oneIn` where it leaves for the network, the first time only, and
   * sends it again when a NACK names it. The sender's own history holds 128 packets (half a second
   * here): a NACK that comes later, on a busy machine, finds the packet kept here instead, as a
   * browser's longer history would.
   */
  #loseVideoPackets(sender: RTCRtpSender, oneIn: number): void {
    const transport = sender.dtlsTransport;
    const send = transport.sendRtp.bind(transport);
    const lost = new Map<number, Parameters<typeof send>>();
    let count = 0;
    transport.sendRtp = async (payload, header) => {
      if (header.ssrc === sender.ssrc) {
        if (lost.delete(header.sequenceNumber)) this.videoLoss.resent++;
        else if (++count % oneIn === 0) {
          lost.set(header.sequenceNumber, [payload, header]);
          this.videoLoss.lost++;
          return 0;
        }
      }
      return send(payload, header);
    };
    // Told after the sender resent what its history had: what it no longer had is sent from here.
    sender.onGenericNack.subscribe((nack) => {
      for (const seq of nack.lost) {
        const packet = lost.get(seq);
        if (packet) void transport.sendRtp(...packet).catch(() => {});
      }
    });
  }

  /**
   * From the next frames on, sends `next` in place of its fixture: pictures from its first (a
   * keyframe), sound from its first packet, both at once. Resolves with when the first of each was
   * due (its capture time, on `now()`'s clock) once both were sent.
   */
  switchTo(next: Fixture): Promise<{ videoDueAt: number; audioDueAt: number }> {
    if (next.fps !== this.fixture.fps || next.audioFrameMs !== this.fixture.audioFrameMs)
      throw new Error('a fixture switched to has the same frame rate and sound frames');
    this.fixture = next;
    if ((next.codec ?? 'H264') !== (this.fixture.codec ?? 'H264'))
      throw new Error('a fixture switched to has the same codec');
    this.#payloads = payloadsOf(next);
    this.#unit = 0;
    const audioFrom = this.#audioSent;
    const videoFrom = this.#videoSent;
    const frameMs = 1000 / next.fps;
    this.#audioOffset = audioFrom;
    return waitFor(`${this.name}'s switched frames sent`, () =>
      this.#videoSent > videoFrom && (this.#audioSent > audioFrom || !this.#audio)
        ? {
            videoDueAt: this.#startedAt + videoFrom * frameMs,
            audioDueAt: this.#startedAt + audioFrom * next.audioFrameMs,
          }
        : undefined,
    );
  }

  /**
   * From the next packet on, the track's RTP time is `ticks` further on than the time that passed,
   * as a sender whose clock leaps (its encoder restarted, or hours of stream time stood for).
   */
  leapRtpTime(kind: 'video' | 'audio', ticks: number): void {
    if (kind === 'video') this.#videoTs0 = (this.#videoTs0 + ticks) >>> 0;
    else this.#audioTs0 = (this.#audioTs0 + ticks) >>> 0;
  }

  /** From its first tick on, frames and sound go as `other`'s of the same index, from the same place in its fixture. */
  #shareClock(other: SyntheticPublisher): void {
    if (other.fixture.fps !== this.fixture.fps || other.fixture.audioFrameMs !== this.fixture.audioFrameMs)
      throw new Error('a publisher sharing a clock has the same frame rate and sound frames');
    this.#startedAt = other.#startedAt;
    this.#videoSent = other.#videoSent;
    this.#unit = other.#unit;
    this.#audioSent = other.#audioSent;
    this.#audioOffset = other.#audioOffset;
    this.#audioPace = other.#audioPace;
    this.#heldUntil = other.#heldUntil;
    this.#audioHeldUntil = other.#audioHeldUntil;
  }

  /** Sends nothing for `ms`, then at once what fell due meanwhile: a burst of late packets. */
  stall(ms: number): void {
    this.#heldUntil = now() + ms;
  }

  /** Sends whatever is due by `time`; called by the shared pacer. */
  tick(time: number): void {
    if (time < this.#heldUntil) return;
    const frameMs = 1000 / this.fixture.fps;
    while (this.#startedAt + this.#videoSent * frameMs <= time) this.#sendVideoFrame();
    if (!this.#audio || time < this.#audioHeldUntil) return;
    while (this.#startedAt + this.#audioSent * this.fixture.audioFrameMs * this.#audioPace <= time)
      this.#sendAudioFrame();
  }

  /** The RTP timestamp frame `index` was sent with. */
  videoTimestamp(index: number): number {
    return (this.#videoTs0 + index * (90000 / this.fixture.fps)) >>> 0;
  }

  #sendVideoFrame(): void {
    const index = this.#videoSent++;
    const units = this.fixture.video;
    if (this.#keyframeRequested) {
      this.#keyframeRequested = false;
      while (!units[this.#unit]!.key) this.#unit = (this.#unit + 1) % units.length;
    }
    const unit = this.#unit;
    this.#unit = (unit + 1) % units.length;
    const payloads = this.#payloads[unit]!;
    const timestamp = this.videoTimestamp(index);
    payloads.forEach((payload, i) => {
      this.#videoSeq = (this.#videoSeq + 1) & 0xffff;
      send(this.#video!, VIDEO_PT, this.#videoSeq, timestamp, i === payloads.length - 1, payload);
    });
    this.frames.push({
      index,
      unit,
      key: units[unit]!.key,
      sentAt: now(),
      dueAt: this.#startedAt + (index * 1000) / this.fixture.fps,
    });
  }

  #sendAudioFrame(): void {
    const index = this.#audioSent++;
    const timestamp = (this.#audioTs0 + index * 48 * this.fixture.audioFrameMs) >>> 0;
    this.#audioSeq = (this.#audioSeq + 1) & 0xffff;
    send(
      this.#audio!,
      AUDIO_PT,
      this.#audioSeq,
      timestamp,
      false,
      this.fixture.audio[(index - this.#audioOffset) % this.fixture.audio.length]!,
    );
  }

  async #whip(baseUrl: string, offer: string): Promise<string> {
    const response = await fetch(`${baseUrl}/whip/${encodeURIComponent(this.name)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...this.#auth },
      body: offer,
    });
    const answer = await response.text();
    if (response.status !== 201) throw new Error(`WHIP publish of ${this.name} answered ${response.status}: ${answer}`);
    this.#resource = new URL(response.headers.get('location')!, baseUrl).href;
    return answer;
  }

  /** Publishes as the browser SDK does, over the gateway's WebSocket; every message it gets is kept in `messages`. */
  async #signal(baseUrl: string, offer: string, sdk: SdkPublish): Promise<string> {
    const ws = (this.#ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws`));
    ws.on('error', () => undefined); // a refused or reset connection shows as no answer
    const answer = new Promise<string>((resolve, reject) => {
      ws.on('message', (data) => {
        const message = JSON.parse(String(data as Buffer)) as Record<string, unknown>;
        this.messages.push(message);
        if (message.type === 'answer') resolve(message.sdp as string);
        if (message.type === 'error')
          reject(new Error(`SDK publish of ${this.name} answered ${String(message.code)}: ${String(message.message)}`));
      });
      ws.on('close', () => reject(new Error(`SDK publish of ${this.name}: the WebSocket closed`)));
    });
    answer.catch(() => undefined); // awaited below, once the socket is open
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('close', () => reject(new Error(`SDK publish of ${this.name}: the WebSocket did not open`)));
    });
    ws.send(JSON.stringify({ type: 'publish', requestId: '1', name: this.name, sdp: offer, ...sdk }));
    return answer;
  }

  /** Sends another SDK message on the publish's WebSocket (adding or removing a destination). */
  signal(message: Record<string, unknown>): void {
    this.#ws?.send(JSON.stringify(message));
  }

  /** The gateway's SDP answer, once published. */
  answer = '';

  /** The WHIP session's resource (its `Location`), while the session is on. */
  get resource(): string | undefined {
    return this.#resource;
  }

  /** Goes away without a word, as a closed page does: stops sending and closes the connection, no WHIP DELETE. */
  async vanish(): Promise<void> {
    pacer.remove(this);
    this.#resource = undefined;
    this.#ws?.terminate();
    await this.#pc.close();
  }

  /**
   * Closes its peer connection only, as a client that ends its media before it signals the stop:
   * the WHIP resource and the SDK WebSocket stay, for the `stop()` that follows.
   */
  async closePeer(): Promise<void> {
    pacer.remove(this);
    await this.#pc.close();
  }

  /** Stops sending, ends the WHIP session and closes the connection. */
  async stop(): Promise<void> {
    pacer.remove(this);
    if (this.#resource) {
      await fetch(this.#resource, { method: 'DELETE', headers: this.#auth }).catch(() => undefined);
      this.#resource = undefined;
    }
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify({ type: 'unpublish', name: this.name }));
    this.#ws?.close();
    await this.#pc.close();
  }
}

/** AVCC NAL units of an FLV video tag body. */
export function flvNals(body: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  for (let offset = 5; offset + 4 <= body.length;) {
    const size = body.readUInt32BE(offset);
    nals.push(body.subarray(offset + 4, offset + 4 + size));
    offset += 4 + size;
  }
  return nals;
}

function send(
  sender: RTCRtpSender,
  payloadType: number,
  sequenceNumber: number,
  timestamp: number,
  marker: boolean,
  payload: Buffer,
): void {
  const header = new RtpHeader({ payloadType, sequenceNumber, timestamp, marker });
  sender.sendRtp(new RtpPacket(header, payload)).catch(() => {
    // The transport is closing; the publisher is being stopped.
  });
}

function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') resolve();
    });
  });
}

/** One timer for every publisher in the process. */
const pacer = new (class Pacer {
  readonly #publishers = new Set<SyntheticPublisher>();
  #timer?: NodeJS.Timeout;

  add(publisher: SyntheticPublisher): void {
    this.#publishers.add(publisher);
    this.#timer ??= setInterval(() => {
      const time = now();
      for (const p of this.#publishers) p.tick(time);
    }, TICK_MS);
  }

  remove(publisher: SyntheticPublisher): void {
    this.#publishers.delete(publisher);
    if (this.#publishers.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
})();

/** Each frame of the fixture as the RTP payloads a browser would send: H.264's (RFC 6184), or AV1's. */
function payloadsOf(fixture: Fixture): Buffer[][] {
  return fixture.codec === 'AV1'
    ? fixture.video.map((unit) => av1RtpPayloads(unit.nals[0]!, 1200, unit.key))
    : fixture.video.map((unit) => packetizeH264(unit.nals));
}
