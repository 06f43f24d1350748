import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxConf, startNginx } from './nginx.js';
import { stopProcess } from './processes.js';

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** The lowest port of the kernel's ephemeral range, where outgoing connections take their own ports. */
function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

const LOWEST = 20_000;

function listen(server: Server, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
}

/**
 * `count` TCP ports free on loopback, all different: each is held until every one is chosen, so
 * none is handed out twice. They are taken at random below the ephemeral range, where the kernel
 * finds outgoing connections their local ports: no connection made before the test's server binds
 * one (or binds it again, after a restart) can hold it.
 */
export async function freePorts(count: number): Promise<number[]> {
  const below = ephemeralLow();
  const servers: Server[] = [];
  try {
    for (let tries = 0; servers.length < count; tries++) {
      if (tries === 100 * count) throw new Error(`no ${count} free ports on 127.0.0.1 in ${tries} tries`);
      const server = createServer();
      const port = below - LOWEST > 1000 ? LOWEST + Math.floor(Math.random() * (below - LOWEST)) : 0;
      if (await listen(server, port)) servers.push(server);
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export interface RtmpStream {
  app: string;
  name: string;
  /** nginx-rtmp's id of the publishing connection: the same id means the same connection. */
  clientId: string;
  flashver: string;
  address: string;
  bytesIn: number;
  width: number;
  height: number;
  /** The frame rate its onMetaData gave (0 when none). */
  frameRate: number;
  videoCodec: string;
  audioCodec: string;
}

export interface NginxOptions {
  /** An HTTP URL nginx-rtmp posts each publish to (its `on_publish` callback). */
  onPublish?: string;
  /** Applications besides `live`, such as `live/instance`. */
  apps?: string[];
  /** Each publish recorded to its own file, `<stream>-<time>.flv` (see `recordings`). */
  recordUnique?: boolean;
  /** Runs nginx in this network namespace, listening on `address` there. */
  netns?: { name: string; address: string };
}

/**
 * A real RTMP server for tests: nginx with libnginx-mod-rtmp, on loopback (or in a network
 * namespace the test made), recording every publish to `<dir>/rec/<stream>.flv`, with `rtmp_stat`
 * served over HTTP.
 */
export class NginxRtmp {
  private constructor(
    readonly dir: string,
    readonly address: string,
    readonly rtmpPort: number,
    readonly httpPort: number,
    private process: ChildProcess,
    private readonly options: NginxOptions,
  ) {}

  static async start(options: NginxOptions = {}): Promise<NginxRtmp> {
    const dir = await mkdtemp(join(tmpdir(), 'nginx-rtmp-'));
    const address = options.netns?.address ?? '127.0.0.1';
    try {
      await mkdir(join(dir, 'rec'));
      // Another process may take a chosen port before nginx binds it: then new ports, a few times.
      for (let attempt = 1; ; attempt++) {
        const [rtmpPort, httpPort] = (await freePorts(2)) as [number, number];
        await writeFile(join(dir, 'nginx.conf'), NginxRtmp.#conf(dir, address, rtmpPort, httpPort, options));
        try {
          return new NginxRtmp(
            dir,
            address,
            rtmpPort,
            httpPort,
            await NginxRtmp.#spawn(dir, address, httpPort, options),
            options,
          );
        } catch (error) {
          const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
          if (attempt === 3 || !log.includes('Address already in use')) throw error;
          await rm(join(dir, 'error.log'), { force: true });
        }
      }
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  static #conf(dir: string, address: string, rtmpPort: number, httpPort: number, options: NginxOptions): string {
    const rtmp = `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
rtmp {
  server {
    listen ${address}:${rtmpPort};
${['live', ...(options.apps ?? [])]
  .map(
    (app) => `    application ${app} {
      live on;${
        options.onPublish
          ? `
      on_publish ${options.onPublish};`
          : ''
      }
      record all;
      record_path ${dir}/rec;
      record_unique ${options.recordUnique ? 'on' : 'off'};
    }`,
  )
  .join('\n')}
  }
}`;
    return nginxConf(
      dir,
      `  server {
    listen ${address}:${httpPort};
    location /stat { rtmp_stat all; }
  }`,
      rtmp,
    );
  }

  static #spawn(dir: string, address: string, httpPort: number, options: NginxOptions): Promise<ChildProcess> {
    const ready = (): Promise<boolean> =>
      fetch(`http://${address}:${httpPort}/stat`).then(
        (r) => r.ok,
        () => false,
      );
    return startNginx(dir, ready, options.netns?.name);
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Stops nginx (its RTMP sessions end) and starts it again on the same ports; resolves once it listens. */
  async restart(downMs = 0): Promise<void> {
    await stopProcess(this.process);
    if (downMs) await new Promise((r) => setTimeout(r, downMs));
    this.process = await NginxRtmp.#spawn(this.dir, this.address, this.httpPort, this.options);
  }

  /** SIGSTOP: nginx takes no more data, though its kernel still accepts some. */
  pause(): void {
    this.process.kill('SIGSTOP');
  }

  resume(): void {
    this.process.kill('SIGCONT');
  }

  url(app = 'live'): string {
    return `rtmp://${this.address}:${this.rtmpPort}/${app}`;
  }

  recording(stream: string): string {
    return join(this.dir, 'rec', `${stream}.flv`);
  }

  /** With `recordUnique`: the recordings of `stream`, one per publish, oldest first. */
  async recordings(stream: string): Promise<string[]> {
    const names = (await readdir(join(this.dir, 'rec'))).filter(
      (n) => n.startsWith(`${stream}-`) && n.endsWith('.flv'),
    );
    return names
      .sort((a, b) => Number(a.slice(stream.length + 1, -4)) - Number(b.slice(stream.length + 1, -4)))
      .map((n) => join(this.dir, 'rec', n));
  }

  async statXml(): Promise<string> {
    return (await fetch(`http://${this.address}:${this.httpPort}/stat`)).text();
  }

  /** Streams being published now, as nginx-rtmp's stat page lists them. */
  async streams(): Promise<RtmpStream[]> {
    const xml = await this.statXml();
    const out: RtmpStream[] = [];
    for (const app of xml.matchAll(/<application>\s*<name>([^<]*)<\/name>([\s\S]*?)<\/application>/g)) {
      for (const stream of app[2]!.matchAll(/<stream>([\s\S]*?)<\/stream>/g)) {
        const s = stream[1]!;
        const tag = (name: string, within = s): string =>
          new RegExp(`<${name}>([^<]*)</${name}>`).exec(within)?.[1] ?? '';
        const publisher = /<client>([\s\S]*?<publishing\/>[\s\S]*?)<\/client>/.exec(s)?.[1] ?? '';
        if (!publisher) continue;
        const video = /<video>([\s\S]*?)<\/video>/.exec(s)?.[1] ?? '';
        const audio = /<audio>([\s\S]*?)<\/audio>/.exec(s)?.[1] ?? '';
        out.push({
          app: app[1]!,
          name: tag('name'),
          clientId: tag('id', publisher),
          flashver: tag('flashver', publisher),
          address: tag('address', publisher),
          bytesIn: Number(tag('bytes_in')),
          width: Number(tag('width', video)),
          height: Number(tag('height', video)),
          frameRate: Number(tag('frame_rate', video)),
          videoCodec: tag('codec', video),
          audioCodec: tag('codec', audio),
        });
      }
    }
    return out;
  }

  async errorLog(): Promise<string> {
    return readFile(join(this.dir, 'error.log'), 'utf8').catch(() => '');
  }

  async stop(): Promise<void> {
    this.process.kill('SIGCONT');
    await stopProcess(this.process);
    await rm(this.dir, { recursive: true, force: true });
  }
}
