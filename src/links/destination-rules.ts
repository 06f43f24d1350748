import type { GatewayConfig } from '../config/schema.js';
import {
  DestinationPolicy,
  destinationResolver,
  lookupHost,
  type DestinationResolver,
  type HostLookup,
} from '../security/destination-policy.js';
import type { NamingRules } from './destination.js';

/**
 * A destination's rules from the configuration, the same for a push and for a destination's check:
 * the destination policy with its one lookup, and how the stream is named at the destination.
 */

/** The destination policy's check of where a host resolves. */
export function resolverFor(config: GatewayConfig, lookup: HostLookup = lookupHost): DestinationResolver {
  return destinationResolver(
    lookup,
    new DestinationPolicy({
      allowLoopback: config.destination_allow_loopback,
      allowPrivate: config.destination_allow_private,
      allowedHosts: config.destination_allowed_hosts,
      deniedHosts: config.destination_denied_hosts,
      allowedPorts: config.destination_allowed_ports,
    }),
  );
}

/** How pushes name the stream at the destination (`rtmp_transponder_*`). */
export function namingRules(config: GatewayConfig): NamingRules {
  return { prefix: config.rtmp_transponder_stream_name_prefix, fullUrl: config.rtmp_transponder_full_url };
}
