import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { ConfigError, envOverrides, loadConfig, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { DEFAULT_CONFIG_FILE } from '../../src/core/paths.js';

t.test('the default config file names every key with its default value', async (t) => {
  const file = parse(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')) as Record<string, unknown>;
  const defaults = parseConfig({});
  t.same(Object.keys(file).sort(), Object.keys(configSchema.shape).sort());
  t.same(file, defaults);
});

t.test('an unknown key stops the gateway naming the key', async (t) => {
  t.throws(() => parseConfig({ http_prot: 80 }), { name: 'ConfigError', message: /http_prot: unknown key/ });
});

t.test('a bad value stops the gateway naming the key', async (t) => {
  t.throws(() => parseConfig({ webrtc_ice_addresses: ['localhost'] }), {
    message: /webrtc_ice_addresses\.0: must be an IP address/,
  });
  t.throws(() => parseConfig({ webrtc_ice_port_min: 5000, webrtc_ice_port_max: 4000 }), {
    message: /webrtc_ice_port_max/,
  });
  t.throws(() => parseConfig({ webrtc_ice_remote_networks: ['10.0.0.0/33'] }), {
    message: /webrtc_ice_remote_networks\.0/,
  });
  t.throws(() => parseConfig({ rtmp_transponder_stream_name_prefix: 'a/b' }), {
    message: /rtmp_transponder_stream_name_prefix/,
  });
  t.throws(() => parseConfig({ limit_viewers_per_stream: 10, limit_viewers_per_client: 11 }), {
    message: /limit_viewers_per_client: must not exceed limit_viewers_per_stream \(10\)/,
  });
  t.doesNotThrow(() => parseConfig({ limit_viewers_per_stream: 10, limit_viewers_per_client: 10 }));
  t.throws(() => parseConfig({ rtmp_out_buffer_start_size: 3000 }), {
    message: /rtmp_out_buffer_start_size: must not exceed rtmp_out_buffer_initial_size/,
  });
  t.throws(() => parseConfig({ rtmp_out_buffer_max_bufferings_allowed: -2 }), {
    message: /rtmp_out_buffer_max_bufferings_allowed/,
  });
});

t.test('the cluster and the push store: bad values name the key', async (t) => {
  const cluster = {
    redis_url: 'redis://127.0.0.1:6379',
    advertise_url: 'http://10.0.0.11:8080',
    secret: 'a cluster secret of 16+',
  };
  t.match(parseConfig({ cluster }).cluster, {
    ...cluster,
    key_prefix: 'gw:',
    heartbeat_ms: 1000,
    node_timeout_ms: 3000,
    lease_ms: 3000,
    drain_timeout_ms: 60000,
  });
  t.equal(parseConfig({}).cluster, null, 'none: a gateway on its own');
  t.throws(() => parseConfig({ cluster: { ...cluster, redis_url: 'http://x' } }), {
    message: /cluster\.redis_url: must be a redis:\/\/ or rediss:\/\/ URL/,
  });
  t.throws(() => parseConfig({ cluster: { ...cluster, advertise_url: 'ftp://x' } }), {
    message: /cluster\.advertise_url/,
  });
  t.throws(() => parseConfig({ cluster: { ...cluster, node_id: 'a|b' } }), { message: /cluster\.node_id/ });
  const { secret: _secret, ...noSecret } = cluster;
  t.throws(() => parseConfig({ cluster: noSecret }), {
    message: /cluster\.secret: give exactly one of secret, secret_env, secret_file/,
  });
  t.throws(() => parseConfig({ cluster: { ...cluster, secret: 'short' } }), {
    message: /cluster\.secret: must be at least 16 characters/,
  });
  t.throws(() => parseConfig({ cluster: { ...cluster, heartbeat_ms: 1000, node_timeout_ms: 1500 } }), {
    message: /cluster\.node_timeout_ms: must be at least twice heartbeat_ms/,
  });
  t.throws(() => parseConfig({ cluster: { ...cluster, heartbeat_ms: 1000, lease_ms: 1500 } }), {
    message: /cluster\.lease_ms: must be at least twice heartbeat_ms/,
  });
  t.throws(() => parseConfig({ cluster: { ...cluster, redis: 'x' } }), { message: /cluster\.redis: unknown key/ });
  t.throws(() => parseConfig({ push_store_secret_env: 'A', push_store_secret_file: '/k' }), {
    message: /push_store_secret_file: give push_store_secret_env or push_store_secret_file, not both/,
  });
  t.throws(() => parseConfig({ push_store_secret_env: '1A' }), { message: /push_store_secret_env/ });
  t.throws(() => parseConfig({ push_store_window_ms: 10 }), { message: /push_store_window_ms/ });
});

t.test('object storage: bad values name the key, inside record_s3 too', async (t) => {
  const store = { bucket: 'recordings', access_key_id: 'AKID', secret_access_key: 'secret' };
  t.ok(parseConfig({ record_s3: store }).record_s3, 'a bucket with its keys');
  t.ok(parseConfig({ record_s3: { bucket: 'recordings' } }).record_s3, 'a bucket with the AWS chain');
  t.throws(() => parseConfig({ record_s3: { ...store, bucket: 'Bad_Bucket' } }), { message: /record_s3\.bucket/ });
  t.throws(() => parseConfig({ record_s3: { ...store, endpoint: 'ftp://x' } }), { message: /record_s3\.endpoint/ });
  t.throws(() => parseConfig({ record_s3: { bucket: 'recordings', access_key_id: 'AKID' } }), {
    message: /record_s3\.access_key_id: give access_key_id with one of secret_access_key/,
  });
  t.throws(() => parseConfig({ record_s3: { ...store, secret_access_key_env: 'S3_SECRET' } }), {
    message: /record_s3\.secret_access_key: give at most one/,
  });
  t.throws(() => parseConfig({ record_s3: { ...store, kms_key_id: 'k' } }), { message: /record_s3\.kms_key_id/ });
  t.throws(() => parseConfig({ thumbnail_upload: true }), { message: /thumbnail_upload: needs record_s3/ });
  const parsed = parseConfig({ record_s3: store, thumbnail_upload: true });
  t.equal(parsed.record_s3?.acl, 'private', 'objects are private unless said');
});

t.test('environment variables override the file, with JSON or comma-separated values', async (t) => {
  t.same(
    envOverrides({
      GATEWAY_HTTP_PORT: '9000',
      GATEWAY_RTMP_TRANSPONDER_FULL_URL: 'true',
      GATEWAY_WEBRTC_ICE_ADDRESSES: '127.0.0.1, 127.0.0.2',
      GATEWAY_RTMP_TRANSPONDER_STREAM_NAME_PREFIX: '',
      GATEWAY_LOG_LEVEL: 'debug',
      UNRELATED: 'x',
    }),
    {
      http_port: 9000,
      rtmp_transponder_full_url: true,
      webrtc_ice_addresses: ['127.0.0.1', '127.0.0.2'],
      rtmp_transponder_stream_name_prefix: '',
      log_level: 'debug',
    },
  );
  const config = loadConfig(DEFAULT_CONFIG_FILE, { GATEWAY_HTTP_PORT: '9001' });
  t.equal(config.http_port, 9001);
});

t.test('a missing or malformed file is a ConfigError', async (t) => {
  t.throws(() => loadConfig('/nonexistent/gateway.yml', {}), ConfigError);
  t.throws(() => loadConfig(DEFAULT_CONFIG_FILE, { GATEWAY_HTTP_PORT: 'eighty' }), { message: /http_port/ });
});
