import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger, resolveLogFormat } from '../../src/core/log.js';

t.test('auto: readable lines at a terminal, JSON otherwise', async (t) => {
  t.equal(resolveLogFormat('auto', { isTTY: true }), 'pretty');
  t.equal(resolveLogFormat('auto', { isTTY: false }), 'json');
  t.equal(resolveLogFormat('auto', {}), 'json');
  t.equal(resolveLogFormat('json', { isTTY: true }), 'json');
  t.equal(resolveLogFormat('pretty', {}), 'pretty');
});

t.test('pretty: one line per event with its fields, secrets redacted as in JSON', async (t) => {
  const chunks: string[] = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => (chunks.push(String(chunk)), done()) });
  const log = createLogger('info', sink as never, 'pretty').child({
    mediaSessionId: 'm-1',
    destination: 'rtmp://host/live/***',
  });
  log.info({ attempt: 2 }, 'output restored');
  log.warn({ rtmpUrl: 'rtmp://host/live/secret-key-123' }, 'a raw URL by mistake');
  const lines = chunks.join('').trimEnd().split('\n');
  t.equal(lines.length, 2, 'one line each');
  t.match(lines[0], /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: output restored \{.*"mediaSessionId":"m-1".*"attempt":2/);
  t.match(lines[1], /WARN: a raw URL by mistake .*"rtmpUrl":"\[redacted\]"/);
  t.notMatch(chunks.join(''), /secret-key-123|\[3\dm/, 'no secret, no colour codes in a file');
});
