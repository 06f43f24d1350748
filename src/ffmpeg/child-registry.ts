import { trackSize } from '../core/tracked.js';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createOwnFileSync, readOwnFileSync } from '../core/own-files.js';
import { processName, processStartTime } from './proc-stat.js';

interface Entry {
  pid: number;
  /** Start time from /proc/<pid>/stat, so that a PID the system reused is never taken for ours. */
  startTime: string;
}

/**
 * The gateway's ffmpeg processes, recorded in a file as they start and end. A gateway that was
 * killed outright (SIGKILL, a crash of the machine's OOM killer) cannot end its children; at the
 * next start `reap` ends those still running, each checked by its start time and its name.
 */
export class ChildRegistry {
  readonly #entries = new Map<number, Entry>();

  /** Counts its maps in /metrics (`tracked.ts`): static, so that no closure of the constructor holds the instance. */
  static #trackSizes(owner: ChildRegistry): void {
    trackSize('child_registry', owner, (self) => self.#entries.size);
  }

  constructor(private readonly file: string) {
    ChildRegistry.#trackSizes(this);
    mkdirSync(dirname(file), { recursive: true });
    this.#save();
  }

  add(pid: number): void {
    const startTime = processStartTime(pid);
    if (startTime === undefined) return;
    this.#entries.set(pid, { pid, startTime });
    this.#save();
  }

  remove(pid: number): void {
    if (this.#entries.delete(pid)) this.#save();
  }

  /** Kills the process groups of the ffmpeg processes a previous gateway recorded in `file`; returns their PIDs. */
  static reap(file: string): number[] {
    let entries: Entry[];
    try {
      entries = (JSON.parse(readOwnFileSync(file)) as { children: Entry[] }).children;
    } catch {
      return [];
    }
    const reaped: number[] = [];
    for (const { pid, startTime } of entries) {
      if (processStartTime(pid) !== startTime || processName(pid) !== 'ffmpeg') continue;
      try {
        process.kill(-pid, 'SIGKILL'); // each ffmpeg leads its own process group
        reaped.push(pid);
      } catch {
        // Ended meanwhile.
      }
    }
    return reaped;
  }

  #save(): void {
    const temporary = `${this.file}.${process.pid}.tmp`;
    // Made anew each time, never written through a link left at its name; the rename replaces a link at `file` itself.
    rmSync(temporary, { force: true });
    createOwnFileSync(temporary, JSON.stringify({ gatewayPid: process.pid, children: [...this.#entries.values()] }));
    renameSync(temporary, this.file);
  }
}
