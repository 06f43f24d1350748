import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.js';
import { CaptionFlood } from '../captions/flood.js';
import { destinationChecks } from '../control/destination-checks.js';
import { Rooms } from '../control/rooms.js';
import type { AccessControl } from '../security/access.js';
import { clientAddressReader } from '../security/client-address.js';
import type { HostLookup } from '../security/destination-policy.js';
import { SignalingServer } from '../signaling/server.js';
import type { Check } from './checks.js';
import type { Planes } from './planes.js';

/** The SDK's sessions, and what they share with the REST API: the caption limits, Web Call Server's rooms. */
export interface Signaling {
  server: SignalingServer;
  /** Captions, over REST and the SDK together, per client address. */
  captionFlood: CaptionFlood;
  close(): void;
}

export function buildSignaling(
  config: GatewayConfig,
  { own, plane, cluster }: Planes,
  access: AccessControl,
  check: Check,
  lookupHost: HostLookup | undefined,
  log: Logger,
): Signaling {
  const captionFlood = new CaptionFlood();
  // Web Call Server's rooms: this node's callers (`user1#room1`) join their room's mixer, wherever it runs.
  // In a cluster a room's mixer starts at the node of its first caller, and the others are placed there.
  const rooms = config.mixer_auto_start
    ? new Rooms(
        plane,
        config.mixer_idle_timeout_ms,
        log.child({ component: 'rooms' }),
        cluster && ((startup) => cluster.mixerStartupHere(startup)),
      )
    : undefined;
  const stopRooms = rooms ? own.events((event) => rooms.follow(event)) : undefined;
  const server = new SignalingServer(plane, destinationChecks(config, check, lookupHost), access, log, {
    clientAddress: clientAddressReader(config.trust_proxy),
    maxSessions: config.limit_signaling_sessions,
    idleTimeoutMs: config.signaling_idle_timeout_ms,
    captionFlood,
    captionsChannel: config.webrtc_engine === 'mediasoup',
    videoCodecs: config.webrtc_video_codecs,
  });
  return {
    server,
    captionFlood,
    close() {
      server.close();
      // The callers' ends as the plane closes are not followed: their mixers end with it.
      stopRooms?.();
      rooms?.close();
    },
  };
}
