import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);
let made = 0;

/**
 * A host of the test's own: a network namespace joined to this one by a veth pair, on a /30 of
 * 10.213.0.0/16. Traffic to `peerAddress` crosses a real link that `cut()` takes down on the far
 * side: packets are then dropped in silence (a blackhole, as a failed route or cable is), and
 * `restore()` brings it back. Needs root (CAP_NET_ADMIN).
 */
/** The addresses of the test hosts made in network namespaces: the tests' own, never anyone else's. */
export const TEST_NETWORKS = '10.213.0.0/16';

export class TestNetwork {
  private constructor(
    readonly ns: string,
    readonly hostLink: string,
    readonly peerLink: string,
    readonly hostAddress: string,
    readonly peerAddress: string,
  ) {}

  static async create(): Promise<TestNetwork> {
    const id = `${process.pid % 10000}x${++made}`;
    const subnet = randomInt(0, 64) * 4;
    const third = randomInt(0, 256);
    const net = new TestNetwork(
      `wrg${id}`,
      `wrgh${id}`,
      `wrgp${id}`,
      `10.213.${third}.${subnet + 1}`,
      `10.213.${third}.${subnet + 2}`,
    );
    await run('ip', ['netns', 'add', net.ns]);
    try {
      await run('ip', ['link', 'add', net.hostLink, 'type', 'veth', 'peer', 'name', net.peerLink]);
      await run('ip', ['link', 'set', net.peerLink, 'netns', net.ns]);
      await run('ip', ['addr', 'add', `${net.hostAddress}/30`, 'dev', net.hostLink]);
      await run('ip', ['link', 'set', net.hostLink, 'up']);
      await net.#inNs('ip', 'addr', 'add', `${net.peerAddress}/30`, 'dev', net.peerLink);
      await net.#inNs('ip', 'link', 'set', net.peerLink, 'up');
      await net.#inNs('ip', 'link', 'set', 'lo', 'up');
    } catch (error) {
      await net.destroy();
      throw error;
    }
    return net;
  }

  /** Whether this machine lets the tests make namespaces (root with iproute2). */
  static async available(): Promise<boolean> {
    if (process.getuid?.() !== 0) return false;
    try {
      await run('ip', ['netns', 'list']);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Gives the host a default route, through the link to this machine: to what runs on the host, its
   * link's address is then the machine's own address on its default route, as a LAN address is.
   */
  async routeDefaultThroughLink(): Promise<void> {
    await this.#inNs('ip', 'route', 'add', 'default', 'via', this.hostAddress);
  }

  async cut(): Promise<void> {
    await this.#inNs('ip', 'link', 'set', this.peerLink, 'down');
  }

  async restore(): Promise<void> {
    await this.#inNs('ip', 'link', 'set', this.peerLink, 'up');
  }

  /** Removes the namespace, which removes the veth pair with it. */
  async destroy(): Promise<void> {
    await run('ip', ['netns', 'del', this.ns]).catch(() => {});
    await run('ip', ['link', 'del', this.hostLink]).catch(() => {});
  }

  async #inNs(...command: string[]): Promise<void> {
    await run('ip', ['netns', 'exec', this.ns, ...command]);
  }
}
