import { z } from 'zod';

/** S3's storage classes, as `StorageClass` takes them; S3-compatible servers take a few of these or none. */
const STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'GLACIER_IR',
  'DEEP_ARCHIVE',
  'REDUCED_REDUNDANCY',
] as const;

/** Canned ACLs an object may be given. */
const CANNED_ACLS = ['private', 'public-read', 'authenticated-read', 'bucket-owner-read', 'bucket-owner-full-control'];

/**
 * Where recordings are uploaded (`recordings/bucket.ts`, `recordings/uploads.ts`): an S3 bucket or
 * any S3-compatible store. Credentials: the secret key inline, by an environment variable or in a
 * file; none given, the AWS SDK's own chain (AWS_* environment, shared files, the instance's role).
 */
export const storageFields = {
  record_s3: z
    .strictObject({
      bucket: z
        .string()
        .regex(
          /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
          'must be a bucket name: 3-63 lowercase letters, digits, "." or "-"',
        ),
      endpoint: z
        .string()
        .regex(/^https?:\/\/[^\s/]+\/?$/, 'must be an http:// or https:// URL with no path')
        .optional(),
      region: z
        .string()
        .regex(/^[\w-]{1,64}$/, 'must be a region name such as us-east-1')
        .default('us-east-1'),
      prefix: z
        .string()
        .max(512)
        .regex(/^(?:[\w.-]+\/)*$/, 'must be folder names each followed by "/" (letters, digits, "_", ".", "-")')
        .default(''),
      path_style: z.boolean().default(false),
      access_key_id: z
        .string()
        .regex(/^\S{1,128}$/, 'must be an access key id')
        .optional(),
      secret_access_key: z.string().min(1).max(256).optional(),
      secret_access_key_env: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
        .optional(),
      secret_access_key_file: z.string().min(1).optional(),
      server_side_encryption: z.enum(['AES256', 'aws:kms']).optional(),
      kms_key_id: z.string().min(1).max(2048).optional(),
      storage_class: z.enum(STORAGE_CLASSES).optional(),
      acl: z.enum(CANNED_ACLS).default('private'),
      keep_local: z.boolean().default(false),
      upload_by_default: z.boolean().default(true),
    })
    .superRefine((s, ctx) => {
      const secrets = [s.secret_access_key, s.secret_access_key_env, s.secret_access_key_file];
      const given = secrets.filter((v) => v !== undefined).length;
      if (given > 1)
        ctx.addIssue({
          code: 'custom',
          path: ['secret_access_key'],
          message: 'give at most one of secret_access_key, secret_access_key_env, secret_access_key_file',
        });
      if ((s.access_key_id === undefined) !== (given === 0))
        ctx.addIssue({
          code: 'custom',
          path: ['access_key_id'],
          message: 'give access_key_id with one of secret_access_key(_env|_file), or neither (the AWS chain)',
        });
      if (s.kms_key_id !== undefined && s.server_side_encryption !== 'aws:kms')
        ctx.addIssue({ code: 'custom', path: ['kms_key_id'], message: 'needs server_side_encryption: aws:kms' });
    })
    .nullable()
    .default(null)
    .describe(
      'upload recordings to S3 or an S3-compatible store: `{bucket, endpoint, region, prefix, path_style, ' +
        'access_key_id, secret_access_key | secret_access_key_env | secret_access_key_file, ' +
        'server_side_encryption, kms_key_id, storage_class, acl, keep_local, upload_by_default}` ' +
        '(see [Object storage](recording.md#object-storage); null: recordings stay on disk)',
    ),
};
