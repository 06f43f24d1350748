import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import {
  MAX_LINE_BYTES,
  ORPHAN_GRACE_MS,
  proof,
  proves,
  readLines,
  type ControlHello,
  type SlotHello,
  type SpawnReply,
  type SpawnRequest,
  type SpawnerAddress,
} from './spawner-wire.js';

/**
 * The spawner: a small process of the gateway's own that starts its ffmpeg children, so that no
 * thread of the gateway forks. A fork copies the page tables of the process that forks, and Node's
 * spawn waits for the child's exec: in the gateway (hundreds of MB mapped, a dozen threads) that held
 * the calling thread 30 to 56 ms, every push start, reconnect, snapshot and recording; here, in a
 * process of a few dozen MB, it takes a few ms of its own.
 *
 * It reads its address (`SpawnerAddress`) as the first line of its standard input, listens there,
 * and ends when that input ends: the gateway has gone. Each thread of the gateway opens a control
 * connection (`ControlHello`) and asks it for children (`SpawnRequest`); their descriptors are
 * connections the thread makes to it (`SlotHello`), handed to the child as they are, so that what
 * the child reads and writes goes straight to the thread.
 *
 * The children of a control connection that closes (their thread has gone), and every child when
 * the gateway has gone, are given `ORPHAN_GRACE_MS` to end by themselves and then killed: their
 * input has ended with the thread, and a recording's ffmpeg finishes and lists its part as it ends;
 * one that hangs is not left running.
 */

/** How long a request waits for its descriptors' connections. */
const SLOTS_TIMEOUT_MS = 5000;

interface Pending {
  request: SpawnRequest;
  timer: NodeJS.Timeout;
}

class Control {
  readonly pending = new Map<number, Pending>();
  readonly children = new Map<number, ChildProcess>();

  constructor(readonly socket: Socket) {}

  reply(reply: SpawnReply): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(reply)}\n`);
  }
}

class Spawner {
  readonly #secret: string;
  readonly #controls = new Map<string, Control>();
  /** Descriptors that came in, by `key:request:fd`, until their request is started. */
  readonly #slots = new Map<string, Socket>();
  /** Every child running, its control connection's or one whose control connection has closed. */
  readonly #running = new Set<ChildProcess>();

  constructor(secret: string) {
    this.#secret = secret;
  }

  accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), SLOTS_TIMEOUT_MS);
    let listener: ((data: Buffer) => void) | undefined;
    let control: { key: string; control: Control } | undefined;
    readLines(
      (on) => socket.on('data', (listener = on)),
      (line) => {
        if (control) return this.#request(control.key, control.control, line as SpawnRequest);
        clearTimeout(timer);
        if (!this.#trusted(line)) return void socket.destroy();
        if (typeof (line as Partial<ControlHello>).control === 'string') {
          control = this.#control(socket, (line as ControlHello).control);
          return control !== undefined;
        }
        // A descriptor: nothing follows its first line, and what it carries is the child's.
        socket.off('data', listener!);
        socket.pause();
        this.#slot(socket, line as SlotHello);
        return false;
      },
      () => socket.destroy(),
      MAX_LINE_BYTES,
    );
  }

  /** Ends every child, after the grace: the gateway has gone. Resolves once none runs. */
  endAll(): Promise<void> {
    return endInGrace([...this.#running]);
  }

  /** Whether a first line proves the secret known, for what it says it is. */
  #trusted(hello: unknown): boolean {
    if (typeof hello !== 'object' || hello === null) return false;
    const { control, key, request, fd, proof: given } = hello as Partial<ControlHello & SlotHello>;
    if (typeof control === 'string') return proves(given, this.#secret, `control:${control}`);
    if (typeof key !== 'string' || !Number.isSafeInteger(request) || !Number.isSafeInteger(fd)) return false;
    return proves(given, this.#secret, `slot:${key}:${request}:${fd}`);
  }

  #control(socket: Socket, key: string): { key: string; control: Control } | undefined {
    if (typeof key !== 'string' || this.#controls.has(key)) return void socket.destroy();
    const control = new Control(socket);
    this.#controls.set(key, control);
    socket.write(`${JSON.stringify({ spawner: proof(this.#secret, `spawner:${key}`) })}\n`);
    socket.on('close', () => {
      this.#controls.delete(key);
      for (const { timer, request } of control.pending.values()) {
        clearTimeout(timer);
        this.#dropSlots(key, request);
      }
      void endInGrace([...control.children.values()]);
    });
    return { key, control };
  }

  #slot(socket: Socket, hello: SlotHello): void {
    const id = `${hello.key}:${hello.request}:${hello.fd}`;
    if (this.#slots.has(id)) return void socket.destroy();
    // It may come before its request, or even before its control connection's first line.
    this.#slots.set(id, socket);
    const timer = setTimeout(() => socket.destroy(), SLOTS_TIMEOUT_MS);
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.#slots.get(id) === socket) this.#slots.delete(id);
    });
    const control = this.#controls.get(hello.key);
    const pending = control?.pending.get(hello.request);
    if (control && pending) this.#startWhenReady(hello.key, control, pending.request);
  }

  #request(key: string, control: Control, request: SpawnRequest): void {
    if (
      typeof request?.id !== 'number' ||
      typeof request.binary !== 'string' ||
      !Array.isArray(request.args) ||
      !Array.isArray(request.slots) ||
      control.pending.has(request.id) ||
      control.children.has(request.id)
    ) {
      control.socket.destroy();
      return;
    }
    const timer = setTimeout(() => {
      control.pending.delete(request.id);
      this.#dropSlots(key, request);
      control.reply({ id: request.id, failed: 'ETIMEDOUT' });
    }, SLOTS_TIMEOUT_MS);
    control.pending.set(request.id, { request, timer });
    this.#startWhenReady(key, control, request);
  }

  #startWhenReady(key: string, control: Control, request: SpawnRequest): void {
    const sockets = request.slots.map((slot, fd) =>
      slot === 'socket' ? this.#slots.get(`${key}:${request.id}:${fd}`) : null,
    );
    if (sockets.includes(undefined)) return;
    clearTimeout(control.pending.get(request.id)!.timer);
    control.pending.delete(request.id);
    request.slots.forEach((_, fd) => this.#slots.delete(`${key}:${request.id}:${fd}`));
    const opened: number[] = [];
    let child: ChildProcess | undefined;
    let failed: string | undefined;
    try {
      const stdio = request.slots.map((slot, fd) => {
        if (slot === 'socket') return blocking(sockets[fd]!);
        if (slot === 'ignore') return 'ignore';
        const opened_ = openSync(slot.path, 'r');
        opened.push(opened_);
        return opened_;
      }) as StdioOptions;
      child = spawn(request.binary, request.args, { stdio, detached: true });
    } catch (error) {
      failed = (error as NodeJS.ErrnoException).code ?? 'EINVAL';
    }
    for (const fd of opened) closeSync(fd);
    for (const socket of sockets) socket?.destroy(); // the child has its own copies
    if (!child || child.pid === undefined) {
      if (!child) control.reply({ id: request.id, failed: failed ?? 'EINVAL' });
      // Not started: its 'error' comes next, with the code (ENOENT, EACCES, EAGAIN, …).
      else
        child.once('error', (error: NodeJS.ErrnoException) =>
          control.reply({ id: request.id, failed: error.code ?? 'EINVAL' }),
        );
      return;
    }
    const pid = child.pid;
    control.children.set(request.id, child);
    this.#running.add(child);
    child.on('error', () => {}); // a signal to a child already gone
    child.once('exit', (code, signal) => {
      control.children.delete(request.id);
      this.#running.delete(child);
      control.reply({ id: request.id, exit: code, signal });
    });
    control.reply({ id: request.id, pid });
  }

  #dropSlots(key: string, request: SpawnRequest): void {
    request.slots.forEach((slot, fd) => {
      if (slot !== 'socket') return;
      const id = `${key}:${request.id}:${fd}`;
      this.#slots.get(id)?.destroy();
      this.#slots.delete(id);
    });
  }
}

