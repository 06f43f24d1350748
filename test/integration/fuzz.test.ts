import t from 'tap';
import { RETAINED_GROWTH_MB, runFuzz } from '../helpers/fuzz.js';

// 10,000 seeded cases across REST bodies, WHIP and WHEP offers and SDK messages; `npm run fuzz -- --cases
// 100000` runs more, with another seed if asked.

t.test(
  '10,000 fuzzed requests: no 5xx, no internal error, the gateway alive, no ffmpeg left, memory bounded',
  async (t) => {
    const report = await runFuzz({ cases: 10_000, seed: 20261122 });
    t.comment(
      JSON.stringify({
        cases: report.cases,
        statuses: report.statuses,
        accepted: report.accepted,
        rssMb: [report.rssBeforeMb.toFixed(0), report.rssAfterMb.toFixed(0)],
        retainedMb: [report.retainedBeforeMb.toFixed(0), report.retainedAfterMb.toFixed(0)],
      }),
    );
    t.same(report.serverErrors, [], 'no 5xx');
    t.same(report.wsInternalErrors, [], 'no internal error on the WebSocket');
    t.ok(report.alive, 'the gateway answers /health');
    t.equal(report.ffmpegLeft, 0, 'no ffmpeg left');
    t.ok(report.accepted > 0, `some fuzzed offers were valid and accepted (${report.accepted})`);
    const grew = report.retainedAfterMb - report.retainedBeforeMb;
    t.ok(
      grew < RETAINED_GROWTH_MB,
      `memory still reachable after a full collection grew ${grew.toFixed(0)} MB (< ${RETAINED_GROWTH_MB} MB)`,
    );
  },
);
