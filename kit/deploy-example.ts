import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { nginxConf, startNginx } from './nginx.js';
import { stopProcess } from './processes.js';
import { freePorts } from './rtmp-server.js';

const DEPLOY = join(import.meta.dirname, '..', 'deploy');

/**
 * The nodes' settings in `deploy/compose.yml`, as each container would get them: the compose
 * variables filled from `variables`, and the compose network's names and addresses (`redis:6379`,
 * `node1:8080`, the balancer's fixed address) replaced by those of the processes that stand for
 * them here.
 */
export async function composeNodeEnv(
  variables: Record<string, string>,
  addresses: Record<string, string>,
): Promise<Map<string, Record<string, string>>> {
  const compose = parse(await readFile(join(DEPLOY, 'compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string> }>;
  };
  const nodes = new Map<string, Record<string, string>>();
  for (const [name, service] of Object.entries(compose.services)) {
    if (!name.startsWith('node')) continue;
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(service.environment ?? {})) {
      const filled = String(value).replace(/\$\{(\w+)(:\?[^}]*)?\}/g, (_, variable: string) => {
        if (!(variable in variables))
          throw new Error(`compose.yml asks for \${${variable}}, which the test does not give`);
        return variables[variable]!;
      });
      env[key] = Object.entries(addresses).reduce((text, [from, to]) => text.split(from).join(to), filled);
    }
    nodes.set(name, env);
  }
  return nodes;
}

/**
 * Debian's nginx running `deploy/nginx.conf`, the cluster's HTTP load balancer, on a loopback
 * port, with each `nodeN:8080` of its upstream replaced by `backends[nodeN]`.
 */
export class DeployBalancer {
  private constructor(
    private readonly dir: string,
    private readonly process: ChildProcess,
    readonly port: number,
  ) {}

  static async start(backends: Record<string, string>): Promise<DeployBalancer> {
    const dir = await mkdtemp(join(tmpdir(), 'deploy-balancer-'));
    try {
      const [port] = (await freePorts(1)) as [number];
      let server = await readFile(join(DEPLOY, 'nginx.conf'), 'utf8');
      for (const [node, address] of Object.entries(backends)) server = server.split(`${node}:8080`).join(address);
      if (!/listen 8080;/.test(server))
        throw new Error('deploy/nginx.conf no longer listens on 8080: the test does not know where');
      server = server.replace('listen 8080;', `listen 127.0.0.1:${port};`);
      await writeFile(join(dir, 'nginx.conf'), nginxConf(dir, server));
      const listening = (): Promise<boolean> =>
        fetch(`http://127.0.0.1:${port}/health`).then(
          () => true,
          () => false,
        );
      return new DeployBalancer(dir, await startNginx(dir, listening), port);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await stopProcess(this.process);
    await rm(this.dir, { recursive: true, force: true });
  }
}
