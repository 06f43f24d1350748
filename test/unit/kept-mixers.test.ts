import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import { notFound } from '../../src/core/errors.js';
import { MixerKeeper } from '../../src/control/mixer-keeper.js';
import type { LifecycleEvent } from '../../src/plane/lifecycle.js';
import type { MediaPlane } from '../../src/plane/plane.js';
import type { MixerInfo } from '../../src/mixers/requests.js';

// The mixer keeper's rules, against a plane that records what it is asked (the real gateway
// restarting on its data folder is in the kept-pushes integration test).

const log = pino({ level: 'silent' });
const info = (uri: string, inputs: MixerInfo['inputs'] = []): MixerInfo => ({
  uri,
  localStreamName: uri.slice(8),
  hasVideo: true,
  layout: 'grid',
  width: 1280,
  height: 720,
  fps: 30,
  background: '#000000',
  hasAudio: true,
  createdAt: new Date().toISOString(),
  frames: 0,
  inputs,
});

/** A plane that answers mixer calls and records them; `failAdd` refuses the adds of that stream. */
function fakePlane(failAdd?: string) {
  const calls: string[] = [];
  const listeners = new Set<(event: LifecycleEvent) => void>();
  const plane = {
    mixerStartup: async (request: { uri: string }) => (calls.push(`startup ${request.uri}`), info(request.uri)),
    mixerAdd: async (request: { uri: string; remoteStreamName: string; waitForStream?: boolean }) => {
      calls.push(`add ${request.uri} ${request.remoteStreamName}${request.waitForStream ? ' waiting' : ''}`);
      if (request.remoteStreamName === failAdd) throw notFound('remoteStreamName: no', 'remoteStreamName');
      return info(request.uri, [
        { streamName: request.remoteStreamName, slot: 0, publishing: false, audioMuted: false, volume: 1, label: '' },
      ]);
    },
    mixerAudioVideo: async (request: { uri: string; remoteStreamName: string }) => (
      calls.push(`audio ${request.uri} ${request.remoteStreamName}`),
      info(request.uri)
    ),
    mixerTerminate: async (uri: string) => {
      calls.push(`terminate ${uri}`);
      for (const listener of listeners)
        listener({ type: 'mixer.ended', mixer: uri, stream: uri.slice(8), reason: 'terminated' });
    },
    events: (listener: (event: LifecycleEvent) => void) => (listeners.add(listener), () => listeners.delete(listener)),
  };
  return {
    plane: plane as unknown as MediaPlane,
    calls,
    end: (uri: string) =>
      listeners.forEach((l) => l({ type: 'mixer.ended', mixer: uri, stream: uri.slice(8), reason: 'encoder' })),
  };
}

const kept = async (file: string): Promise<string[]> =>
  (JSON.parse(await readFile(file, 'utf8')) as { mixers: { request: { uri: string } }[] }).mixers.map(
    (m) => m.request.uri,
  );

t.test(
  'a file that is not JSON, or not as written: nothing starts, the gateway goes on, and the file is written anew',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'kept-mixers-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'mixers.json');
    for (const text of ['{"version": 1, "mixers": [', '{"version": 2, "mixers": []}']) {
      await writeFile(file, text);
      const { plane, calls } = fakePlane();
      const keeper = new MixerKeeper(plane, file, log);
      await keeper.open();
      t.same(calls, [], `${text}: nothing started`);
      t.same(await kept(file), []);
      await keeper.close();
    }
  },
);

t.test(
  'kept mixers start again with their inputs waiting for their streams; one that cannot is ended and forgotten; one that ends by itself is forgotten',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'kept-mixers-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'mixers.json');
    const first = fakePlane();
    const keeper = new MixerKeeper(first.plane, file, log);
    await keeper.open();
    for (const uri of ['mixer://a', 'mixer://b', 'mixer://c']) {
      await keeper.startup({
        uri,
        layout: 'grid',
        width: 1280,
        height: 720,
        fps: 30,
        videoBitrate: 2500,
        audioBitrate: 96,
        background: '#000000',
        hasVideo: true,
        hasAudio: true,
      });
    }
    await keeper.add({ uri: 'mixer://a', remoteStreamName: 'host' });
    await keeper.add({ uri: 'mixer://b', remoteStreamName: 'gone' });
    await keeper.terminate('mixer://c');
    t.same(await kept(file), ['mixer://a', 'mixer://b'], 'a terminated mixer is not kept');
    await keeper.close();

    const second = fakePlane('gone');
    const again = new MixerKeeper(second.plane, file, log);
    await again.open();
    t.same(
      second.calls,
      [
        'startup mixer://a',
        'add mixer://a host waiting',
        'startup mixer://b',
        'add mixer://b gone waiting',
        'terminate mixer://b',
      ],
      'b could not start again: what of it started is ended',
    );
    t.same(await kept(file), ['mixer://a'], 'and it is forgotten');
    second.end('mixer://a');
    await again.close();
    t.same(await kept(file), [], 'a mixer that ended by itself is forgotten');
  },
);
