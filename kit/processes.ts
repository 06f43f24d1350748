import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Every process a test starts goes through here, so teardown can stop each one by PID, in its
 * own process group, even when the test failed half-way.
 */
const started = new Set<ChildProcess>();

export function startProcess(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options });
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

export async function stopProcess(child: ChildProcess, timeoutMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signal(child, 'SIGTERM');
  const timer = setTimeout(() => signal(child, 'SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, name);
  } catch {
    try {
      child.kill(name);
    } catch {
      // Gone already.
    }
  }
}

export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...started].map((child) => stopProcess(child)));
}

/** PIDs of running processes whose command line contains `needle`. */
export async function pidsMatching(needle: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ');
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (cmdline.includes(needle) && !/\) Z /.test(stat)) pids.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return pids;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Whether `pid` still runs: a zombie (ended, not yet reaped by its parent) does not. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The running descendants of `parent`: its children, and theirs; each with its command name (as in /proc/PID/stat). */
export async function descendants(parent: number): Promise<{ pid: number; comm: string }[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const processes: { pid: number; ppid: number; comm: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (state !== 'Z')
        processes.push({ pid: Number(entry), ppid: Number(ppid), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // Ended while we looked.
    }
  }
  const below = new Set([parent]);
  for (let grew = true; grew;) {
    grew = false;
    for (const process of processes) {
      if (below.has(process.ppid) && !below.has(process.pid)) {
        below.add(process.pid);
        grew = true;
      }
    }
  }
  return processes.filter((p) => p.pid !== parent && below.has(p.pid)).map(({ pid, comm }) => ({ pid, comm }));
}

/**
 * PIDs of the running descendants of `parent` whose command name is `comm` (as in /proc/PID/stat):
 * its children, and theirs (the gateway's ffmpeg are children of its spawner).
 */
export async function childPids(parent: number, comm: string): Promise<number[]> {
  return (await descendants(parent)).filter((p) => p.comm === comm).map((p) => p.pid);
}
