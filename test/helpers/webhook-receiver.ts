import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signingKey, verify } from '../../src/webhooks/signature.js';

export interface ReceivedHook {
  id: string;
  type: string;
  body: { id: string; type: string; time: string; node?: string; data: Record<string, unknown> };
  /** The signature and timestamp check out with the secret. */
  signed: boolean;
  at: number;
}

/**
 * A webhook endpoint on loopback: it records each request (checking its signature with `secret`)
 * and answers what `answer` says: a status, or 'hang' to never answer.
 */
export class WebhookReceiver {
  readonly received: ReceivedHook[] = [];
  answer: (hook: ReceivedHook) => number | 'hang' = () => 200;
  readonly #hanging = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    private readonly secret: string,
  ) {}

  static async start(secret: string): Promise<WebhookReceiver> {
    const server = createServer();
    const receiver = new WebhookReceiver(server, secret);
    server.on('request', (request, response) => void receiver.#onRequest(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks?token=receiver-token-123`;
  }

  /** The events delivered (answered 2xx), once each, in the order they came. */
  get delivered(): ReceivedHook[] {
    const seen = new Set<string>();
    return this.received.filter((h) => h.signed && this.answerWas(h) && !seen.has(h.id) && seen.add(h.id));
  }

  readonly #answers = new WeakMap<ReceivedHook, number | 'hang'>();
  private answerWas(hook: ReceivedHook): boolean {
    const status = this.#answers.get(hook);
    return typeof status === 'number' && status >= 200 && status < 300;
  }

  async #onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const header = (name: string): string => String(request.headers[name] ?? '');
    const signed = verify(
      signingKey(this.secret),
      { id: header('webhook-id'), timestamp: header('webhook-timestamp'), signature: header('webhook-signature') },
      text,
    );
    const body = JSON.parse(text) as ReceivedHook['body'];
    const hook: ReceivedHook = { id: header('webhook-id'), type: body.type, body, signed, at: Date.now() };
    this.received.push(hook);
    const status = this.answer(hook);
    this.#answers.set(hook, status);
    if (status === 'hang') {
      this.#hanging.add(response);
      return;
    }
    response.writeHead(status).end();
  }

  async stop(): Promise<void> {
    for (const response of this.#hanging) response.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
