import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, setPriority } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { startProcess, stopProcess } from './processes.js';

/**
 * Processes spinning on every core at a higher priority than everything else on the machine, for
 * `seconds`: a neighbour, a burst of transcodes, an undersized VM. Each runs in a session of its
 * own, so its priority is set on its autogroup too (the kernel shares CPU between sessions first,
 * by their autogroup's nice, and only then by a process's own). Each ends by itself (`timeout`):
 * a starved caller cannot leave the machine hogged.
 */
export class CpuHog {
  private constructor(readonly children: ChildProcess[]) {}

  static async start(nice: number, seconds: number, count = cpus().length): Promise<CpuHog> {
    const children = Array.from({ length: count }, () =>
      startProcess('timeout', ['-s', 'KILL', String(seconds), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' }),
    );
    await Promise.all(children.map((child) => raise(child.pid!, nice)));
    return new CpuHog(children);
  }

  /** Resolves once every spinning process has ended (its time up, or stopped). */
  async ended(): Promise<void> {
    const exited = (child: ChildProcess): Promise<void> =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((resolve) => child.once('exit', () => resolve()));
    await Promise.all(this.children.map(exited));
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((child) => stopProcess(child)));
  }
}

/** Sets the priority of `pid` (this process when 0), and of its session's autogroup where the kernel has them. */
export async function raise(pid: number, nice: number): Promise<void> {
  setPriority(pid, nice);
  await writeFile(`/proc/${pid || process.pid}/autogroup`, String(nice)).catch(() => {});
}

/**
 * A busy loop that is not the caller's child (its shell has left it to init), as another program on
 * the machine is: a gateway in the test's own process counts its children's CPU as its own. At
 * `nice` 19 it takes only what the caller's session leaves: the machine is saturated, yet the
 * caller's processes get all the CPU they ask for. Its process id: stop it with `stopHog`, nothing
 * else will.
 */
export async function startHog(nice = 0): Promise<number> {
  const shell = spawn('sh', ['-c', 'sh -c "while :; do :; done" >/dev/null 2>&1 & echo $!'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  shell.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise((resolve) => shell.once('close', resolve));
  const pid = Number(out.trim());
  // Its own priority only: it shares the caller's session, and so its autogroup.
  if (nice !== 0) setPriority(pid, nice);
  return pid;
}

export function stopHog(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
