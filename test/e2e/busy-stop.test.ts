import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { startProcess, stopProcess, waitFor } from '../../kit/processes.js';
import { useStage } from '../helpers/stage.js';

/**
 * The publish page's Stop on a machine kept busy: the browser's peer connection closes right after
 * the SDK's unpublish, and the gateway may see either first. Each Stop ends the push at once, and
 * none is taken for a lost publisher (whose pushes would wait in standby, sending the still
 * picture, for the grace period).
 */
const RUNS = 4;
const logLines: string[] = [];
const stage = useStage([{ log_level: 'info', rtmp_push_publisher_grace_ms: 60_000 }, logLines]);
const burners: ChildProcess[] = [];

t.before(() => {
  // One busy loop per core, beside the gateway, nginx and Chromium.
  for (let i = 0; i < 2; i++) burners.push(startProcess('node', ['-e', 'for (;;) {}']));
});
t.teardown(async () => {
  for (const burner of burners) await stopProcess(burner);
});

t.test(
  `Stop ends the push at once, ${RUNS} times on a busy machine, half of them with the unpublish held until the gateway has taken the publisher for lost`,
  async (t) => {
    const { page } = stage.browser;
    // Before the page's scripts: the SDK's unpublish can be held back until the test lets it go.
    await page.addInitScript(() => {
      const w = window as any;
      // The page's own send, called on each socket as `this` below.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      const send = WebSocket.prototype.send;
      w.holdUnpublish = false;
      w.held = [];
      WebSocket.prototype.send = function (this: WebSocket, data: string) {
        if (w.holdUnpublish && typeof data === 'string' && data.includes('"type":"unpublish"'))
          return void w.held.push(() => send.call(this, data));
        send.call(this, data);
      };
      w.releaseUnpublish = () => w.held.splice(0).forEach((go: () => void) => go());
    });
    for (let run = 1; run <= RUNS; run++) {
      const name = `busy${run}`;
      const held = run % 2 === 0;
      await page.goto(stage.gw.baseUrl + '/');
      await page.evaluate((hold) => ((window as any).holdUnpublish = hold), held);
      await waitFor('the SDK session', async () => (await page.textContent('#status')) === 'Ready', 20_000);
      await page.fill('#name', name);
      await page.fill('#rtmpUrl', `${stage.nginx.url()}/${name}`);
      await page.click('#publish');
      await waitFor('Live', async () => (await page.textContent('#status')) === 'Live', 30_000);
      await waitFor(
        'video at the server',
        async () => (await stage.nginx.streams()).some((s) => s.name === name && s.width > 0),
        15_000,
      );
      await page.click('#stop');
      if (held) {
        // The peer connection closed first: the publisher is lost, its push waits in standby.
        await waitFor(
          `run ${run}: the push in standby`,
          async () => stage.gw.pushService.find({ streamName: name })[0]?.state === 'standby',
          10_000,
        );
        await page.evaluate(() => (window as any).releaseUnpublish());
      }
      await waitFor(
        `run ${run}: the push gone`,
        async () => stage.gw.pushService.find({ streamName: name }).length === 0,
        10_000,
      );
      await waitFor(
        `run ${run}: the stream gone at the server`,
        async () => !(await stage.nginx.streams()).some((s) => s.name === name),
        10_000,
      );
      const lost = logLines.filter((line) => line.includes(`"${name}"`) && /publisher lost|standby/.test(line));
      if (!held) t.same(lost, [], `run ${run}: ended as a stop, never held in standby`);
      else t.pass(`run ${run}: the unpublish that came after the loss ended the push at once`);
    }
  },
);
