import { join } from 'node:path';
import type { Test } from 'tap';
import { loadFixture, type Fixture } from '../../kit/fixture.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { startGateway, type TestGateway } from './gateway.js';

let fixture: Fixture | undefined;

/** The benchmark's 720p30 H.264 + Opus fixture, made with ffmpeg on first use. */
export function testFixture(): Fixture {
  fixture ??= loadFixture(join(import.meta.dirname, '..', '..', '.bench', 'fixture'));
  return fixture;
}

/**
 * A gateway configured with `config`, and a real WebRTC publisher without a browser (werift over
 * WHIP) publishing `streamName` to it; both are ended when the test ends. Log lines go to
 * `logLines` when given.
 */
export async function syntheticPublish(
  t: Test,
  config: Partial<GatewayConfig>,
  streamName: string,
  logLines?: string[],
): Promise<{ gw: TestGateway; publisher: SyntheticPublisher }> {
  const gw = await startGateway(config, logLines);
  t.teardown(() => gw.close());
  const publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, streamName);
  t.teardown(() => publisher.stop());
  return { gw, publisher };
}
