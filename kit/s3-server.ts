import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

/** The credentials s3rver takes (it checks the key id, not the secret's signature). */
export const S3RVER_KEY_ID = 'S3RVER';

/**
 * An S3-compatible server (s3rver) on loopback, keeping its objects in a folder of its own: stopped
 * and started again on the same port and folder, as a store that goes away and comes back.
 */
export class S3Server {
  #server: S3rver | undefined;
  #port = 0;

  private constructor(
    readonly dir: string,
    readonly bucket: string,
  ) {}

  static async start(bucket = 'recordings'): Promise<S3Server> {
    const server = new S3Server(await mkdtemp(join(tmpdir(), 's3rver-')), bucket);
    await server.resume();
    return server;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Starts it again (on its port and with its objects, once it has had one). */
  async resume(): Promise<void> {
    if (this.#server) return;
    const server = new S3rver({
      address: '127.0.0.1',
      port: this.#port,
      silent: true,
      directory: this.dir,
      configureBuckets: [{ name: this.bucket, configs: [] }],
    });
    const { port } = await server.run();
    this.#port = port;
    this.#server = server;
  }

  /** Stops answering: connections are refused until `resume`. */
  async pause(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.close();
  }

  async stop(): Promise<void> {
    await this.pause();
    await rm(this.dir, { recursive: true, force: true });
  }

  #client(): S3Client {
    return new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_KEY_ID, secretAccessKey: S3RVER_KEY_ID },
    });
  }

  /** Every object's key and size, as the server lists them. */
  async objects(): Promise<{ key: string; size: number }[]> {
    const client = this.#client();
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: this.bucket }));
      return (listed.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size! }));
    } finally {
      client.destroy();
    }
  }

  /** Reads an object back into a file of `dir`; its path. */
  async download(key: string, dir: string): Promise<string> {
    const client = this.#client();
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const path = join(dir, key.replaceAll('/', '_'));
      await writeFile(path, await object.Body!.transformToByteArray());
      return path;
    } finally {
      client.destroy();
    }
  }
}
