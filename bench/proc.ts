import { readFileSync } from 'node:fs';
import { machineCpuTimes } from '../src/core/load.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { sleep } from '../kit/processes.js';

/** Clock ticks per second for /proc CPU times; 100 on Linux. */
const HZ = 100;

/** A process's user, system, reaped children's user and system CPU seconds; undefined once it is gone. */
function cpuTimes(pid: number): [number, number, number, number] | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return [11, 12, 13, 14].map((i) => Number(fields[i]) / HZ) as [number, number, number, number];
  } catch {
    return undefined;
  }
}

/** User + system CPU time of a process so far, in seconds (undefined once it is gone). */
function cpuSeconds(pid: number): number | undefined {
  const times = cpuTimes(pid);
  return times && times[0] + times[1];
}

/**
 * CPU seconds of a process and of the children it has reaped (`cutime`, `cstime`): a short-lived
 * ffmpeg (a snapshot's) is counted in the spawner that reaped it, too short to be found and watched.
 */
export function cpuWithReaped(pid: number): number {
  return (cpuTimes(pid) ?? [0, 0, 0, 0]).reduce((sum, t) => sum + t, 0);
}

/** CPU seconds of the children a process has reaped (`cutime`, `cstime`): its short-lived ffmpegs'. */
export function reapedSeconds(pid: number): number {
  const times = cpuTimes(pid);
  return times ? times[2] + times[3] : 0;
}

/** Resident memory of a process in MB. */
export function rssMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export interface CpuReading {
  /** Percent of one core used by each process over the window. */
  percent: Map<number, number>;
  /** Percent of one core used by these processes together (each must be one the window watched). */
  of(pids: readonly number[]): number;
  /** Percent of all cores in use over the window (100 = every core busy). */
  machinePercent: number;
  seconds: number;
}

/** CPU use of a set of processes over a window, measured from /proc. */
export class CpuWindow {
  readonly #start = new Map<number, number>();
  readonly #machine = machineCpuTimes()!;
  readonly #startedAt = performance.now();

  constructor(readonly pids: readonly number[]) {
    for (const pid of pids) this.#start.set(pid, cpuSeconds(pid) ?? 0);
  }

  end(): CpuReading {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    const percent = new Map<number, number>();
    for (const pid of this.pids) {
      const used = (cpuSeconds(pid) ?? this.#start.get(pid)!) - this.#start.get(pid)!;
      percent.set(pid, (used / seconds) * 100);
    }
    const machine = machineCpuTimes()!;
    const machinePercent = ((machine.busy - this.#machine.busy) / (machine.total - this.#machine.total)) * 100;
    const of = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + percent.get(pid)!, 0);
    return { percent, of, machinePercent, seconds };
  }
}

/**
 * The CPU (% of a core) of the gateway and every ffmpeg it runs over `seconds`, after `settleMs`
 * for what just started to settle: a destination costs both.
 */
export async function gatewayCpu(gateway: GatewayProcess, seconds: number, settleMs = 2000): Promise<number> {
  await sleep(settleMs);
  const pids = [...(await gateway.ownPids()), ...(await gateway.ffmpegPids())];
  const window = new CpuWindow(pids);
  await sleep(seconds * 1000);
  return window.end().of(pids);
}

/**
 * The UDP counters of this network namespace, or of process `pid`'s (/proc/<pid>/net/snmp):
 * datagrams received, those dropped for a full receive buffer, and sends refused for a full send
 * buffer (a sender's datagram that never left).
 */
export function udpCounters(pid?: number): { received: number; receiveBufferErrors: number; sendBufferErrors: number } {
  const lines = readFileSync(`/proc/${pid ?? 'self'}/net/snmp`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  const get = (name: string): number => values[names.indexOf(name)] ?? 0;
  return {
    received: get('InDatagrams'),
    receiveBufferErrors: get('RcvbufErrors'),
    sendBufferErrors: get('SndbufErrors'),
  };
}

/**
 * The CPU of `pids` over `seconds`, and over each of `parts` equal windows within it: the parts'
 * own figures are the measure's spread, printed beside it.
 */
export async function cpuOver(
  pids: readonly number[],
  seconds: number,
  parts = 3,
): Promise<{ whole: CpuReading; parts: CpuReading[] }> {
  const whole = new CpuWindow(pids);
  const readings: CpuReading[] = [];
  for (let i = 0; i < parts; i++) {
    const part = new CpuWindow(pids);
    await sleep((seconds * 1000) / parts);
    readings.push(part.end());
  }
  return { whole: whole.end(), parts: readings };
}
