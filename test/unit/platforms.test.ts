import t from 'tap';
import { parseDestination } from '../../src/links/destination.js';
import { checkForPlatform, platformOf, PLATFORMS } from '../../src/links/platforms.js';

const at = (url: string): ReturnType<typeof parseDestination> =>
  parseDestination(url, 'cam', { prefix: '', fullUrl: true });

t.test(
  'a platform is recognised from its ingest hosts, never from another host, and named in place of it',
  async (t) => {
    const recognised = (url: string): string | undefined => platformOf(undefined, at(url))?.platform.name;
    t.equal(recognised('rtmp://a.rtmp.youtube.com/live2/key'), 'youtube');
    t.equal(recognised('rtmps://a.rtmps.youtube.com:443/live2/key'), 'youtube');
    t.equal(recognised('rtmps://live-api-s.facebook.com:443/rtmp/key'), 'facebook');
    t.equal(recognised('rtmp://live-fra.twitch.tv/app/key'), 'twitch');
    t.equal(recognised('rtmp://sfo.contribute.live-video.net/app/key'), 'twitch', "Twitch's IVS ingest");
    t.equal(recognised('rtmps://fa723fc1b171.global-contribute.live-video.net/app/key'), 'kick');
    t.equal(recognised('rtmp://evil-youtube.com/live2/key'), undefined, 'a host that only ends like one');
    t.equal(recognised('rtmp://youtube.com.example.net/live2/key'), undefined);
    t.equal(recognised('rtmp://127.0.0.1/live/key'), undefined);
    t.equal(recognised('srt://a.rtmp.youtube.com:9000'), undefined, 'only RTMP is recognised');
    t.same(platformOf('tiktok', at('rtmp://127.0.0.1/live/key')), {
      platform: PLATFORMS.find((p) => p.name === 'tiktok'),
      named: true,
    });
    t.equal(platformOf('custom', at('rtmp://a.rtmp.youtube.com/live2/key')), undefined, 'custom checks nothing');
    t.equal(platformOf(undefined, at('rtmp://a.rtmp.youtube.com/live2/key'))?.named, false);
  },
);

t.test('what a platform documents as refused is refused naming the field', async (t) => {
  const facebook = PLATFORMS.find((p) => p.name === 'facebook')!;
  const twitch = PLATFORMS.find((p) => p.name === 'twitch')!;
  t.throws(() => checkForPlatform(facebook, at('rtmp://127.0.0.1/rtmp/key'), {}), {
    code: 'invalid_request',
    field: 'rtmpUrl',
    message: /facebook takes RTMPS only/,
  });
  t.doesNotThrow(() => checkForPlatform(facebook, at('rtmps://127.0.0.1/rtmp/key'), {}));
  t.throws(() => checkForPlatform(facebook, at('srt://127.0.0.1:9000'), {}), {
    code: 'invalid_request',
    field: 'rtmpUrl',
  });
  t.throws(() => checkForPlatform(twitch, at('rtmp://127.0.0.1/app/key'), { videoBitrate: 8000 }), {
    field: 'videoBitrate',
    message: /6000 kb\/s/,
  });
  t.throws(() => checkForPlatform(twitch, at('rtmp://127.0.0.1/app/key'), { fps: 120 }), {
    code: 'invalid_request',
    field: 'fps',
  });
  t.throws(() => checkForPlatform(twitch, at('rtmp://127.0.0.1/app/key'), { audioBitrate: 321 }), {
    code: 'invalid_request',
    field: 'audioBitrate',
  });
  t.throws(() => checkForPlatform(twitch, at('rtmp://127.0.0.1/app/key'), { fps: 30, keyFrameInterval: 120 }), {
    field: 'keyFrameInterval',
    message: /4 s at 30 fps; twitch takes keyframes at most 2 s apart/,
  });
  t.doesNotThrow(() =>
    checkForPlatform(twitch, at('rtmp://127.0.0.1/app/key'), { fps: 30, keyFrameInterval: 60, videoBitrate: 6000 }),
  );
  const tiktok = PLATFORMS.find((p) => p.name === 'tiktok')!;
  t.doesNotThrow(
    () => checkForPlatform(tiktok, at('rtmp://127.0.0.1/live/key'), { videoBitrate: 50_000 }),
    'nothing it does not document',
  );
});
