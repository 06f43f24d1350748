import { readFileSync } from 'node:fs';

/**
 * Fields of `/proc/<pid>/stat` from the second on (`[0]` is comm, field 2; `[1]` the state,
 * field 3; field n is at n - 2), or undefined for a process that is gone.
 */
function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return [
      text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
      ...text.slice(text.lastIndexOf(')') + 2).split(' '),
    ];
  } catch {
    return undefined;
  }
}

/** Its start time (field 22), so that a PID the system reused is never taken for ours. */
export function processStartTime(pid: number): string | undefined {
  return stat(pid)?.[20];
}

export function processName(pid: number): string | undefined {
  return stat(pid)?.[0];
}
