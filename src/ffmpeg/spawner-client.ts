import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type OnReadOpts, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  proof,
  proves,
  readLines,
  type ControlHello,
  type Slot,
  type SlotHello,
  type SpawnReply,
  type SpawnRequest,
  type SpawnerAddress,
} from './spawner-wire.js';

/** A spawner that stopped (it should not) is started again after this long, at the same address. */
const RESTART_DELAY_MS = 500;

/**
 * The spawner's program beside this module: the built one, or the sources with tsx registered (as the
 * tests run the gateway).
 */
function spawnerCommand(): string[] {
  if (import.meta.url.endsWith('.js')) return [fileURLToPath(new URL('./spawner.js', import.meta.url))];
  return [`--import=${import.meta.resolve('tsx')}`, fileURLToPath(new URL('./spawner.ts', import.meta.url))];
}

/**
 * The spawner process (`spawner.ts`): started by the gateway's main thread, which gives its address
 * to every thread; started again if it stops, at the same address. `close` ends it, and with it every
 * child it started.
 */
export class SpawnerProcess {
  readonly address: SpawnerAddress;
  /** Resolves once it listens (each time it is started again, a new promise). */
  ready: Promise<void>;
  #child: ChildProcess | undefined;
  #closed = false;

  constructor(private readonly options: { onStop?: (code: number | null) => void; unref?: boolean } = {}) {
    this.address = {
      name: `\0webrtc-rtmp-gateway-spawner-${process.pid}-${randomBytes(8).toString('hex')}`,
      secret: randomBytes(32).toString('hex'),
    };
    this.ready = this.#start();
  }

  /** Starts it; resolves once it listens, rejects if it ends (or cannot be started) before. */
  #start(): Promise<void> {
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, spawnerCommand(), { stdio: ['pipe', 'pipe', 'inherit'] });
    } catch (error) {
      this.#stopped(null);
      return Promise.reject(error as Error);
    }
    this.#child = child;
    child.on('error', () => {}); // it could not be started: its 'exit' follows, or none, and `ready` says
    child.stdin!.on('error', () => {});
    child.stdout!.on('error', () => {});
    child.stdin!.write(`${JSON.stringify(this.address)}\n`);
    // Unreferenced, it keeps the thread alive only until it listens (a launch waits for that).
    const unref = (): void => {
      if (!this.options.unref) return;
      child.unref();
      (child.stdin as unknown as Socket).unref();
      (child.stdout as unknown as Socket).unref();
    };
    child.once('exit', (code) => this.#stopped(code));
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => {
        unref();
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`the ffmpeg spawner ended (${code}) before it listened`)));
      child.once('error', (error) => {
        reject(error);
        if (child.pid === undefined) this.#stopped(null);
      });
    });
    ready.catch(() => {}); // the caller that waits for it hears of it
    return ready;
  }

  /** It stopped (it should not): it is started again shortly, at the same address. */
  #stopped(code: number | null): void {
    if (this.#closed) return;
    this.options.onStop?.(code);
    const timer = setTimeout(() => {
      if (!this.#closed) this.ready = this.#start();
    }, RESTART_DELAY_MS);
    if (this.options.unref) timer.unref();
  }

  /** Its PID while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Ends it: it kills every child it started, then exits. */
  close(): void {
    this.#closed = true;
    this.#child?.stdin?.end();
  }
}

/** What becomes of a child asked for with `SpawnerConnection.launch`. */
interface LaunchEvents {
  /** Its descriptors' connections, by descriptor number, made (not yet handed over). */
  connected(sockets: Map<number, Socket>): void;
  /** It runs: what is written to its descriptors now reaches it. */
  started(pid: number): void;
  /** It did not start: an error code. */
  failed(code: string): void;
  exited(code: number | null, signal: NodeJS.Signals | null): void;
}

/** A child to start (`SpawnerConnection.launch`). */
export interface Launch {
  binary: string;
  args: readonly string[];
  slots: readonly Slot[];
  /** Buffers the connections of some descriptors are read into, by descriptor number. */
  readers: ReadonlyMap<number, OnReadOpts>;
  events: LaunchEvents;
}

/** A thread's control connection: `verified` once the spawner has proved it knows the secret. */
interface Control {
  socket: Socket;
  key: string;
  verified: Promise<void>;
}

interface Launched {
  events: LaunchEvents;
  pid?: number;
}

/**
 * One thread's control connection to the spawner. Each child's descriptors are connections of their
 * own, made from this thread: what the child reads and writes never passes through the spawner.
 */
export class SpawnerConnection {
  readonly #launched = new Map<number, Launched>();
  #control: Control | undefined;
  #next = 0;

  constructor(
    private readonly address: SpawnerAddress,
    private readonly ready: () => Promise<void> = () => Promise.resolve(),
  ) {}

