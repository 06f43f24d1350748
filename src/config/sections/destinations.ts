import { z } from 'zod';
import { hostPattern, port } from '../fields.js';

/**
 * Where pushes and destination checks may go (`security/destination-policy.ts`).
 */
export const destinationFields = {
  destination_allow_loopback: z.boolean().default(false).describe('allow destinations on this machine'),
  destination_allow_private: z.boolean().default(false).describe('allow destinations on private networks'),
  destination_allowed_hosts: z
    .array(hostPattern)
    .default([])
    .describe('host patterns, addresses, CIDR blocks: only these destinations (empty: any the other rules allow)'),
  destination_denied_hosts: z
    .array(hostPattern)
    .default([])
    .describe('host patterns, addresses, CIDR blocks: never these destinations'),
  destination_allowed_ports: z.array(port).default([]).describe('only these destination ports (empty: any)'),
};
