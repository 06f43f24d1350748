import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { machineCpuTimes } from '../src/load.js';
import type { GatewayProcess } from '../kit/gateway-process.js';
import { sleep } from '../kit/processes.js';

/** Clock ticks per second for /proc CPU times; 100 on Linux. */
const HZ = 100;

/** User + system CPU time of a process so far, in seconds (undefined once it is gone). */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / HZ;
  } catch {
    return undefined;
  }
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
 * The machine's UDP counters (/proc/net/snmp): datagrams received, those dropped for a full receive
 * buffer, and sends refused for a full send buffer (a sender's datagram that never left).
 */
export function udpCounters(): { received: number; receiveBufferErrors: number; sendBufferErrors: number } {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
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
 * The load generator's own event-loop delay (this process's main thread, where every publisher's
 * SRTP is made and sent) from now on: `p99Ms()` so far, `end()` stops watching. Printed beside each
 * capacity step, with how late its frames were sent, so that a step it could not feed is seen so.
 */
export function generatorLoop(): { p99Ms: () => number; end: () => void } {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  return { p99Ms: () => delay.percentile(99) / 1e6, end: () => delay.disable() };
}
