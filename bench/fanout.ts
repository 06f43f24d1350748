import { sleep } from '../kit/processes.js';
import type { NginxRtmp } from '../kit/rtmp-server.js';
import type { Fixture } from '../kit/fixture.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { CpuWindow, gatewayCpu } from './proc.js';
import type { Report } from './report.js';
import { SyntheticPublisher } from '../kit/synthetic-publisher.js';

/**
 * The gateway with no stream, then one stream pushed to no destination, to one, then to three
 * passthrough destinations, then to one with its twin (`backupUrl`): the gateway's CPU for each,
 * what the stream adds to the gateway with none, what every destination after the first adds, and
 * what a twin adds. What a stream's work costs once (receiving,
 * reordering, reassembling frames) is not paid again per destination.
 */
export async function fanout(
  gateway: GatewayProcess,
  fixture: Fixture,
  nginx: NginxRtmp,
  report: Report,
  seconds: number,
): Promise<Record<string, number>> {
  console.log(`\nOne stream to 1 and to 3 passthrough destinations (${seconds} s each)`);
  // The gateway with no stream at all: its timers, load sampling and media workers, which a
  // stream's figure is measured above.
  await sleep(2000);
  const alonePids = await gateway.ownPids();
  const aloneWindow = new CpuWindow(alonePids);
  await sleep(seconds * 1000);
  const alone = aloneWindow.end().of(alonePids);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'fanout');
  const pushes = new Destinations(gateway, nginx, 'fanout', {}, seconds);
  try {
    await sleep(1000);
    const idle = await pushes.cpuWith(0);
    const one = await pushes.cpuWith(1);
    const three = await pushes.cpuWith(3);
    // One destination again: how far two windows of the same load differ is the floor below which a difference is noise.
    const oneAgain = await pushes.cpuWith(1);
    const twin = await pushes.cpuWithTwin();
    const noiseFloor = Math.abs(oneAgain - one) / 2;
    report('fan-out: gateway CPU with no stream', alone, '% of a core');
    report(
      'fan-out: gateway CPU, stream with no destination (above the gateway with none)',
      idle - alone,
      '% of a core',
      { max: 2 },
    );
    report('fan-out: gateway and ffmpeg CPU, 1 destination', one, '% of a core');
    report('fan-out: gateway and ffmpeg CPU, 3 destinations', three, '% of a core');
    report(
      'fan-out: gateway and ffmpeg CPU per destination after the first',
      (three - (one + oneAgain) / 2) / 2,
      '% of a core',
      { max: 0.6, noiseFloor },
    );
    report('fan-out: gateway and ffmpeg CPU, 1 destination and its twin (backupUrl)', twin, '% of a core');
    report(
      "fan-out: a push's twin to a backup ingest, above the push alone",
      twin - (one + oneAgain) / 2,
      '% of a core',
      { max: 0.3, noiseFloor },
    );
    return { alone, idle, one, three, oneAgain, twin };
  } finally {
    await pushes.close();
    await publisher.stop();
  }
}

/**
 * One stream to 1 and to 2 destinations of one transcoded rendition (1280x720 made again at 720,
 * as the latency section's transcode): what the second destination adds, its encoder shared.
 */
export async function renditionFanout(
  gateway: GatewayProcess,
  fixture: Fixture,
  nginx: NginxRtmp,
  report: Report,
  seconds: number,
): Promise<Record<string, number>> {
  console.log(`\nOne stream to 1 and to 2 destinations of one transcoded rendition (${seconds} s each)`);
  const publisher = await SyntheticPublisher.publish(fixture, gateway.baseUrl, 'rendition');
  const pushes = new Destinations(gateway, nginx, 'rendition', { height: 720 }, seconds);
  try {
    await sleep(1000);
    const one = await pushes.cpuWith(1);
    const two = await pushes.cpuWith(2);
    const oneAgain = await pushes.cpuWith(1);
    const noiseFloor = Math.abs(oneAgain - one) / 2;
    report('rendition fan-out: gateway and ffmpeg CPU, 1 destination', one, '% of a core');
    report('rendition fan-out: gateway and ffmpeg CPU, 2 destinations', two, '% of a core');
    report(
      'rendition fan-out: the second destination of a transcoded rendition',
      two - (one + oneAgain) / 2,
      '% of a core',
      { max: 2, noiseFloor },
    );
    return { one, two, oneAgain };
  } finally {
    await pushes.close();
    await publisher.stop();
  }
}

/** Pushes of one stream to nginx, each asking `request`: made or ended to a count, and what the gateway and its ffmpegs take then. */
class Destinations {
  readonly #ids: string[] = [];

  constructor(
    private readonly gateway: GatewayProcess,
    private readonly nginx: NginxRtmp,
    private readonly stream: string,
    private readonly request: object,
    private readonly seconds: number,
  ) {}

  /** CPU (% of a core) of the gateway and every ffmpeg it runs over `seconds`, with `count` pushes up: a destination costs both. */
  async cpuWith(count: number): Promise<number> {
    await this.#count(count);
    return gatewayCpu(this.gateway, this.seconds);
  }

  /** CPU as `cpuWith`, with one push and its twin to a second ingest (`backupUrl`): the same frames, the same encoder. */
  async cpuWithTwin(): Promise<number> {
    await this.#count(0);
    const base = `${this.nginx.url()}/${this.stream}-twin`;
    const reply = await this.gateway.request('POST', '/rest-api/push/startup', {
      streamName: this.stream,
      rtmpUrl: `${base}-primary`,
      backupUrl: `${base}-backup`,
      rtmpTransponderFullUrl: true,
      ...this.request,
    });
    if (reply.status !== 200 || !reply.body.backupMediaSessionId)
      throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
    this.#ids.push(reply.body.mediaSessionId); // terminating it ends its twin
    return gatewayCpu(this.gateway, this.seconds);
  }

  close(): Promise<void> {
    return this.#count(0);
  }

  async #count(count: number): Promise<void> {
    while (this.#ids.length < count) {
      const reply = await this.gateway.request('POST', '/rest-api/push/startup', {
        streamName: this.stream,
        rtmpUrl: `${this.nginx.url()}/${this.stream}-${this.#ids.length}`,
        rtmpTransponderFullUrl: true,
        ...this.request,
      });
      if (reply.status !== 200) throw new Error(`startup answered ${reply.status}: ${JSON.stringify(reply.body)}`);
      this.#ids.push(reply.body.mediaSessionId);
    }
    for (const mediaSessionId of this.#ids.splice(count))
      await this.gateway.request('POST', '/rest-api/push/terminate', { mediaSessionId });
  }
}
