import { join } from 'node:path';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import t from 'tap';
import { TestFirefox } from '../../kit/firefox.js';
import { GatewayProcess } from '../../kit/gateway-process.js';
import { TestNetwork } from '../../kit/netns.js';
import { probe } from '../../kit/probe.js';
import { stopAllProcesses, waitFor } from '../../kit/processes.js';
import { NginxRtmp } from '../../kit/rtmp-server.js';
import { TcpBalancer } from '../../kit/tcp-balancer.js';

/**
 * Firefox ESR on the publish page, with the gateway's defaults. Firefox never pairs a loopback
 * candidate, so the gateway must announce the machine's own address (`default-route`) beside
 * 127.0.0.1. The machine here is a host of the test's own: the gateway and nginx-rtmp run in a
 * network namespace whose one link carries its default route, and the page is opened through
 * 127.0.0.1 (a page on localhost may open the camera), as a user on the machine would.
 */
const available = await TestNetwork.available();
const dir = await mkdtemp(join(tmpdir(), 'firefox-e2e-'));
let net: TestNetwork | undefined;
let nginx: NginxRtmp | undefined;
let gateway: GatewayProcess | undefined;
let front: TcpBalancer | undefined;
let firefox: TestFirefox | undefined;

t.teardown(async () => {
  await firefox?.close();
  await front?.stop();
  await gateway?.stop();
  await nginx?.stop();
  await stopAllProcesses();
  await net?.destroy();
  await rm(dir, { recursive: true, force: true });
});

t.before(async () => {
  if (!available) return;
  net = await TestNetwork.create();
  await net.routeDefaultThroughLink();
  nginx = await NginxRtmp.start({ netns: { name: net.ns, address: net.peerAddress } });
  // The defaults of ICE: announced 127.0.0.1 and default-route, any remote network.
  gateway = await GatewayProcess.start(
    join(dir, 'gateway.log'),
    // The API listens on the namespace's address, reached by the test alone.
    {
      GATEWAY_WEBRTC_ICE_ADDRESSES: undefined,
      GATEWAY_WEBRTC_ICE_REMOTE_NETWORKS: undefined,
      GATEWAY_LOG_LEVEL: 'info',
      GATEWAY_API_AUTH_DISABLED: 'true',
    },
    ['--import', 'tsx'],
    'kit/server-from-source.ts',
    net,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}\n${await readFile(join(dir, 'gateway.log'), 'utf8')}`);
  });
  const port = Number(new URL(gateway.baseUrl).port);
  front = await TcpBalancer.start([{ host: net.peerAddress, port }]);
  firefox = await TestFirefox.launch();
});

t.test(
  'Firefox goes Live from the publish page with the defaults, and watches what the gateway receives over WHEP',
  { skip: !available && 'needs root to make a network namespace' },
  async (t) => {
    const page = firefox!.page;
    await page.goto(front!.url + '/');
    await waitFor(
      'the SDK session',
      async () => (await page.$eval('#status', (e) => e.textContent)) === 'Ready',
      15000,
    );
    await page.$eval('#name', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#name', 'fox');
    await page.type('#rtmpUrl', `${nginx!.url()}/fox`);
    await page.click('#publish');
    await waitFor('Live', async () => (await page.$eval('#status', (e) => e.textContent)) === 'Live', 30000).catch(
      async (error) => {
        t.comment(await readFile(join(dir, 'gateway.log'), 'utf8'));
        throw error;
      },
    );
    const log = await readFile(join(dir, 'gateway.log'), 'utf8');
    t.match(
      log,
      new RegExp(`"ice":\\["127\\.0\\.0\\.1","${net!.peerAddress.replace(/\./g, '\\.')}"\\]`),
      'the gateway announces 127.0.0.1 and its address on the default route',
    );
    const [stream] = (await gateway!.request('POST', '/rest-api/stream/find', { name: 'fox' })).body;
    t.equal(stream.state, 'publishing');
    t.equal(stream.warning, null, 'no warning on a stream that connected');
    const session = await waitFor(
      'video at the RTMP server',
      async () => (await nginx!.streams()).find((s) => s.name === 'fox' && s.width > 0),
      15000,
    );
    t.equal(session.videoCodec, 'H264', "Firefox's VP8 arrives as H.264");

    // The page's "See what the gateway receives": Firefox watches the VP8 stream over WHEP.
    await page.click('#received');
    await waitFor(
      "the gateway's picture playing in Firefox",
      () =>
        page.evaluate(() => {
          const video = document.getElementById('receivedPlayer') as HTMLVideoElement;
          return !video.hidden && video.videoWidth > 0 && video.currentTime > 1;
        }),
      20000,
    );
    // Frames decoded and presented, counted for a second as the player shows them.
    // (A string: the test's transpiler names the functions it compiles, with a helper the page lacks.)
    const watched = (await page.evaluate(`(async () => {
    const video = document.getElementById('receivedPlayer');
    let shown = 0;
    const count = () => { shown++; video.requestVideoFrameCallback(count); };
    video.requestVideoFrameCallback(count);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return { width: video.videoWidth, audioTracks: video.srcObject.getAudioTracks().length, shown };
  })()`)) as { width: number; audioTracks: number; shown: number };
    t.ok(
      watched.shown >= 5,
      `Firefox decodes and shows the WHEP video (${watched.shown} frames in a second, ${watched.width} wide)`,
    );
    t.equal(watched.audioTracks, 1, 'and receives its audio');

    // The operator console's WHEP preview, in Firefox: frames decoded, audio received.
    const consolePage = await firefox!.browser.newPage();
    t.teardown(() => consolePage.close().catch(() => {}));
    await consolePage.goto(front!.url + '/console');
    const card = '.stream[data-name="fox"]';
    await waitFor('the stream in the console', async () => (await consolePage.$(`${card} .watch`)) !== null, 15000);
    await consolePage.click(`${card} .watch`);
    const inbound = `(async () => {
    const viewer = document.querySelector('${card}').viewer;
    const counts = { frames: 0, audioPackets: 0 };
    if (!viewer) return counts;
    (await viewer.peerConnection.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') counts.frames = s.framesDecoded ?? 0;
      if (s.type === 'inbound-rtp' && s.kind === 'audio') counts.audioPackets = s.packetsReceived ?? 0;
    });
    return counts;
  })()`;
    const consoleCounts = await waitFor(
      "the console's preview decoding",
      async () => {
        const counts = (await consolePage.evaluate(inbound)) as { frames: number; audioPackets: number };
        return counts.frames > 10 && counts.audioPackets > 10 ? counts : undefined;
      },
      20000,
    );
    t.pass(
      `the console's preview in Firefox: ${consoleCounts.frames} frames decoded, ${consoleCounts.audioPackets} audio packets received`,
    );
    await consolePage.close();

    await page.click('#stop');
    await waitFor(
      'the push to end at the server',
      async () => !(await nginx!.streams()).some((s) => s.name === 'fox'),
      15000,
    );
    const recorded = await probe(nginx!.recording('fox'));
    t.match(
      recorded.streams.find((s) => s.codec_type === 'video'),
      { codec_name: 'h264' },
      'ffprobe reads H.264 in what arrived',
    );
    t.match(
      recorded.streams.find((s) => s.codec_type === 'audio'),
      { codec_name: 'aac' },
      'and AAC',
    );
    t.ok(recorded.video.length > 30, `${recorded.video.length} video frames arrived`);
  },
);

