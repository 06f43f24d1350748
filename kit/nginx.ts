import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startProcess, stopProcess, waitFor } from './processes.js';

/**
 * Starts nginx on `dir/nginx.conf` (inside the network namespace `netns` when given) and resolves
 * once `ready` says it serves. When it exits or never serves, it is stopped by PID and the start
 * rejects with what nginx said.
 */
export async function startNginx(dir: string, ready: () => Promise<boolean>, netns?: string): Promise<ChildProcess> {
  const nginx = ['nginx', '-c', join(dir, 'nginx.conf'), '-p', dir];
  const child = netns
    ? startProcess('ip', ['netns', 'exec', netns, ...nginx])
    : startProcess(nginx[0]!, nginx.slice(1));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitFor('nginx to serve', async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return ready();
    });
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return child;
}

/**
 * The configuration of an nginx a test runs: in the foreground, as one process, with its pid file,
 * error log and temporary files under `dir` (nothing of the system's nginx is touched). `before`
 * comes first (modules, an `rtmp` block); `http` is the http block's content.
 */
export function nginxConf(dir: string, http: string, before = ''): string {
  return `${before}
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
${http}
}
`;
}
