import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { NodeMediaServer } from '../../kit/node-media-server.js';
import { waitFor } from '../../kit/processes.js';
import { SyntheticPublisher } from '../../kit/synthetic-publisher.js';
import { FlvReader, FlvTagType, isSequenceHeader, isVideoSequenceHeader } from '../../src/media/flv.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { testFixture } from '../helpers/synthetic.js';

// A push with `backupUrl`: two RTMP connections, each received by a node-media-server of its own,
// fed the same frames at the same timestamps (YouTube's primary and backup ingest want exactly
// that), each with its own state and reconnects; either one's receiver killed and started again
// while the other goes on untouched; terminating the primary ends both.

let gw: TestGateway;
let publisher: SyntheticPublisher;
let primaryServer: NodeMediaServer;
let backupServer: NodeMediaServer;
t.before(async () => {
  [primaryServer, backupServer] = await Promise.all([NodeMediaServer.start(), NodeMediaServer.start()]);
  gw = await startGateway();
  publisher = await SyntheticPublisher.publish(testFixture(), gw.baseUrl, 'twin');
  await waitFor('a keyframe', () => gw.publishers.get('twin')?.keyframe !== undefined, 15_000);
});
t.teardown(async () => {
  await publisher?.stop();
  await gw?.close();
  await Promise.all([primaryServer?.stop(), backupServer?.stop()]);
});

/** Every audio and video frame of the files (their sequence headers go at each connection's start), as "kind timestamp digest". */
async function tagList(files: string[]): Promise<string[]> {
  const list: string[] = [];
  for (const file of files) {
    for (const tag of new FlvReader().push(await readFile(file))) {
      if (tag.type !== FlvTagType.AUDIO && tag.type !== FlvTagType.VIDEO) continue;
      if (tag.type === FlvTagType.VIDEO ? isVideoSequenceHeader(tag.body) : isSequenceHeader(tag.body)) continue;
      const digest = createHash('sha1').update(tag.body).digest('hex').slice(0, 16);
      list.push(`${tag.type === FlvTagType.VIDEO ? 'video' : 'audio'} ${tag.timestamp} ${digest}`);
    }
  }
  return list;
}

t.test('bad backupUrl: a 400 naming it, and nothing started', async (t) => {
  const base = { streamName: 'twin', rtmpUrl: primaryServer.url('bad'), rtmpTransponderFullUrl: true };
  for (const [backupUrl, message] of [
    [primaryServer.url('bad'), /is the same as rtmpUrl/],
    ['srt://127.0.0.1:9000?streamid=x', /RTMP or RTMPS/],
    ['http://example.com/live', /must start with rtmp/],
    ['rtmp://127.0.0.1/', /needs an application/],
  ] as const) {
    const res = await gw.post('/rest-api/push/startup', { ...base, backupUrl });
    t.equal(res.status, 400, backupUrl);
    t.equal(res.body.field, 'backupUrl', backupUrl);
    t.match(res.body.message, message, backupUrl);
  }
  t.equal((await gw.post('/rest-api/push/find_all', {})).status, 404, 'no push was started');
});

t.test('the same frames at the same times to both; the backup lost and back, the primary untouched', async (t) => {
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'twin',
    rtmpUrl: primaryServer.url('live1'),
    backupUrl: backupServer.url('live1'),
    rtmpTransponderFullUrl: true,
  });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const primaryId: string = res.body.mediaSessionId;
  const backupId: string = res.body.backupMediaSessionId;
  t.type(backupId, 'string', 'the startup names its backup');
  const listed = (await gw.post('/rest-api/push/find', { streamName: 'twin' })).body as any[];
  t.match(
    listed.find((p) => p.mediaSessionId === backupId),
    { backupOf: primaryId, state: 'running', rtmpUrl: /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/\*\*\*$/ },
    'the backup is a push of its own in find, its key hidden',
  );
  const primary = gw.pushService.get(primaryId);
  const backup = gw.pushService.get(backupId);
  await waitFor('frames on both', () => primary.writer.frames >= 60 && backup.writer.frames >= 60, 20_000);

  await backupServer.kill();
  await waitFor('the backup to see its loss', () => backup.state !== 'running', 10_000);
  const primaryFrames = primary.writer.frames;
  await waitFor('the primary to go on meanwhile', () => primary.writer.frames >= primaryFrames + 30, 10_000);
  t.equal(primary.state, 'running', 'the primary runs on');
  await backupServer.restart();
  await waitFor('the backup to reconnect', () => backup.counters.reconnects >= 1 && backup.state === 'running', 30_000);
  const backupFrames = backup.writer.frames;
  await waitFor('frames after the reconnect', () => backup.writer.frames >= backupFrames + 60, 20_000);
  t.match(primary, { counters: { drops: 0, reconnects: 0 } }, 'the primary never dropped');
  t.equal((await gw.post('/rest-api/push/mute', { mediaSessionId: primaryId })).status, 200);
  t.same([primary.audio.muted, backup.audio.muted], [true, true], "the primary's mute takes its backup too");
  t.equal((await gw.post('/rest-api/push/unmute', { mediaSessionId: primaryId })).status, 200);
  t.same([primary.audio.muted, backup.audio.muted], [false, false]);

  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: primaryId })).status, 200);
  t.equal(
    (await gw.post('/rest-api/push/find', { streamName: 'twin' })).status,
    404,
    'terminating the primary ended both',
  );
  await waitFor(
    'both receivers to see the end',
    () => primaryServer.publishEnded('live1') && backupServer.publishEnded('live1'),
  );

  const primaryFiles = await primaryServer.recordings('live1');
  const backupFiles = await backupServer.recordings('live1');
  t.equal(primaryFiles.length, 1, 'the primary: one unbroken publish');
  t.equal(backupFiles.length, 2, 'the backup: before its receiver was killed, and after');
  const backupTags = await tagList(backupFiles);
  const backupVideo = backupTags.filter((tag) => tag.startsWith('video'));
  const backupAudio = backupTags.filter((tag) => tag.startsWith('audio'));
  t.ok(
    backupVideo.length >= 100 && backupAudio.length >= 100,
    `${backupVideo.length} video, ${backupAudio.length} audio tags`,
  );
  t.same(
    notIn(backupTags, await tagList(primaryFiles)),
    [],
    'every tag the backup received, the primary received at the same timestamp, byte for byte',
  );
});

