import { createSecureContext } from 'node:tls';
import type { GatewayConfig } from '../config/schema.js';
import type { FfmpegSupervisor } from '../ffmpeg/supervisor.js';
import { rtmpsTrust } from '../rtmp/trust.js';
import type { HostLookup } from '../security/destination-policy.js';
import type { CheckReport, CheckRequest, CheckSettings } from '../links/check.js';
import { parseDestination, withFullUrl, type Destination } from '../links/destination.js';
import { namingRules, resolverFor } from '../links/destination-rules.js';

/**
 * What checks a destination before a push of it starts, from the configuration: its form and where
 * it resolves (`links/destination-rules.ts`, the pushes' own rules), and the settings
 * `/rest-api/push/check` connects with.
 */

/** What `/rest-api/push/check` connects with: the pushes' own naming, policy, RTMP settings; ffmpeg through `ffmpeg`. */
export function checkSettings(config: GatewayConfig, ffmpeg: FfmpegSupervisor, lookup?: HostLookup): CheckSettings {
  return {
    naming: namingRules(config),
    resolveDestination: resolverFor(config, lookup),
    flashVer: config.rtmp_flash_ver_subscriber,
    localAddress: config.rtmp_publisher_ip || undefined,
    secureContext: createSecureContext({ ca: rtmpsTrust(config.rtmps_ca_file) }),
    spawn: (args, fd3) => ffmpeg.spawn(config.ffmpeg_path, args, undefined, fd3),
  };
}

/** Checks a destination before anything starts (the SDK's rtmpUrl): its form, then where it resolves. */
export interface DestinationChecks {
  checkDestination(rtmpUrl: string, streamName: string, fullUrl?: boolean): Destination;
  checkAddresses(destination: Destination): Promise<void>;
  /** Connects to the destination as a push would, no media sent (`/rest-api/push/check`); `caller`: the client's address, for its bound. */
  check(request: CheckRequest, caller: string): Promise<CheckReport>;
}

export function destinationChecks(
  config: GatewayConfig,
  check: (request: CheckRequest, caller: string) => Promise<CheckReport>,
  lookup?: HostLookup,
): DestinationChecks {
  const resolveDestination = resolverFor(config, lookup);
  return {
    check,
    checkDestination: (rtmpUrl, streamName, fullUrl) =>
      parseDestination(rtmpUrl, streamName, withFullUrl(namingRules(config), fullUrl), 'rtmpUrl'),
    checkAddresses: async (destination) => {
      if (destination.protocol !== 'record') await resolveDestination(destination.host, destination.port);
    },
  };
}
