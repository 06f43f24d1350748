import { z } from 'zod';
import { ms, oneSecret, secretSource } from '../fields.js';

/**
 * Nodes of a cluster on Redis (`cluster/`).
 */
export const clusterFields = {
  cluster: z
    .strictObject({
      redis_url: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL'),
      node_id: z
        .string()
        .regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"')
        .optional(),
      advertise_url: z
        .string()
        .regex(/^https?:\/\/[^\s/]+\/?$/, 'must be http(s)://host:port, where the other nodes reach this one'),
      ...secretSource,
      key_prefix: z
        .string()
        .regex(/^[\w:.-]{0,32}$/, 'must be up to 32 letters, digits, "_", ":", "." or "-"')
        .default('gw:'),
      heartbeat_ms: ms(100, 10_000, 1000),
      node_timeout_ms: ms(300, 60_000, 3000),
      lease_ms: ms(300, 60_000, 3000),
      drain_timeout_ms: ms(0, 3_600_000, 60_000),
    })
    .superRefine(oneSecret)
    .superRefine((c, ctx) => {
      if (c.node_timeout_ms < 2 * c.heartbeat_ms)
        ctx.addIssue({ code: 'custom', path: ['node_timeout_ms'], message: 'must be at least twice heartbeat_ms' });
      if (c.lease_ms < 2 * c.heartbeat_ms)
        ctx.addIssue({ code: 'custom', path: ['lease_ms'], message: 'must be at least twice heartbeat_ms' });
    })
    .nullable()
    .default(null)
    .describe(
      '`null`: one gateway on its own. Else the nodes of a cluster on Redis: `{redis_url, advertise_url, secret | ' +
        'secret_env | secret_file, node_id, key_prefix, heartbeat_ms, node_timeout_ms, lease_ms, drain_timeout_ms}` ' +
        '(see [Running a cluster](#running-a-cluster)). The secret, the same on every node, seals the calls between ' +
        'nodes and the kept pushes in Redis',
    ),
};
