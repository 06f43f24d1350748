import t from 'tap';
import { parseDestination, scrubDestination } from '../../src/links/destination.js';

const prefix = { prefix: 'rtmp_', fullUrl: false };
const full = { prefix: 'rtmp_', fullUrl: true };

t.test('prefix mode: the stream goes out as prefix + published name under the URL path', async (t) => {
  const d = parseDestination('rtmp://example.com/live', 'test', prefix);
  t.equal(d.app, 'live');
  t.equal(d.streamName, 'rtmp_test');
  t.equal(d.port, 1935);
  t.equal(d.url, 'rtmp://example.com:1935/live/rtmp_test');
  t.equal(d.redactedUrl, d.url, 'nothing secret to hide');
});

t.test('an empty prefix publishes the name as it is', async (t) => {
  t.equal(parseDestination('rtmp://h/live/', 'cam1', { prefix: '', fullUrl: false }).streamName, 'cam1');
});

t.test('full-URL mode: the last path segment is the stream name and is redacted everywhere', async (t) => {
  const d = parseDestination('rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop', 'test', full);
  t.equal(d.app, 'live2');
  t.equal(d.streamName, 'abcd-efgh-ijkl-mnop');
  t.equal(d.redactedStreamName, '***');
  t.equal(d.redactedUrl, 'rtmp://a.rtmp.youtube.com:1935/live2/***');
  t.equal(d.redactedRequestedUrl, 'rtmp://a.rtmp.youtube.com:1935/live2/***');
  const line = `Output #0, flv, to '${d.url}': error with abcd-efgh-ijkl-mnop`;
  const scrubbed = scrubDestination(line, d);
  t.notMatch(scrubbed, /abcd-efgh/);
  t.match(scrubbed, /rtmp:\/\/a\.rtmp\.youtube\.com:1935\/live2\/\*\*\*/);
});

t.test('application instance paths are kept', async (t) => {
  const d = parseDestination('rtmp://h:1936/app/instance/stream', 's', full);
  t.equal(d.app, 'app/instance');
  t.equal(d.streamName, 'stream');
  t.equal(d.port, 1936);
});

t.test('prefix mode: what follows the application name (a pasted stream key) is a secret', async (t) => {
  const d = parseDestination('rtmp://live.example.com/app/KEY-abc-123/more', 'cam', prefix);
  t.equal(d.app, 'app/KEY-abc-123/more', 'sent to the server as the application instance');
  t.equal(d.url, 'rtmp://live.example.com:1935/app/KEY-abc-123/more/rtmp_cam');
  t.equal(d.redactedUrl, 'rtmp://live.example.com:1935/app/***/***/rtmp_cam');
  t.equal(d.redactedRequestedUrl, 'rtmp://live.example.com:1935/app/***/***');
  t.equal(scrubDestination('refused KEY-abc-123 (more)', d), 'refused *** (***)');
  t.equal(
    parseDestination('rtmp://h/live', 'cam', prefix).redactedUrl,
    'rtmp://h:1935/live/rtmp_cam',
    'an application alone is shown',
  );
});

t.test('rtmps defaults to port 443', async (t) => {
  t.equal(parseDestination('rtmps://live-api-s.facebook.com/rtmp/KEY123', 's', full).port, 443);
});

t.test('passwords and query values are secrets', async (t) => {
  const d = parseDestination('rtmp://user:s3cret@h/app?token=tok123&x=1', 's', prefix);
  t.equal(d.redactedUrl, 'rtmp://user:***@h:1935/app/rtmp_s?token=***&x=***');
  t.notMatch(scrubDestination(`failed: s3cret tok123 ${d.url}`, d), /s3cret|tok123/);
});

t.test('credentials are decoded for RTMP authentication and kept secret', async (t) => {
  const d = parseDestination('rtmp://us%20er:p%40ss%3Aword@h/app/KEY99', 's', full);
  t.same(d.credentials, { user: 'us er', password: 'p@ss:word' });
  t.equal(d.redactedUrl, 'rtmp://us%20er:***@h:1935/app/***');
  t.equal(scrubDestination('said p@ss:word and p%40ss%3Aword', d), 'said *** and ***');
  t.equal(parseDestination('rtmp://h/app', 's', prefix).credentials, undefined);
  t.throws(
    () => parseDestination('rtmp://user@h/app', 's', prefix),
    /rtmpUrl: credentials need both a user name and a password/,
  );
  t.throws(() => parseDestination('rtmp://:pw@h/app', 's', prefix), /rtmpUrl: credentials need both/);
});

t.test('bad URLs are refused naming the field', async (t) => {
  const bad: [string, RegExp][] = [
    ['http://h/app', /must start with rtmp/],
    ['-version', /must start with rtmp/],
    ['file:///etc/passwd', /must start with rtmp/],
    ['rtmp://', /not a valid URL|no host/],
    ['rtmp://h', /needs an application path/],
    ['rtmp://h/app/ x', /spaces/],
    ['rtmp://h/app#frag', /fragment/],
    ['rtmp://h/-app', /must not start with "-"/],
    ['rtmp://h/' + 'a'.repeat(3000), /at most 2048/],
    ['rtmp://127.0.0.1:0/live', /port outside 1-65535/],
    ['rtmp://h:65536/live', /port outside 1-65535|not a valid URL/],
    ['rtmp://h:99999999/live', /port outside 1-65535|not a valid URL/],
  ];
  for (const [url, message] of bad) {
    t.throws(() => parseDestination(url, 's', prefix), { field: 'rtmpUrl', message }, url);
  }
  t.throws(() => parseDestination('rtmp://h/app', 's', full), { message: /full-URL mode/ });
});

