import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { MediaPlane } from '../plane/plane.js';
import type { PushInfo } from '../pushes/info.js';
import type { StreamJson } from '../publishers/description.js';
import { PUSH_STATES } from '../pushes/states.js';
import type { MixerInfo } from '../mixers/requests.js';

/** What one scrape reads from the plane, shared by every metric of that scrape. */
interface Scrape {
  pushes: PushInfo[];
  streams: StreamJson[];
  mixers: MixerInfo[];
}

/** The host of a redacted destination URL: the only part of it a label may carry. */
function destinationHost(rtmpUrl: string): string {
  try {
    return new URL(rtmpUrl).hostname;
  } catch {
    return '';
  }
}

/**
 * Metrics per push and per publisher, read from the plane at scrape time (nothing is counted on
 * the media path for them). Labels: stream name, mediaSessionId, destination host: never a URL,
 * key or token. Gone pushes and streams leave the next scrape.
 */
export function streamMetrics(registry: Registry, plane: MediaPlane): void {
  // Read once per scrape, by its first metric (a registry collects in the order metrics were
  // registered); the others see the same moment.
  let last: Promise<Scrape> | undefined;
  const refresh = (): Promise<Scrape> =>
    (last = Promise.all([plane.find({}), plane.streams(), plane.mixerFind()]).then(([pushes, streams, mixers]) => ({
      pushes,
      streams,
      mixers,
    })));
  const read = (): Promise<Scrape> => last ?? refresh();
  const pushLabels = ['stream', 'media_session_id', 'destination_host'] as const;
  const labelsOf = (p: PushInfo) => ({
    stream: p.sourceStreamName,
    media_session_id: p.mediaSessionId,
    destination_host: destinationHost(p.rtmpUrl),
  });

  /** A metric of every push or publisher of the scrape, set from one field of each (none when undefined). */
  function perItem<T>(
    kind: typeof Counter | typeof Gauge,
    name: string,
    help: string,
    labelNames: readonly string[],
    items: (scrape: Scrape) => T[],
    labels: (item: T) => Record<string, string>,
    value: (item: T) => number | undefined,
  ): void {
    new kind({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const scrape = await read();
        this.reset();
        for (const item of items(scrape)) {
          const v = value(item);
          if (v === undefined) continue;
          if (this instanceof Counter) this.inc(labels(item), v);
          else (this as Gauge).set(labels(item), v);
        }
      },
    });
  }
  const perPush = (
    kind: typeof Counter | typeof Gauge,
    name: string,
    help: string,
    value: (p: PushInfo) => number | undefined,
  ): void => perItem(kind, name, help, pushLabels, (s) => s.pushes, labelsOf, value);
  const perStream = (
    kind: typeof Counter | typeof Gauge,
    name: string,
    help: string,
    value: (s: StreamJson) => number | undefined,
  ): void =>
    perItem(
      kind,
      name,
      help,
      ['stream'],
      (s) => s.streams,
      (s) => ({ stream: s.name }),
      value,
    );

  new Gauge({
    name: 'gateway_push_state',
    help: "Each push's state: 1 for the state it is in, 0 for the others",
    labelNames: [...pushLabels, 'state'],
    registers: [registry],
    async collect() {
      const { pushes } = await refresh();
      this.reset();
      for (const p of pushes)
        for (const state of PUSH_STATES) this.set({ ...labelsOf(p), state }, p.state === state ? 1 : 0);
    },
  });
  const perMixer = (
    kind: typeof Counter | typeof Gauge,
    name: string,
    help: string,
    value: (m: MixerInfo) => number,
  ): void =>
    perItem(
      kind,
      name,
      help,
      ['mixer', 'stream'],
      (s) => s.mixers,
      (m) => ({ mixer: m.uri, stream: m.localStreamName }),
      value,
    );
  perMixer(Gauge, 'gateway_mixer_inputs', "A mixer's inputs", (m) => m.inputs.length);
  perMixer(
    Gauge,
    'gateway_mixer_inputs_publishing',
    "A mixer's inputs whose streams publish now (the others show a placeholder)",
    (m) => m.inputs.filter((i) => i.publishing).length,
  );
  perMixer(Counter, 'gateway_mixer_frames_total', 'Pictures a mixer made', (m) => m.frames);
  perPush(
    Counter,
    'gateway_push_sent_bytes_total',
    'Bytes written to the destination, every connection of the push',
    (p) => p.counters.outputBytes,
  );
  perPush(
    Counter,
    'gateway_push_acknowledged_bytes_total',
    'Bytes the destination acknowledged',
    (p) => p.counters.acknowledgedBytes,
  );
  perPush(Counter, 'gateway_push_frames_total', 'Video frames sent', (p) => p.counters.frames);
  perPush(
    Counter,
    'gateway_push_frames_lost_total',
    'Video frames not sent because a packet of theirs was lost',
    (p) => p.counters.framesLost,
  );
  perPush(
    Counter,
    'gateway_push_frames_dropped_total',
    'Video frames dropped for a destination too far behind (rtmp_push_max_lag_ms)',
    (p) => p.counters.framesDropped,
  );
  perPush(
    Counter,
    'gateway_push_frames_discarded_total',
    "Video frames the push's own queue discarded: its work on the gateway did not keep up with the stream",
    (p) => p.counters.framesDiscarded,
  );
  perPush(
    Counter,
    'gateway_push_drops_total',
    'Times the output broke (destination or ffmpeg) while up',
    (p) => p.counters.drops,
  );
  perPush(Counter, 'gateway_push_reconnects_total', 'Times the output was restored', (p) => p.counters.reconnects);
  perPush(
    Counter,
    'gateway_push_sheds_total',
    "Times it was shed to leave a saturated machine's CPU to the other pushes",
    (p) => p.counters.sheds,
  );
  perPush(
    Gauge,
    'gateway_push_lag_seconds',
    'Age of the oldest media the destination has not received',
    (p) => p.counters.lagMs / 1000,
  );
  perPush(
    Gauge,
    'gateway_push_acknowledged_age_seconds',
    'Time since the destination last acknowledged what it received (-1: never)',
    (p) => (p.counters.acknowledgedAgoMs === undefined ? -1 : p.counters.acknowledgedAgoMs / 1000),
  );
  perPush(
    Gauge,
    'gateway_push_output_buffer_seconds',
    'Media held in the send buffer (rtmp_out_buffer_enabled; 0 without it)',
    (p) => (p.outputBuffer?.levelMs ?? 0) / 1000,
  );
  perPush(
    Gauge,
    'gateway_push_reconnect_attempt',
    'Restore attempts of the current outage (0 once healthy for a minute)',
    (p) => p.reconnectAttempt,
  );
  // Ingest health: what a platform's dashboard checks, measured on what the push sent over the last 20 s (none before it settled).
  const healthGauges: [string, string, (h: NonNullable<PushInfo['health']>) => number | null][] = [
    [
      'gateway_push_health_status',
      "The push's ingest health: 0 good, 1 warning, 2 bad",
      (h) => ['good', 'warning', 'bad'].indexOf(h.status),
    ],
    [
      'gateway_push_sent_keyframe_interval_seconds',
      'The longest gap between keyframes sent',
      (h) => h.measures.keyframeIntervalMaxS,
    ],
    ['gateway_push_sent_video_bits_per_second', 'Video bitrate sent', (h) => h.measures.videoKbps * 1000],
    ['gateway_push_sent_frames_per_second', 'Frame rate sent', (h) => h.measures.fps],
    ['gateway_push_sent_size_changes', 'Picture size changes sent', (h) => h.measures.sizeChanges],
    ['gateway_push_sent_audio', 'Whether sound is sent (1) or not (0)', (h) => Number(h.measures.audio)],
    ['gateway_push_sent_audio_sample_rate_hertz', 'Sample rate of the AAC sent', (h) => h.measures.audioSampleRate],
    ['gateway_push_sent_audio_bits_per_second', 'Audio bitrate sent', (h) => h.measures.audioKbps * 1000],
    [
      'gateway_push_sent_av_offset_seconds',
      'How far the video runs ahead of the sound in the stream sent',
      (h) => (h.measures.avOffsetMs === null ? null : h.measures.avOffsetMs / 1000),
    ],
  ];
  for (const [name, help, value] of healthGauges)
    perPush(Gauge, name, help, (p) => (p.health ? (value(p.health) ?? undefined) : undefined));
  // Timings told by the pushes' lifecycle events, as they happen.
  const startup = new Histogram({
    name: 'gateway_push_startup_seconds',
    help: "From /push/startup (or the SDK's rtmpUrl, or auto-start) to the first video frame written to the destination",
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [registry],
  });
  const outage = new Histogram({
    name: 'gateway_push_reconnect_seconds',
    help: "How long a push's output was down before it was restored (destination or ffmpeg broke)",
    buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'gateway_push_failures_total',
    help: 'Pushes that failed (refused, restore attempts spent), by destination host',
    labelNames: ['destination_host'],
    registers: [registry],
  });
  plane.events((event) => {
    if (event.type === 'transponder.failed') failed.inc({ destination_host: destinationHost(event.destination) });
    if ('startupMs' in event && event.startupMs !== undefined) startup.observe(event.startupMs / 1000);
    if ('outageMs' in event && event.outageMs !== undefined) outage.observe(event.outageMs / 1000);
  });
  perStream(Counter, 'gateway_publisher_packets_total', 'RTP packets received', (s) => s.packets);
  perStream(
    Counter,
    'gateway_publisher_packets_lost_total',
    'RTP packets never received (retransmitted ones count as received)',
    (s) => s.packetsLost,
  );
  perStream(
    Counter,
    'gateway_publisher_frames_lost_total',
    'Video frames dropped because a packet of theirs was lost',
    (s) => s.framesLost,
  );
  perStream(
    Counter,
    'gateway_publisher_frames_total',
    'Video frames made whole from the RTP (once for every push of the stream)',
    (s) => s.frames,
  );
  perStream(Counter, 'gateway_publisher_keyframes_total', 'Keyframes received', (s) => s.keyframes);
  perStream(
    Counter,
    'gateway_publisher_keyframe_requests_total',
    'Keyframes asked of the sender (RTCP PLI)',
    (s) => s.keyframeRequests,
  );
  perStream(
    Counter,
    'gateway_publisher_engine_packets_received_total',
    'RTP packets the media engine received from the publisher',
    (s) => s.hops?.engineReceived,
  );
  perStream(
    Counter,
    'gateway_publisher_engine_packets_lost_total',
    'RTP packets lost on the way to the media engine',
    (s) => s.hops?.engineLost,
  );
  perStream(
    Counter,
    'gateway_publisher_engine_packets_sent_total',
    "RTP packets the media engine sent on to the gateway's frame path",
    (s) => s.hops?.engineSent,
  );
  perStream(
    Counter,
    'gateway_publisher_nacks_sent_total',
    'Retransmissions asked of the sender (RTCP NACK) for lost packets',
    (s) => s.nacksSent,
  );
  perStream(
    Gauge,
    'gateway_publisher_received_bits_per_second',
    'RTP received over the last second',
    (s) => s.bitrateKbps * 1000,
  );
  perStream(Gauge, 'gateway_publisher_frames_per_second', 'Video frame rate', (s) => s.video?.frameRate);
  perStream(Gauge, 'gateway_publisher_width_pixels', 'Video width, from the latest keyframe', (s) => s.video?.width);
  perStream(Gauge, 'gateway_publisher_height_pixels', 'Video height, from the latest keyframe', (s) => s.video?.height);
}
