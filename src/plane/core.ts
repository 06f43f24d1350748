import { isMainThread } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import type { EngineOptions, IngestEngine } from '../ingest/engine.js';
import { resolveIceAddresses } from '../ingest/ice-addresses.js';
import { WeriftEngine } from '../ingest/werift-engine.js';
import { LoadMonitor } from '../core/load.js';
import { ROOT } from '../core/paths.js';
import { PublisherRegistry } from '../publishers/registry.js';
import { MixerService } from '../mixers/service.js';
import { spawnerConnection } from '../ffmpeg/spawner-client.js';
import type { SpawnerAddress } from '../ffmpeg/spawner-wire.js';
import { FfmpegSupervisor, type ChildRecord } from '../ffmpeg/supervisor.js';
import { KeyframePictures } from '../viewers/snapshot.js';
import { MediasoupEngine } from '../ingest/mediasoup/engine.js';
import { rtmpsTrust } from '../rtmp/trust.js';
import type { HostLookup } from '../security/destination-policy.js';
import { PushService } from '../pushes/service.js';
import { SharedEncoders } from '../pipeline/shared-encoders.js';
import { PUBLISHER_SLOTS, Slots, PUSH_SLOTS, VIEWER_SLOTS } from '../core/slots.js';
import { ViewerRegistry } from '../viewers/viewers.js';
import { namingRules, resolverFor } from '../links/destination-rules.js';

/** What runs streams in one thread (the main thread, or one worker): publishers, pushes, their ffmpeg. */
export interface MediaCore {
  publishers: PublisherRegistry;
  pushes: PushService;
  /** Every ffmpeg of this thread. */
  ffmpeg: FfmpegSupervisor;
  /** Each keyframe's JPEG, decoded when first asked for. */
  pictures: KeyframePictures;
  /** The WebRTC engine the publishers connect through. */
  engine: IngestEngine;
  /** Who watches the streams (WHEP). */
  viewers: ViewerRegistry;
  load: LoadMonitor;
  /** The mixers running here. */
  mixers: MixerService;
}

export interface MediaCoreDependencies {
  engine?: IngestEngine;
  /** DNS for destination hosts; tests answer without the network. */
  lookupHost?: HostLookup;
  /** Where the PIDs of running ffmpeg processes are recorded (the server's `ChildRegistry`). */
  childRecord?: ChildRecord;
  /** The gateway's spawner, which starts every ffmpeg (without one, each thread starts its own). */
  spawner?: SpawnerAddress;
  /** The gateway-wide counts behind the limits (`Slots.buffer()`), shared by every worker. */
  slots?: SharedArrayBuffer;
}

/** Warns, once for the gateway, when the kernel grants media sockets less than the configured receive buffer. */
export function checkReceiveBuffer(config: GatewayConfig, log: Logger): void {
  const granted = systemReceiveBufferMax();
  if (granted !== undefined && granted < config.webrtc_udp_receive_buffer_bytes) {
    log.warn(
      { wanted: config.webrtc_udp_receive_buffer_bytes, granted },
      'media sockets get a smaller receive buffer than webrtc_udp_receive_buffer_bytes: raise net.core.rmem_max (sysctl) for many streams',
    );
  }
}

/** The engine of `webrtc_engine`, gathering and announcing `addresses` (`webrtc_ice_addresses`, resolved). */
function createEngine(config: GatewayConfig, log: Logger, addresses: readonly string[]): IngestEngine {
  const options: EngineOptions = {
    receiveBufferBytes: config.webrtc_udp_receive_buffer_bytes,
    addresses,
    portRange: [config.webrtc_ice_port_min, config.webrtc_ice_port_max],
    remoteNetworks: config.webrtc_ice_remote_networks,
    connectTimeoutMs: config.webrtc_connect_timeout_ms,
    viewerConnectTimeoutMs: config.webrtc_viewer_connect_timeout_ms,
    videoCodecs: config.webrtc_video_codecs,
    videoBitrateKbps: config.webrtc_video_bitrate_kbps,
    videoMinBitrateKbps: config.webrtc_video_min_bitrate_kbps,
    onListenerError: (event, error) => log.error({ err: error, event }, 'ingest listener failed'),
  };
  if (config.webrtc_engine === 'mediasoup') {
    return new MediasoupEngine({
      ...options,
      rtpHandoff: config.webrtc_mediasoup_rtp_handoff,
      onWorkerDied: (error) =>
        log.error(
          { reason: error.message },
          'the mediasoup worker process died: its publishers were told lost, a new one starts',
        ),
    });
  }
  return new WeriftEngine({ ...options, allowMdns: config.webrtc_ice_allow_mdns });
}

