import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A browser's offer saved by `scripts/capture-offers.ts` (or `gst-offers`): `test/fixtures/offers/<name>.sdp`. */
export function savedOffer(name: string): string {
  return readFileSync(join(import.meta.dirname, '..', 'fixtures', 'offers', `${name}.sdp`), 'utf8');
}

interface Section {
  kind: string;
  port: string;
  payloadTypes: string[];
  lines: string[];
}

function sections(sdp: string): Section[] {
  const out: Section[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      const [kind, port, , ...payloadTypes] = line.slice(2).split(' ');
      out.push({ kind: kind!, port: port!, payloadTypes, lines: [] });
    } else if (out.length) out.at(-1)!.lines.push(line);
  }
  return out;
}

const rtpmapOf = (section: Section, pt: string): string | undefined =>
  section.lines
    .find((l) => l.startsWith(`a=rtpmap:${pt} `))
    ?.slice(`a=rtpmap:${pt} `.length)
    .split('/')
    .slice(0, 2)
    .join('/')
    .toLowerCase();

/**
 * Where an answer does not follow its offer line by line (RFC 8829 JSEP, RFC 8285): each media
 * line of the answer, in the offer's order and of its kind, with its mid, carries only payload
 * types its line of the offer listed (with the same codec), header extensions its line offered
 * (same id and URI), and feedback its line offered for that payload type. Empty when it follows.
 */
export function answerDeviations(offer: string, answer: string): string[] {
  const offered = sections(offer);
  const answered = sections(answer);
  const problems: string[] = [];
  if (offered.length !== answered.length)
    problems.push(`${answered.length} media lines answered for ${offered.length} offered`);
  answered.forEach((a, i) => {
    const o = offered[i];
    const where = `line ${i + 1} (${a.kind})`;
    if (!o) return;
    if (o.kind !== a.kind) problems.push(`${where}: offered as ${o.kind}`);
    const mid = (s: Section): string | undefined => s.lines.find((l) => l.startsWith('a=mid:'));
    if (mid(o) !== mid(a)) problems.push(`${where}: ${mid(a)} for ${mid(o)}`);
    if (a.port === '0') return;
    for (const pt of a.payloadTypes) {
      if (!o.payloadTypes.includes(pt)) problems.push(`${where}: payload type ${pt} not on its line of the offer`);
      else if (rtpmapOf(a, pt) !== rtpmapOf(o, pt))
        problems.push(`${where}: payload type ${pt} is ${rtpmapOf(a, pt)}, offered as ${rtpmapOf(o, pt)}`);
    }
    for (const line of a.lines) {
      const extmap = /^a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(line);
      if (
        extmap &&
        !o.lines.some((l) =>
          new RegExp(`^a=extmap:${extmap[1]}(?:/\\w+)? ${extmap[2]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`).test(l),
        )
      ) {
        problems.push(`${where}: extmap ${extmap[1]} ${extmap[2]} not offered on this line`);
      }
      const feedback = /^a=rtcp-fb:(\S+) (.+)$/.exec(line);
      if (feedback && !o.lines.includes(line) && !o.lines.includes(`a=rtcp-fb:* ${feedback[2]}`))
        problems.push(`${where}: ${line} not offered on this line`);
    }
  });
  return problems;
}

/** The candidate addresses in an SDP, for checking what the gateway announces. */
export function candidateAddresses(sdp: string): string[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ/gm)].map((m) => m[1]!);
}