/**
 * The socket made blocking, for the child: its descriptor shares the open file with this process's,
 * which Node made non-blocking, and libuv makes only descriptors 0-2 blocking in a child. ffmpeg
 * reading a non-blocking pipe 3 would poll it every millisecond while it waits.
 */
function blocking(socket: Socket): Socket {
  const handle = (socket as unknown as { _handle?: { readStop(): number; setBlocking(on: boolean): number } })._handle;
  handle?.readStop();
  handle?.setBlocking(true);
  return socket;
}

/** Kills those of `children` that have not ended by themselves within `ORPHAN_GRACE_MS`; resolves once all have. */
function endInGrace(children: ChildProcess[]): Promise<void> {
  const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
  if (running.length === 0) return Promise.resolve();
  const ended = running.map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
  const timer = setTimeout(() => running.forEach(killGroup), ORPHAN_GRACE_MS);
  return Promise.all(ended).then(() => clearTimeout(timer));
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // each child leads its own process group
  } catch {
    // Gone meanwhile.
  }
}

function main(): void {
  let spawner: Spawner | undefined;
  const end = (): void => {
    // Once every child has ended; and at the latest shortly after the grace, should a killed one's exit go unheard.
    setTimeout(() => process.exit(0), ORPHAN_GRACE_MS + 1000);
    void (spawner?.endAll() ?? Promise.resolve()).then(() => process.exit(0));
  };
  process.stdin.on('error', end);
  process.stdin.on('end', end);
  readLines(
    (on) => process.stdin.on('data', on),
    (value) => {
      const address = value as SpawnerAddress;
      spawner = new Spawner(address.secret);
      const server = createServer((socket) => spawner!.accept(socket));
      const cannotListen = (error: Error): void => {
        process.stderr.write(`the spawner cannot listen: ${(error as NodeJS.ErrnoException).code}\n`);
        process.exit(1);
      };
      server.once('error', cannotListen);
      server.listen(address.name, () => {
        server.off('error', cannotListen);
        server.on('error', () => {}); // a listening server's errors are of its connections, handled each
        process.stdout.write('listening\n');
      });
      return false;
    },
    () => process.exit(1),
  );
  // Only the gateway ends it, by closing its input, once its ffmpeg have ended as they should: a
  // signal to the gateway's whole process group (an interrupt from the terminal, a service manager
  // stopping every process of the service) is the gateway's to act on.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
}

main();