t.test('the primary lost and back, the backup untouched', async (t) => {
  const res = await gw.post('/rest-api/push/startup', {
    streamName: 'twin',
    rtmpUrl: primaryServer.url('live2'),
    backupUrl: backupServer.url('live2'),
    rtmpTransponderFullUrl: true,
  });
  t.equal(res.status, 200, JSON.stringify(res.body));
  const primary = gw.pushService.get(res.body.mediaSessionId);
  const backup = gw.pushService.get(res.body.backupMediaSessionId);
  await waitFor('frames on both', () => primary.writer.frames >= 60 && backup.writer.frames >= 60, 20_000);

  await primaryServer.kill();
  await waitFor('the primary to see its loss', () => primary.state !== 'running', 10_000);
  const backupFrames = backup.writer.frames;
  await waitFor('the backup to go on meanwhile', () => backup.writer.frames >= backupFrames + 30, 10_000);
  const listed = (await gw.post('/rest-api/push/find', { streamName: 'twin' })).body as any[];
  t.match(
    listed.find((p) => p.mediaSessionId === backup.mediaSessionId),
    { state: 'running', backupOf: primary.mediaSessionId },
    'the backup runs on, as find tells',
  );
  await primaryServer.restart();
  await waitFor(
    'the primary to reconnect',
    () => primary.counters.reconnects >= 1 && primary.state === 'running',
    30_000,
  );
  const primaryFrames = primary.writer.frames;
  await waitFor('frames after the reconnect', () => primary.writer.frames >= primaryFrames + 60, 20_000);
  t.match(backup, { counters: { drops: 0, reconnects: 0 } }, 'the backup never dropped');

  t.equal((await gw.post('/rest-api/push/terminate', { mediaSessionId: primary.mediaSessionId })).status, 200);
  await waitFor(
    'both receivers to see the end',
    () => primaryServer.publishEnded('live2') && backupServer.publishEnded('live2'),
  );
  const primaryFiles = await primaryServer.recordings('live2');
  const backupFiles = await backupServer.recordings('live2');
  t.equal(backupFiles.length, 1, 'the backup: one unbroken publish');
  t.equal(primaryFiles.length, 2, 'the primary: before its receiver was killed, and after');
  const primaryTags = await tagList(primaryFiles);
  const backupTags = await tagList(backupFiles);
  const [video, audio] = ['video', 'audio'].map((kind) => primaryTags.filter((tag) => tag.startsWith(kind)));
  t.ok(video!.length >= 100 && audio!.length >= 100, `${video!.length} video, ${audio!.length} audio tags`);
  // It joined the primary's AAC encoder a moment after the keyframe it starts at: its sound is kept.
  const first = (kind: string): number => Number(backupTags.find((tag) => tag.startsWith(kind))!.split(' ')[1]);
  t.ok(
    first('audio') - first('video') < 50,
    `the backup's sound starts with its pictures (${first('video')}, ${first('audio')} ms)`,
  );
  t.same(
    notIn(primaryTags, backupTags),
    [],
    'every tag the primary received, the backup received at the same timestamp, byte for byte',
  );
});

/**
 * The tags of `tags` that `other` lacks while it was receiving that kind of tag: from its first (a
 * backup starts at the keyframe before it joined) to its last but 100 ms (a receiver's file may miss
 * its last tags: it writes on as it stops).
 */
function notIn(tags: string[], other: string[]): string[] {
  const set = new Set(other);
  const span = (kind: string): [number, number] => {
    const times = other.filter((tag) => tag.startsWith(kind)).map((tag) => Number(tag.split(' ')[1]));
    if (times.length < 100) throw new Error(`only ${times.length} ${kind} tags to compare with`);
    return [Math.min(...times), Math.max(...times) - 100];
  };
  const spans = { audio: span('audio'), video: span('video') };
  return tags.filter((tag) => {
    const [kind, time] = tag.split(' ') as ['audio' | 'video', string];
    const [from, to] = spans[kind];
    return !set.has(tag) && Number(time) >= from && Number(time) < to;
  });
}
