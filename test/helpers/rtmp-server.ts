import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, stopProcess, waitFor } from './processes.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
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
  videoCodec: string;
  audioCodec: string;
}

/**
 * A real RTMP server for tests: nginx with libnginx-mod-rtmp, on loopback, recording every
 * publish to `<dir>/rec/<stream>.flv`, with `rtmp_stat` served over HTTP.
 */
export class NginxRtmp {
  private constructor(
    readonly dir: string,
    readonly rtmpPort: number,
    readonly httpPort: number,
    private readonly process: ChildProcess,
  ) {}

  /**
   * `onPublish`: an HTTP URL nginx-rtmp posts each publish to (its `on_publish` callback).
   * `apps`: applications besides `live`, such as `live/instance`.
   */
  static async start(options: { onPublish?: string; apps?: string[] } = {}): Promise<NginxRtmp> {
    const dir = await mkdtemp(join(tmpdir(), 'nginx-rtmp-'));
    const rtmpPort = await freePort();
    const httpPort = await freePort();
    const conf = `
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:${rtmpPort};
${['live', ...(options.apps ?? [])].map((app) => `    application ${app} {
      live on;${options.onPublish ? `
      on_publish ${options.onPublish};` : ''}
      record all;
      record_path ${dir}/rec;
      record_unique off;
    }`).join('\n')}
  }
}
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  server {
    listen 127.0.0.1:${httpPort};
    location /stat { rtmp_stat all; }
  }
}
`;
    await writeFile(join(dir, 'nginx.conf'), conf);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'rec'));
    const child = startProcess('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const server = new NginxRtmp(dir, rtmpPort, httpPort, child);
    await waitFor(`nginx-rtmp to listen (${stderr})`, async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      try {
        return (await fetch(`http://127.0.0.1:${httpPort}/stat`)).ok;
      } catch {
        return false;
      }
    });
    return server;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  url(app = 'live'): string {
    return `rtmp://127.0.0.1:${this.rtmpPort}/${app}`;
  }

  recording(stream: string): string {
    return join(this.dir, 'rec', `${stream}.flv`);
  }

  async statXml(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.httpPort}/stat`)).text();
  }

  /** Streams being published now, as nginx-rtmp's stat page lists them. */
  async streams(): Promise<RtmpStream[]> {
    const xml = await this.statXml();
    const out: RtmpStream[] = [];
    for (const app of xml.matchAll(/<application>\s*<name>([^<]*)<\/name>([\s\S]*?)<\/application>/g)) {
      for (const stream of app[2]!.matchAll(/<stream>([\s\S]*?)<\/stream>/g)) {
        const s = stream[1]!;
        const tag = (name: string, within = s): string => new RegExp(`<${name}>([^<]*)</${name}>`).exec(within)?.[1] ?? '';
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
    await stopProcess(this.process);
    await rm(this.dir, { recursive: true, force: true });
  }
}
