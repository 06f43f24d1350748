import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestNetwork } from '../kit/netns.js';
import { startProcess, stopProcess, waitFor } from '../kit/processes.js';

const LIBRARIES = '/usr/lib/x86_64-linux-gnu/janus';
const HTTP_PORT = 8088;
/** The VideoRoom room the benchmark's publishers join (made by the config file). */
const ROOM = 4242;

/**
 * Janus (Debian's `janus` package) as the peer the benchmark measures the gateway against: its
 * VideoRoom plugin and HTTP API only, in a network namespace of the benchmark's own, since Janus
 * leaves loopback out of its ICE candidates. Publishers reach it over the namespace's veth link;
 * it forwards each publisher's RTP (`rtp_forward`) to the host end of that link.
 */
export class Janus {
  private constructor(
    readonly network: TestNetwork,
    private readonly child: ChildProcess,
  ) {}

  static async start(dir: string): Promise<Janus> {
    await mkdir(dir, { recursive: true });
    const network = await TestNetwork.create();
    try {
      await writeConfig(dir, network.peerAddress);
      const child = startProcess('ip', [
        'netns',
        'exec',
        network.ns,
        'janus',
        '--configs-folder',
        dir,
        '--config',
        join(dir, 'janus.jcfg'),
      ]);
      const log = createWriteStream(join(dir, 'janus.log'));
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
      const janus = new Janus(network, child);
      await waitFor(
        `Janus to answer (log: ${dir}/janus.log)`,
        async () => {
          if (child.exitCode !== null) throw new Error(`Janus exited with ${child.exitCode}; see ${dir}/janus.log`);
          return fetch(`${janus.url}/info`).then(
            (r) => r.ok,
            () => false,
          );
        },
        20_000,
        100,
      );
      return janus;
    } catch (error) {
      await network.destroy();
      throw error;
    }
  }

  get url(): string {
    return `http://${this.network.peerAddress}:${HTTP_PORT}/janus`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** A publisher's place in the room: a Janus session with the VideoRoom attached. */
  async publisherHandle(): Promise<JanusPublisher> {
    return JanusPublisher.open(this.url);
  }

  async stop(): Promise<void> {
    await stopProcess(this.child, 5000);
    await this.network.destroy();
  }
}

interface JanusReply {
  janus: string;
  transaction?: string;
  data?: { id: number };
  plugindata?: { data: Record<string, unknown> };
  jsep?: { type: string; sdp: string };
  error?: { code: number; reason: string };
}

/** One VideoRoom publisher over Janus's HTTP API, its events read by long polling. */
export class JanusPublisher {
  readonly #waiting = new Map<string, (reply: JanusReply) => void>();
  #polling = true;
  #publisherId = 0;

  private constructor(
    private readonly sessionUrl: string,
    private readonly handleUrl: string,
  ) {
    void this.#poll();
  }

  static async open(url: string): Promise<JanusPublisher> {
    const session = await post(url, { janus: 'create' });
    const sessionUrl = `${url}/${session.data!.id}`;
    const handle = await post(sessionUrl, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    return new JanusPublisher(sessionUrl, `${sessionUrl}/${handle.data!.id}`);
  }

  /** Joins the room and publishes the offer; resolves with Janus's answer. */
  async publish(offer: string): Promise<string> {
    const joined = await this.#request({ request: 'join', ptype: 'publisher', room: ROOM });
    this.#publisherId = Number(joined.plugindata?.data.id);
    const published = await this.#request(
      { request: 'publish', audiocodec: 'opus', videocodec: 'h264' },
      { type: 'offer', sdp: offer },
    );
    if (!published.jsep)
      throw new Error(`Janus answered the publish without SDP: ${JSON.stringify(published.plugindata)}`);
    return published.jsep.sdp;
  }

  /** Forwards this publisher's video (mid 0) and audio (mid 1) as plain RTP to `host`. */
  async forward(host: string, videoPort: number, audioPort: number, videoPt: number, audioPt: number): Promise<void> {
    const reply = await post(this.handleUrl, {
      janus: 'message',
      body: {
        request: 'rtp_forward',
        room: ROOM,
        publisher_id: this.#publisherId,
        host,
        streams: [
          { mid: '0', port: videoPort, pt: videoPt },
          { mid: '1', port: audioPort, pt: audioPt },
        ],
      },
    });
    const data = reply.plugindata?.data;
    if (data?.videoroom !== 'rtp_forward') throw new Error(`rtp_forward refused: ${JSON.stringify(data)}`);
  }