t.test(
  'a gateway that announces 127.0.0.1 alone tells why Firefox never connects',
  { skip: !available && 'needs root to make a network namespace' },
  async (t) => {
    const loopbackOnly = await GatewayProcess.start(
      join(dir, 'loopback-only.log'),
      {
        GATEWAY_WEBRTC_ICE_ADDRESSES: '["127.0.0.1"]',
        GATEWAY_WEBRTC_ICE_REMOTE_NETWORKS: undefined,
        GATEWAY_API_AUTH_DISABLED: 'true',
      },
      ['--import', 'tsx'],
      'kit/server-from-source.ts',
      net,
    );
    const port = Number(new URL(loopbackOnly.baseUrl).port);
    const door = await TcpBalancer.start([{ host: net!.peerAddress, port }]);
    t.teardown(async () => {
      await door.stop();
      await loopbackOnly.stop();
    });
    const page = firefox!.page;
    await page.goto(door.url + '/');
    await waitFor(
      'the SDK session',
      async () => (await page.$eval('#status', (e) => e.textContent)) === 'Ready',
      15000,
    );
    await page.$eval('#name', (e) => ((e as HTMLInputElement).value = 'fox_loopback'));
    await page.click('#publish');
    const stream = await waitFor(
      "the stream's warning",
      async () => {
        const { body } = await loopbackOnly.request('POST', '/rest-api/stream/find', { name: 'fox_loopback' });
        return Array.isArray(body) && body[0]?.warning ? body[0] : undefined;
      },
      15000,
    );
    t.equal(stream.state, 'connecting');
    t.match(
      stream.warning,
      /^no ICE check from the publisher within 4 s: the gateway announces 127\.0\.0\.1 and the offer's first candidate is (IPv4 host|mDNS host|none); Firefox and Safari never pair a loopback address/,
      stream.warning,
    );
    await waitFor(
      'the warning in the log',
      async () => (await readFile(join(dir, 'loopback-only.log'), 'utf8')).includes('"offerCandidate"'),
      5000,
    );
    await page.click('#stop').catch(() => {});
  },
);