  /**
   * Asks for `binary` with `args` and the descriptors `slots`; each `'socket'` slot is a connection
   * made here, read into a buffer of the caller's when `readers` has one for it.
   */
  launch(launch: Launch): void {
    const id = this.#next++;
    this.#launched.set(id, { events: launch.events });
    this.ready()
      .then(() => {
        const control = this.#connect();
        return control.verified.then(() => control);
      })
      .then(
        (control) => this.#send(id, launch, control),
        () => this.#failed(id, 'ECONNREFUSED'),
      );
  }

  #send(id: number, { binary, args, slots, readers, events }: Launch, control: Control): void {
    // Gone already: its connection closed (and it was told) while waiting for the spawner's proof.
    if (!this.#launched.has(id) || control.socket.destroyed) return;
    const { name, secret } = this.address;
    const sockets = new Map<number, Socket>();
    slots.forEach((slot, fd) => {
      if (slot !== 'socket') return;
      const reader = readers.get(fd);
      const socket = connect({ path: name, ...(reader ? { onread: reader } : {}) });
      socket.on('error', () => {}); // the child gone: its exit tells
      const hello: SlotHello = {
        key: control.key,
        request: id,
        fd,
        proof: proof(secret, `slot:${control.key}:${id}:${fd}`),
      };
      socket.write(`${JSON.stringify(hello)}\n`);
      sockets.set(fd, socket);
    });
    events.connected(sockets);
    const request: SpawnRequest = { id, binary, args: [...args], slots: [...slots] };
    control.socket.write(`${JSON.stringify(request)}\n`);
    control.socket.ref();
  }

  /**
   * The control connection, made when first needed. Nothing is asked on it (no argument, which may
   * hold a stream key, is written) before the spawner has proved it knows the secret: whatever else
   * listens at its name (it restarts at the same one) hears only this connection's proof.
   */
  #connect(): Control {
    if (this.#control) return this.#control;
    const { name, secret } = this.address;
    const key = randomBytes(16).toString('hex');
    const socket = connect({ path: name });
    let proven!: () => void;
    let refused!: (error: Error) => void;
    const verified = new Promise<void>((resolve, reject) => ([proven, refused] = [resolve, reject]));
    verified.catch(() => {}); // each launch hears of it
    const control: Control = { socket, key, verified };
    this.#control = control;
    socket.on('error', () => socket.destroy());
    const hello: ControlHello = { control: key, proof: proof(secret, `control:${key}`) };
    socket.write(`${JSON.stringify(hello)}\n`);
    let trusted = false;
    readLines(
      (on) => socket.on('data', on),
      (line) => {
        if (trusted) return this.#reply(line as SpawnReply, socket);
        trusted = proves((line as { spawner?: unknown }).spawner, secret, `spawner:${key}`);
        if (!trusted) return void socket.destroy();
        proven();
      },
      () => socket.destroy(),
    );
    socket.on('close', () => {
      refused(new Error('the spawner closed the connection'));
      if (this.#control === control) this.#control = undefined;
      // The spawner has gone, and with it what it knew of this thread's children: they are ended here.
      for (const [id, launched] of this.#launched) {
        if (launched.pid === undefined) this.#failed(id, 'ECONNRESET');
        else {
          killGroup(launched.pid);
          this.#exited(id, null, 'SIGKILL');
        }
      }
    });
    return control;
  }

  #reply(reply: SpawnReply, socket: Socket): void {
    const launched = this.#launched.get(reply.id);
    if (!launched) return;
    if ('pid' in reply) {
      // A PID this thread will signal the group of: never 0, 1 (every process) or its own.
      if (!Number.isSafeInteger(reply.pid) || reply.pid <= 1 || reply.pid === process.pid) return void socket.destroy();
      launched.pid = reply.pid;
      launched.events.started(reply.pid);
    } else if ('failed' in reply) this.#failed(reply.id, reply.failed);
    else this.#exited(reply.id, reply.exit, reply.signal);
  }

  #failed(id: number, code: string): void {
    const launched = this.#launched.get(id);
    this.#launched.delete(id);
    this.#idle();
    launched?.events.failed(code);
  }

  #exited(id: number, code: number | null, signal: NodeJS.Signals | null): void {
    const launched = this.#launched.get(id);
    this.#launched.delete(id);
    this.#idle();
    launched?.events.exited(code, signal);
  }

  /** With no child to hear of, the connection does not keep the thread alive. */
  #idle(): void {
    if (this.#launched.size === 0) this.#control?.socket.unref();
  }
}

/** Kills a child's process group (each leads its own). */
export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone meanwhile.
  }
}

let own: SpawnerConnection | undefined;

/** A connection to the spawner at `address`, or to this thread's own without one (`ownSpawner`). */
export function spawnerConnection(address: SpawnerAddress | undefined): SpawnerConnection {
  return address ? new SpawnerConnection(address) : ownSpawner();
}

/**
 * This thread's connection to a spawner of its own, started when first needed (for what runs without
 * the gateway's: a test, a tool): it ends with the process.
 */
export function ownSpawner(): SpawnerConnection {
  if (!own) {
    const process_ = new SpawnerProcess({ unref: true });
    own = new SpawnerConnection(process_.address, () => process_.ready);
  }
  return own;
}