t.test(
  'query secrets are scrubbed in every spelling a destination can echo back; bare query words are secrets',
  async (t) => {
    const d = parseDestination('rtmp://h/app?token=CANARY+TOK%2F1&BARETOKEN', 's', { prefix: 'rtmp_', fullUrl: false });
    t.equal(d.redactedUrl, 'rtmp://h:1935/app/rtmp_s?token=***&***');
    for (const echoed of ['CANARY+TOK%2F1', 'CANARY TOK/1', 'CANARY+TOK/1', 'CANARY%20TOK%2F1', 'BARETOKEN']) {
      t.notMatch(scrubDestination(`refused: app=live?token=${echoed}`, d), /CANARY|TOK|BARETOKEN/, echoed);
    }
    const key = parseDestination('rtmp://h/live2/KEY%2Bwith%20space', 's', { prefix: '', fullUrl: true });
    for (const echoed of ['KEY%2Bwith%20space', 'KEY+with space', 'KEY%2Bwith+space'])
      t.notMatch(scrubDestination(echoed, key), /KEY|with/, echoed);
  },
);

t.test('SRT: host, port and options read; the stream id and passphrase are secrets', async (t) => {
  const d = parseDestination(
    'srt://ingest.example.com:9000?streamid=%23!::r=live/KEY77,m=publish&passphrase=pass+word%2Fsecret1&latency=250&pbkeylen=32',
    'cam',
    prefix,
  );
  t.match(d, {
    protocol: 'srt',
    host: 'ingest.example.com',
    port: 9000,
    streamName: '#!::r=live/KEY77,m=publish',
    redactedStreamName: '***',
  });
  t.same(d.srt, {
    streamId: '#!::r=live/KEY77,m=publish',
    passphrase: 'pass word/secret1',
    latencyMs: 250,
    keyLength: 32,
  });
  t.equal(d.redactedUrl, 'srt://ingest.example.com:9000?streamid=***&passphrase=***&latency=250&pbkeylen=32');
  const echoed = `Connection to ${d.url} failed: streamid #!::r=live/KEY77,m=publish, passphrase pass+word%2Fsecret1`;
  const scrubbed = scrubDestination(echoed, d);
  for (const secret of ['KEY77', 'secret1']) t.notOk(scrubbed.includes(secret), `no ${secret} in ${scrubbed}`);
});

t.test('SRT: what the gateway cannot do is refused, naming the field', async (t) => {
  for (const [url, why] of [
    ['srt://h', /needs a port/],
    ['srt://h:0', /port/],
    ['srt://user:pw@h:9000', /no user or password/],
    ['srt://h:9000/path', /takes no path/],
    ['srt://h:9000?passphrase=123456789', /10-79 characters/],
    ['srt://h:9000?latency=-1', /milliseconds/],
    ['srt://h:9000?latency=abc', /milliseconds/],
    ['srt://h:9000?pbkeylen=20&passphrase=0123456789', /16, 24 or 32/],
    ['srt://h:9000?pbkeylen=16', /needs a passphrase/],
    ['srt://h:9000?mode=rendezvous', /caller/],
    ['srt://h:9000?streamid=a&streamid=b', /twice/],
    ['srt://h:9000?maxbw=1', /does not set: maxbw/],
  ] as const) {
    t.throws(() => parseDestination(url, 'cam', prefix), { field: 'rtmpUrl', message: why }, url);
  }
  t.throws(() => parseDestination('udp://h:9000', 'cam', prefix), {
    message: /rtmp:\/\/, rtmps:\/\/, srt:\/\/ or be record:\/\//,
  });
});

t.test(
  "YouTube's backup ingest, its key after the query: the key is the stream, the query the application's",
  async (t) => {
    const d = parseDestination('rtmp://b.rtmp.youtube.com/live2?backup=1/abcd-efgh-ijkl-mnop', 'test', full);
    t.equal(d.app, 'live2');
    t.equal(d.streamName, 'abcd-efgh-ijkl-mnop');
    t.equal(d.query, 'backup=1');
    t.equal(d.queryInAppOnly, true, 'published as OBS does: the key alone');
    t.equal(d.redactedRequestedUrl, 'rtmp://b.rtmp.youtube.com:1935/live2/***?backup=***');
    t.equal(
      scrubDestination(`failed: ${d.url} (abcd-efgh-ijkl-mnop)`, d),
      'failed: rtmp://b.rtmp.youtube.com:1935/live2/***?backup=*** (***)',
      'the key is a secret',
    );
    const primary = parseDestination('rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop', 'test', full);
    t.equal(primary.queryInAppOnly, undefined, 'the primary form is a URL like any');
    // Elsewhere a slash in a query is the query's own.
    const other = parseDestination('rtmp://example.com/live/key?token=a/b', 'test', full);
    t.equal(other.streamName, 'key');
    t.equal(other.query, 'token=a/b');
  },
);
