import { parseConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import { buildGateway, type Gateway } from '../../src/gateway/gateway.js';
import { createLogger } from '../../src/core/log.js';
import type { MediaCore } from '../../src/plane/core.js';
import { THIS_MACHINE } from '../../kit/this-machine.js';
import { childPids } from '../../kit/processes.js';
import { sourceWorkers } from '../../kit/source-workers.js';

/**
 * A gateway for one test: listens on an ephemeral loopback port, gathers and answers ICE on
 * loopback only, so no packet leaves 127.0.0.0/8.
 */
export interface TestGateway extends Gateway, Pick<MediaCore, 'publishers' | 'ffmpeg'> {
  /** The push service of the test's own thread (`Gateway.pushes` is the plane's commands). */
  pushService: MediaCore['pushes'];
  baseUrl: string;
  config: GatewayConfig;
  post(path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/**
 * Tests never query DNS (that would leave loopback): `localhost` resolves, any other name fails
 * as an unknown host does.
 */
async function resolveWithoutNetwork(host: string): Promise<string[]> {
  if (host === 'localhost') return ['127.0.0.1'];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
}

/** The production default: streams in worker threads (one per core), every call crossing the wire between threads. */
export const IN_WORKERS = { workers: 'auto' } as const satisfies Partial<GatewayConfig>;

/** How many ffmpeg processes the gateway runs, in this thread or its worker threads (all are this process's children). */
export async function ffmpegCount(): Promise<number> {
  return (await childPids(process.pid, 'ffmpeg')).length;
}

export async function startGateway(overrides: Partial<GatewayConfig> = {}, logLines?: string[]): Promise<TestGateway> {
  const config = parseConfig({
    http_port: 0,
    log_level: process.env.TEST_LOG_LEVEL ?? 'silent',
    webrtc_ice_addresses: ['127.0.0.1'],
    webrtc_ice_remote_networks: THIS_MACHINE,
    // Test destinations (nginx-rtmp, the tests' RTMP servers) listen on loopback.
    destination_allow_loopback: true,
    // The gateway shares its event loop with the test (browsers, fuzzing, 500 slow clients):
    // overload refusals are tested on their own (overload.test.ts).
    overload_event_loop_delay_ms: 0,
    overload_event_loop_utilization: 0,
    overload_machine_cpu_percent: 0,
    // Streams in the test's own thread, where it can reach the publishers and pushes; suites that
    // ask only through the plane and the API run in worker threads as production does (IN_WORKERS).
    workers: 0,
    // The whole suite on the other engine: GATEWAY_WEBRTC_ENGINE=werift npm test (the gateway
    // processes some tests start read it themselves).
    ...(process.env.GATEWAY_WEBRTC_ENGINE ? { webrtc_engine: process.env.GATEWAY_WEBRTC_ENGINE } : {}),
    ...overrides,
  });
  const destination = logLines ? { write: (line: string) => void logLines.push(line) } : undefined;
  // Worker threads resolve names themselves (a function cannot cross to them): suites run there
  // name only loopback addresses and `localhost`, which the system resolves from /etc/hosts.
  const inThreads = config.workers !== 0;
  const gateway = buildGateway(
    config,
    createLogger(config.log_level, destination),
    inThreads ? { startWorker: sourceWorkers } : { lookupHost: resolveWithoutNetwork },
  );
  const listened = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
  const address = config.https_cert_file && !config.https_port ? listened.replace(/^http:/, 'https:') : listened;
  const local = gateway.local;
  const inThisThread = <T>(what: string, value: T | undefined): T => {
    if (value === undefined)
      throw new Error(`gw.${what}: this gateway runs its streams in worker threads; ask through gw.plane or the API`);
    return value;
  };
  return {
    ...gateway,
    get publishers() {
      return inThisThread('publishers', local?.publishers);
    },
    get pushService() {
      return inThisThread('pushService', local?.pushes);
    },
    get ffmpeg() {
      return inThisThread('ffmpeg', local?.ffmpeg);
    },
    baseUrl: address,
    config,
    async post(path: string, body?: unknown) {
      const response = await fetch(address + path, {
        method: 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON: keep the text.
      }
      return { status: response.status, body: parsed };
    },
  };
}