/** The largest receive buffer the kernel grants a socket (Linux), if it can be read. */
function systemReceiveBufferMax(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Builds the publishers and pushes of one thread, with their load monitor. */
export function buildMediaCore(config: GatewayConfig, log: Logger, deps: MediaCoreDependencies = {}): MediaCore {
  const announced = resolveIceAddresses(config.webrtc_ice_addresses).addresses;
  const engine = deps.engine ?? createEngine(config, log, announced);
  const load = new LoadMonitor({
    eventLoopDelayMs: config.overload_event_loop_delay_ms,
    eventLoopUtilization: config.overload_event_loop_utilization,
    machineCpuPercent: config.overload_machine_cpu_percent,
  });
  const admit = (what: string): void => load.admit(what);
  const ffmpeg = new FfmpegSupervisor(deps.childRecord, spawnerConnection(deps.spawner));
  const slots = deps.slots ?? Slots.buffer();
  const publishers = new PublisherRegistry(engine, {
    maxPublishers: config.limit_publishers,
    keyframeIntervalMs: config.webrtc_keyframe_interval_ms,
    mediaTimeoutMs: config.webrtc_media_timeout_ms,
    layerIdleMs: config.webrtc_simulcast_layer_idle_ms,
    announced,
    log,
    admit,
    saturated: () => load.saturated,
    slots: new Slots(slots, PUBLISHER_SLOTS),
  });
  const pushes = new PushService(
    publishers,
    namingRules(config),
    {
      ffmpegPath: config.ffmpeg_path,
      ffmpeg,
      mediaDir: resolve(ROOT, config.media_dir),
      record: {
        dir: resolve(ROOT, config.record_dir),
        filePattern: config.record_file_pattern,
        partS: config.record_part_s,
        minFreeMb: config.record_min_free_mb,
        fileMode: parseInt(config.record_file_mode, 8),
        dirMode: parseInt(config.record_dir_mode, 8),
      },
      encoding: {
        keepAspectRatio: config.transcoding_keep_aspect_ratio,
        transcodingEnabled: config.transcoding_enabled,
        videoBitrateKbps: config.transcoding_video_bitrate_kbps,
        preset: config.transcoding_preset,
        audioBitrateKbps: config.audio_bitrate_kbps,
        aacCoder: config.audio_aac_coder,
        audioSampleRate: config.audio_sample_rate,
        keyframeIntervalS: config.webrtc_keyframe_interval_ms / 1000,
      },
      startTimeoutMs: config.ffmpeg_start_timeout_ms,
      stopTimeoutMs: config.ffmpeg_stop_timeout_ms,
      analyzeDurationUs: 200_000,
      connectTimeoutMs: 10_000,
      flashVer: config.rtmp_flash_ver_subscriber,
      localAddress: config.rtmp_publisher_ip || undefined,
      sendMetadata: config.rtmp_transponder_send_metadata,
      secureContext: createSecureContext({ ca: rtmpsTrust(config.rtmps_ca_file) }),
      resolveDestination: resolverFor(config, deps.lookupHost),
      restore: {
        enabled: config.rtmp_push_restore,
        attempts: config.rtmp_push_restore_attempts,
        intervalMs: config.rtmp_push_restore_interval_ms,
      },
      stallTimeoutMs: config.rtmp_push_stall_timeout_ms,
      maxLagMs: config.rtmp_push_max_lag_ms,
      sendBuffer: {
        enabled: config.rtmp_out_buffer_enabled,
        startMs: config.rtmp_out_buffer_start_size,
        maxMs: config.rtmp_out_buffer_initial_size,
        pollingMs: config.rtmp_out_buffer_polling_time,
        maxBufferings: config.rtmp_out_buffer_max_bufferings_allowed,
      },
      publisherGraceMs: config.rtmp_push_publisher_grace_ms,
      sharedEncoders: new SharedEncoders(),
      limits: { total: config.limit_transponders, perStream: config.limit_transponders_per_stream },
      slots: new Slots(slots, PUSH_SLOTS),
      admit,
      saturated: () => load.saturated,
    },
    log.child({ component: 'pushes' }),
    config.rtmp_push_auto_start ? config.rtmp_push_auto_start_url : undefined,
  );
  // A media worker thread: publishers (their viewers with them), pushes, ffmpeg (mixers, recordings,
  // pictures) are what a delay would hold up. The main thread serves signalling and HTTP at any time.
  if (!isMainThread) load.watchWhile(() => ffmpeg.count > 0 || publishers.all().length > 0 || pushes.all().length > 0);
  const viewers = new ViewerRegistry(
    engine,
    publishers,
    {
      total: config.limit_viewers,
      perStream: config.limit_viewers_per_stream,
      perClient: config.limit_viewers_per_client || Math.ceil(config.limit_viewers_per_stream / 2),
    },
    new Slots(slots, VIEWER_SLOTS),
    log.child({ component: 'viewers' }),
  );
  const mixers = new MixerService(
    publishers,
    {
      supervisor: ffmpeg,
      ffmpegPath: config.ffmpeg_path,
      preset: config.transcoding_preset,
      keyframeIntervalS: config.webrtc_keyframe_interval_ms / 1000,
      maxMixers: config.limit_mixers,
      mediaDir: resolve(ROOT, config.media_dir),
      log,
    },
    log.child({ component: 'mixers' }),
  );
  return {
    publishers,
    pushes,
    viewers,
    ffmpeg,
    pictures: new KeyframePictures(ffmpeg, config.ffmpeg_path),
    engine,
    load,
    mixers,
  };
}
