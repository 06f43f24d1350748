import type { ObjectCannedACL, S3Client, ServerSideEncryption, StorageClass } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import type { GatewayConfig } from '../config/schema.js';
import { monotonicMs } from '../core/clock.js';
import { readSecret } from '../security/secrets.js';

/** S3 takes at most 10,000 parts in a multipart upload; a file is cut into fewer, leaving room. */
const MOST_PARTS = 9000;
/** The smallest part S3 takes but the last is 5 MiB; 8 MiB parts keep the requests few. */
const LEAST_PART_BYTES = 8 * 1024 * 1024;
/** Parts of one file sent at once: memory is this many parts per upload. */
const PARTS_AT_ONCE = 2;
/** A recording file is read in pieces this large: a part is a few reads, not hundreds. */
const READ_BYTES = 1024 * 1024;
/** How long a connection may take to open, and a request to go without an answer (ms). */
const CONNECT_TIMEOUT_MS = 5000;
const REQUEST_TIMEOUT_MS = 60_000;

/** How long a bucket found ready, or not, is taken as such by `ready` (ms). */
const READY_FOR_MS = 30_000;
const NOT_READY_FOR_MS = 5000;

type StoreSettings = NonNullable<GatewayConfig['record_s3']>;

/** The SDK's modules, loaded at the first request: a gateway that records to disk only never loads them (~27 MB). */
interface Sdk {
  s3: typeof import('@aws-sdk/client-s3');
  storage: typeof import('@aws-sdk/lib-storage');
  client: S3Client;
}

