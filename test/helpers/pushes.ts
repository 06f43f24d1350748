import type { Test } from 'tap';
import type { TestGateway } from './gateway.js';
import type { GatewayProcess } from '../../kit/gateway-process.js';
import { waitFor } from '../../kit/processes.js';

/** What only a push's ffmpeg has in its command line: AAC made with the fast coder from its stdin (Opus or PCM). */
export const PUSH_FFMPEG = '-aac_coder fast';

/** The first push `find` lists for `streamName`, if any. */
export async function findPush(gw: TestGateway, streamName: string): Promise<any> {
  return (await gw.post('/rest-api/push/find', { streamName })).body?.[0];
}

/** Polls find until `state`, recording every state seen on the way in `seen`. */
export async function awaitPushState(
  gw: TestGateway,
  streamName: string,
  state: string,
  seen: string[],
  timeoutMs: number,
): Promise<any> {
  return waitFor(
    `state ${state} (seen ${seen.join(' → ')})`,
    async () => {
      const listed = await findPush(gw, streamName);
      if (listed && seen.at(-1) !== listed.state) seen.push(listed.state);
      return listed?.state === state ? listed : undefined;
    },
    timeoutMs,
    25,
  );
}

/** Waits until the publisher of `streamName` holds a keyframe: a push started then begins at once. */
export async function keyframeCached(gw: TestGateway, streamName: string, timeoutMs = 15000): Promise<void> {
  await waitFor(
    `a keyframe of ${streamName}`,
    async () => ((await gw.plane.streams(streamName))[0]?.keyframes ?? 0) > 0,
    timeoutMs,
  );
}

/**
 * Once `streamName` holds a keyframe, starts a push of it to `rtmpUrl` (the full URL); the test
 * fails unless the gateway takes it.
 */
export async function pushOnceCached(t: Test, gw: TestGateway, streamName: string, rtmpUrl: string): Promise<void> {
  await keyframeCached(gw, streamName);
  const res = await gw.post('/rest-api/push/startup', { streamName, rtmpUrl, rtmpTransponderFullUrl: true });
  t.equal(res.status, 200, JSON.stringify(res.body));
}

/**
 * Asks a gateway process for a push of `streamName` to `rtmpUrl` (the full URL) until it is taken,
 * every `everyMs`: a machine busy with other work refuses it for a while (503), and a stream with no
 * keyframe yet too. Resolves with the reply taken.
 */
export async function pushWhenTaken(
  gateway: GatewayProcess,
  streamName: string,
  rtmpUrl: string,
  everyMs: number,
): Promise<{ status: number; body: any }> {
  return waitFor(
    `a push of ${streamName}`,
    async () => {
      const reply = await gateway.request('POST', '/rest-api/push/startup', {
        streamName,
        rtmpUrl,
        rtmpTransponderFullUrl: true,
      });
      return reply.status === 200 ? reply : undefined;
    },
    20_000,
    everyMs,
  );
}
