import { execFileSync } from 'node:child_process';
import t from 'tap';
import { sleep } from '../../kit/processes.js';
import { syntheticPublish } from '../helpers/synthetic.js';

// Media sockets get the receive buffer the configuration asks for (the default ~200 KB overflows
// when the event loop is busy with many streams), as the kernel reports it.

/** Receive buffers (bytes, as `ss` shows `rb`) of process `pid`'s UDP sockets on ports in `range`. */
function receiveBuffers(range: [number, number], pid: number): number[] {
  const out = execFileSync('ss', ['-uanmp'], { encoding: 'utf8' });
  const sizes: number[] = [];
  const lines = out.split('\n');
  lines.forEach((line, i) => {
    const local = /\s(\S+):(\d+)\s+\S+\s+users:\(\("[^"]*",pid=(\d+)/.exec(line);
    if (!local || Number(local[3]) !== pid) return;
    const port = Number(local[2]);
    if (port < range[0] || port > range[1]) return;
    const memory = /rb(\d+)/.exec(`${line} ${lines[i + 1] ?? ''}`);
    if (memory) sizes.push(Number(memory[1]));
  });
  return sizes;
}

t.test('each media socket gets webrtc_udp_receive_buffer_bytes', async (t) => {
  // Outside the system's ephemeral ports (32768-60999), where the in-process publisher's sockets are.
  const range: [number, number] = [61000, 61999];
  const wanted = 1024 * 1024;
  const { gw } = await syntheticPublish(
    t,
    { webrtc_ice_port_min: range[0], webrtc_ice_port_max: range[1], webrtc_udp_receive_buffer_bytes: wanted },
    'cam',
  );
  await sleep(500);
  // werift's sockets are this process's; mediasoup's are its worker process's.
  const owner = (gw.local!.engine as { workerPid?: number }).workerPid ?? process.pid;
  const sizes = receiveBuffers(range, owner);
  t.ok(sizes.length >= 1, `the publisher's media socket is found (${sizes.length})`);
  // Linux doubles what is asked, for its own bookkeeping.
  t.ok(
    sizes.every((size) => size >= wanted),
    `receive buffers ${sizes.join(', ')} bytes, at least ${wanted}`,
  );
});
