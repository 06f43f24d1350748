import t from 'tap';
import { FlvReader, flvFileHeader, flvTag, FlvTagType } from '../../src/media/flv.js';
import { parseDestination } from '../../src/links/destination.js';
import { srtArgs, srtFailure, srtSecrets } from '../../src/links/srt-link.js';

const destination = parseDestination(
  'srt://ingest.example.com:9000?streamid=KEY-4410&passphrase=secret-passphrase&latency=250',
  'cam',
  { prefix: 'rtmp_', fullUrl: false },
);

t.test(
  'ffmpeg copies FLV from its input to MPEG-TS over SRT, calling the checked address, latency in microseconds',
  async (t) => {
    const args = srtArgs(destination, '192.0.2.7', 4000);
    t.same(args.slice(args.indexOf('-i') - 2, args.indexOf('-i') + 2), ['-f', 'flv', '-i', 'pipe:0']);
    t.ok(args.includes('copy') && args.includes('mpegts'));
    const option = (name: string): string | undefined => args[args.indexOf(name) + 1];
    t.equal(option('-fpre'), '/proc/self/fd/3', 'the secret options come from descriptor 3');
    t.same(
      srtSecrets(destination),
      { srt_streamid: 'KEY-4410', passphrase: 'secret-passphrase' },
      'what descriptor 3 holds',
    );
    t.notMatch(args.join(' '), /KEY-4410|secret-passphrase/, 'no secret among the arguments (/proc/<pid>/cmdline)');
    t.equal(option('-latency'), '250000');
    t.equal(option('-connect_timeout'), '4000');
    t.equal(args.at(-1), 'srt://192.0.2.7:9000?mode=caller', 'the address the policy checked, no secret in the URL');
    t.equal(srtArgs(destination, '2001:db8::1', 4000).at(-1), 'srt://[2001:db8::1]:9000?mode=caller');
    const open = parseDestination('srt://ingest.example.com:9000?latency=250', 'cam', {
      prefix: 'rtmp_',
      fullUrl: false,
    });
    t.equal(srtSecrets(open), undefined, 'no secret: no descriptor 3');
    t.notOk(srtArgs(open, '192.0.2.7', 4000).includes('-fpre'));
  },
);

t.test('why ffmpeg ended: a refused passphrase, a refusal, no answer, anything else scrubbed', async (t) => {
  t.same(
    srtFailure(
      [
        'SRT.cn: processAsyncConnectRequest: REJECT reported from HS processing: Incorrect passphrase - not processing further',
      ],
      destination,
    ),
    {
      reason: 'the SRT destination refused the passphrase',
      kind: 'rejected',
    },
  );
  t.match(
    srtFailure(
      [
        'SRT.cn: processAsyncConnectRequest: REJECT reported from HS processing: Peer rejected connection - not processing further',
      ],
      destination,
    ),
    {
      reason: /refused the connection: Peer rejected connection$/,
      kind: 'rejected',
    },
  );
  t.match(
    srtFailure(['[srt @ 0x1] Connection to srt://192.0.2.7:9000?mode=caller failed: Input/output error'], destination),
    { reason: /did not answer/, kind: 'unreachable' },
  );
  const other = srtFailure(['av_interleaved_write_frame(): Broken pipe about KEY-4410'], destination);
  t.match(other, { kind: 'unreachable', reason: /Broken pipe/ });
  t.notMatch(other.reason, /KEY-4410/, 'scrubbed');
});

t.test('FLV written as a byte stream reads back tag by tag, timestamps past 24 bits included', async (t) => {
  const bytes = Buffer.concat([
    flvFileHeader(),
    flvTag(FlvTagType.VIDEO, 40, Buffer.from([1, 2, 3])),
    flvTag(FlvTagType.AUDIO, 0x1234567, Buffer.from([9])),
  ]);
  const reader = new FlvReader();
  const tags = [...reader.push(bytes.subarray(0, 20)), ...reader.push(bytes.subarray(20))];
  t.same(
    tags.map((tag) => [tag.type, tag.timestamp, [...tag.body]]),
    [
      [FlvTagType.VIDEO, 40, [1, 2, 3]],
      [FlvTagType.AUDIO, 0x1234567, [9]],
    ],
  );
});