/** The HTTP status of an error the store answered with (the SDK's service exceptions carry it), if any. */
const statusOf = (error: unknown): number | undefined =>
  (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;

/** Why a request to the bucket failed: said plainly, with the setting to look at, and whether to try again. */
export class BucketError extends Error {
  constructor(
    message: string,
    /** The configuration key to look at (`record_s3.bucket`, …). */
    readonly field: string,
    /** Worth trying again later: a network error, the store's 5xx, a timeout. Refusals are tried again too, rarely. */
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'BucketError';
  }
}

/** The size of the parts a file of `size` bytes is sent in: never more than `MOST_PARTS` of them. */
export function partSizeFor(size: number): number {
  const mib = 1024 * 1024;
  return Math.max(LEAST_PART_BYTES, Math.ceil(size / MOST_PARTS / mib) * mib);
}

/**
 * The bucket recordings are uploaded to, through the AWS SDK's S3 client: a file sent with
 * `lib-storage`'s multipart `Upload`, confirmed by its size (`HeadObject`), an upload given up
 * aborted. Checksums only where the operation requires one, so S3-compatible stores that do not
 * take the newest work. No message it makes holds the credentials.
 */
export class Bucket {
  #sdk: Promise<Sdk> | undefined;
  readonly #credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** What no message may hold: the credentials as given. */
  readonly #secrets: string[];
  #ready: Promise<void> | undefined;
  #readyUntil = 0;

  constructor(
    readonly settings: StoreSettings,
    credentials?: { accessKeyId: string; secretAccessKey: string },
  ) {
    this.#credentials = credentials;
    this.#secrets = credentials ? [credentials.secretAccessKey, credentials.accessKeyId] : [];
  }

  #load(): Promise<Sdk> {
    this.#sdk ??= (async () => {
      const [s3, storage] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
      const { settings } = this;
      const client = new s3.S3Client({
        region: settings.region,
        ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
        forcePathStyle: settings.path_style,
        ...(this.#credentials ? { credentials: this.#credentials } : {}),
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
      });
      return { s3, storage, client };
    })();
    return this.#sdk;
  }

  /** The bucket `record_s3` names, with its credentials read; undefined when recordings stay on disk. */
  static fromConfig(config: GatewayConfig): Bucket | undefined {
    const store = config.record_s3;
    if (!store) return undefined;
    if (store.access_key_id === undefined) return new Bucket(store);
    const secretAccessKey = readSecret(
      {
        secret: store.secret_access_key,
        secret_env: store.secret_access_key_env,
        secret_file: store.secret_access_key_file,
      },
      'record_s3.secret_access_key',
      process.env,
      1,
    );
    return new Bucket(store, { accessKeyId: store.access_key_id, secretAccessKey });
  }

  get name(): string {
    return this.settings.bucket;
  }

  /** The object a recording file goes to: the prefix, then its name. */
  key(fileName: string): string {
    return `${this.settings.prefix}${fileName}`;
  }

  /**
   * `check`, its answer kept a while: a recording's startup asks it (a bucket that works is asked
   * again after `READY_FOR_MS`, one that failed after `NOT_READY_FOR_MS`).
   */
  ready(): Promise<void> {
    const now = monotonicMs();
    if (!this.#ready || now >= this.#readyUntil) {
      this.#readyUntil = now + NOT_READY_FOR_MS;
      this.#ready = this.check().then(() => {
        this.#readyUntil = monotonicMs() + READY_FOR_MS;
      });
      this.#ready.catch(() => {});
    }
    return this.#ready;
  }

  /** Whether the bucket is there and the credentials may use it; a `BucketError` naming the setting if not. */
  async check(): Promise<void> {
    try {
      const { s3, client } = await this.#load();
      await client.send(new s3.HeadBucketCommand({ Bucket: this.name }));
    } catch (error) {
      throw this.#unready(error);
    }
  }

  /**
   * Sends the file at `path` (of `size` bytes) to `key`; `onUploadId` hears the multipart upload's
   * id once the store gave one, so that a gateway killed meanwhile can abort it at its next start.
   * `signal` aborts it (and the multipart upload with it). Resolves once the store has it all.
   */
  async upload(path: string, key: string, size: number, onUploadId: (id: string) => void, signal: AbortSignal) {
    const { storage, client } = await this.#load();
    signal.throwIfAborted();
    const upload = new storage.Upload({
      client,
      queueSize: PARTS_AT_ONCE,
      partSize: partSizeFor(size),
      params: {
        Bucket: this.name,
        Key: key,
        Body: createReadStream(path, { highWaterMark: READ_BYTES }),
        ContentLength: size,
        ContentType: key.endsWith('.vtt') ? 'text/vtt' : 'video/mp4',
        ...this.#objectSettings(),
      },
    });
    let told = false;
    upload.on('httpUploadProgress', () => {
      if (told || upload.uploadId === undefined) return;
      told = true;
      onUploadId(upload.uploadId);
    });
    const abort = (): void => void upload.abort().catch(() => {});
    signal.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
    } catch (error) {
      throw this.#unready(error);
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  /** The size of the object at `key`; undefined when there is none. */
  async sizeOf(key: string): Promise<number | undefined> {
    try {
      const { s3, client } = await this.#load();
      return (await client.send(new s3.HeadObjectCommand({ Bucket: this.name, Key: key }))).ContentLength;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.explain(error);
    }
  }

  /** Aborts a multipart upload a gateway stopped short left: its parts are freed. */
  async abort(key: string, uploadId: string): Promise<void> {
    try {
      const { s3, client } = await this.#load();
      await client.send(new s3.AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }));
    } catch (error) {
      // Gone already (completed, aborted, or expired by the bucket's lifecycle rule).
      if (statusOf(error) === 404) return;
      throw this.explain(error);
    }
  }

  /** What every object is given: its ACL, its encryption and its storage class, as configured. */
  #objectSettings(): {
    ACL: ObjectCannedACL;
    ServerSideEncryption?: ServerSideEncryption;
    SSEKMSKeyId?: string;
    StorageClass?: StorageClass;
  } {
    const { server_side_encryption, kms_key_id, storage_class, acl } = this.settings;
    return {
      ACL: acl as ObjectCannedACL,
      ...(server_side_encryption ? { ServerSideEncryption: server_side_encryption as ServerSideEncryption } : {}),
      ...(kms_key_id ? { SSEKMSKeyId: kms_key_id } : {}),
      ...(storage_class ? { StorageClass: storage_class as StorageClass } : {}),
    };
  }

  /** Puts a small object (a thumbnail) at `key` in one request, replacing what was there. */
  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    try {
      const { s3, client } = await this.#load();
      await client.send(
        new s3.PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: body,
          ContentType: contentType,
          ...this.#objectSettings(),
        }),
      );
    } catch (error) {
      throw this.explain(error);
    }
  }

  async remove(key: string): Promise<void> {
    try {
      const { s3, client } = await this.#load();
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.name, Key: key }));
    } catch (error) {
      throw this.explain(error);
    }
  }

  close(): void {
    this.#sdk?.then(
      ({ client }) => client.destroy(),
      () => {}, // never loaded: nothing to close
    );
  }

  /** A failure of an upload or a check: until the next check, `ready` says it, and a recording asked for meanwhile is refused. */
  #unready(error: unknown): BucketError {
    const explained = this.explain(error);
    this.#ready = Promise.reject(explained);
    this.#ready.catch(() => {});
    this.#readyUntil = monotonicMs() + NOT_READY_FOR_MS;
    return explained;
  }

  /** A failure of the store, the network or the credentials, said plainly with the setting to look at. */
  explain(error: unknown): BucketError {
    if (error instanceof BucketError) return error;
    const status = statusOf(error);
    const code = error instanceof Error ? ((error as NodeJS.ErrnoException).code ?? error.name) : 'Error';
    const said = this.#redact(error instanceof Error ? error.message : String(error));
    if (status === 401 || status === 403)
      return new BucketError(
        `the store refused the credentials (${status} ${code}): check record_s3's keys and the bucket's policy`,
        'record_s3.access_key_id',
        true,
      );
    if (status === 301 || code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed')
      return new BucketError(
        `the bucket ${this.name} is in another region than ${this.settings.region} (${status ?? ''} ${code})`,
        'record_s3.region',
        false,
      );
    if (status === 404 && (code === 'NoSuchBucket' || code === 'NotFound'))
      return new BucketError(`there is no bucket ${this.name} at the store`, 'record_s3.bucket', false);
    if (status !== undefined && status >= 500)
      return new BucketError(`the store failed (${status} ${code}): ${said}`, 'record_s3.endpoint', true);
    if (status === undefined && /^(E[A-Z]+|TimeoutError|AbortError|RequestTimeout)/.test(code))
      return new BucketError(`the store cannot be reached (${code}): ${said}`, 'record_s3.endpoint', true);
    return new BucketError(
      `the store answered as S3 would not (${status ?? 'no status'} ${code}): ${said}`,
      'record_s3.endpoint',
      true,
    );
  }

  #redact(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.replaceAll(secret, '***');
    return out.slice(0, 300);
  }
}