  /** Asks the publisher for a keyframe: the VideoRoom's forwarders send no request of their own. */
  async requestKeyframe(): Promise<void> {
    await this.#request({ request: 'configure', keyframe: true });
  }

  async close(): Promise<void> {
    this.#polling = false;
    await post(this.sessionUrl, { janus: 'destroy' }).catch(() => undefined);
  }

  /** A plugin request whose answer comes as an event with the same transaction. */
  async #request(body: Record<string, unknown>, jsep?: { type: string; sdp: string }): Promise<JanusReply> {
    const transaction = randomBytes(8).toString('hex');
    const event = new Promise<JanusReply>((resolve) => this.#waiting.set(transaction, resolve));
    const ack = await post(this.handleUrl, { janus: 'message', transaction, body, ...(jsep ? { jsep } : {}) });
    if (ack.janus !== 'ack') throw new Error(`Janus refused ${String(body.request)}: ${JSON.stringify(ack)}`);
    const reply = await Promise.race([
      event,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`Janus did not answer ${String(body.request)}`)), 15_000).unref(),
      ),
    ]);
    const error = reply.plugindata?.data.error;
    if (error) throw new Error(`Janus ${String(body.request)}: ${JSON.stringify(error)}`);
    return reply;
  }

  async #poll(): Promise<void> {
    while (this.#polling) {
      // Janus may close the connection while a poll's body is read (it is being stopped): that
      // ends the poll as no events, never as an unhandled rejection that stops the benchmark.
      const events = await fetch(`${this.sessionUrl}?maxev=10`)
        .then((r) => r.json() as Promise<JanusReply | JanusReply[]>)
        .catch(() => undefined);
      if (!events) {
        if (this.#polling) await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      for (const event of Array.isArray(events) ? events : [events]) {
        const resolve = event.transaction ? this.#waiting.get(event.transaction) : undefined;
        if (resolve && event.janus === 'event') {
          this.#waiting.delete(event.transaction!);
          resolve(event);
        }
      }
    }
  }
}

async function post(url: string, body: Record<string, unknown>): Promise<JanusReply> {
  const reply = (await (
    await fetch(url, { method: 'POST', body: JSON.stringify({ transaction: randomBytes(8).toString('hex'), ...body }) })
  ).json()) as JanusReply;
  if (reply.janus === 'error') throw new Error(`Janus: ${reply.error?.reason ?? JSON.stringify(reply)}`);
  return reply;
}

/** Janus's configuration: the VideoRoom and the HTTP API on the namespace's address, nothing else. */
async function writeConfig(dir: string, address: string): Promise<void> {
  const files: Record<string, string> = {
    'janus.jcfg': `general: {
  configs_folder = "${dir}"
  plugins_folder = "${LIBRARIES}/plugins"
  transports_folder = "${LIBRARIES}/transports"
  events_folder = "${LIBRARIES}/events"
  loggers_folder = "${LIBRARIES}/loggers"
  debug_level = 3
  admin_secret = "${randomBytes(12).toString('hex')}"
}
media: {
  rtp_port_range = "20000-29999"
}
nat: {
  ice_enforce_list = "${address}"
}
plugins: {
  disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
  disable = "libjanus_websockets.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}
events: {
  broadcast = false
  disable = "libjanus_gelfevh.so,libjanus_mqttevh.so,libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_sampleevh.so,libjanus_wsevh.so"
}
loggers: {
  disable = "libjanus_jsonlog.so"
}
`,
    'janus.transport.http.jcfg': `general: {
  json = "compact"
  base_path = "/janus"
  http = true
  ip = "${address}"
  port = ${HTTP_PORT}
  https = false
}
admin: {
  admin_http = false
}
`,
    'janus.plugin.videoroom.jcfg': `general: {
  lock_rtp_forward = false
}
room-${ROOM}: {
  description = "benchmark"
  publishers = 200
  bitrate = 0
  fir_freq = 0
  audiocodec = "opus"
  videocodec = "h264"
  h264_profile = "42e01f"
}
`,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
}
