import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/**
 * Every relative link of the documentation (README.md, DESIGN.md, docs/*.md) leads to a file that
 * exists, and every `#anchor` to a heading of its page, slugged as GitHub does. Links to http(s)
 * and other schemes are not followed.
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The documentation's pages, as paths from the root. */
function pages(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`);
  return ['README.md', 'DESIGN.md', ...docs.sort()];
}

/** The lines of a page outside fenced code blocks, as written, with their numbers. */
function unfencedLines(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line: i + 1, text });
  });
  return out;
}

/** The lines of a page outside fenced code blocks, with their numbers; code spans blanked out. */
function proseLines(markdown: string): { line: number; text: string }[] {
  return unfencedLines(markdown).map(({ line, text }) => ({
    line,
    text: text.replace(/(`+)(?:(?!\1).)+\1/g, (span) => ' '.repeat(span.length)),
  }));
}

/** A heading's text as GitHub slugs it, before duplicates are numbered. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a page offers: its ATX headings' slugs (repeats numbered -1, -2, …) and HTML ids. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text: line } of unfencedLines(markdown)) {
    for (const m of line.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) found.add(m[1]!);
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

/** Every link and image target of a page's prose, with its line. */
function linkTargets(markdown: string): { line: number; target: string }[] {
  const out: { line: number; target: string }[] = [];
  for (const { line, text } of proseLines(markdown)) {
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line, target: m[1]! });
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(text);
    if (definition) out.push({ line, target: definition[1]! });
    for (const m of text.matchAll(/\b(?:href|src)="([^"]+)"/g)) out.push({ line, target: m[1]! });
  }
  return out;
}

/** The files links may lead to, by their paths from the root. */
interface Files {
  /** A page's text, or undefined when there is no such file. */
  read(path: string): string | undefined;
  exists(path: string): boolean;
}

/** The links of `file` that lead nowhere, each as "file:line: target (why)". */
function brokenLinks(file: string, files: Files): string[] {
  const text = files.read(file);
  if (text === undefined) return [`${file}: no such file`];
  const broken: string[] = [];
  for (const { line, target } of linkTargets(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const hash = target.indexOf('#');
    const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const where = `${file}:${line}: ${target}`;
    if (path.startsWith('/')) {
      broken.push(`${where} (a path from the site's root; write it relative to the page)`);
      continue;
    }
    const resolved = path === '' ? file : posix.normalize(posix.join(posix.dirname(file), path));
    if (resolved.startsWith('..')) {
      broken.push(`${where} (outside the repository)`);
      continue;
    }
    const page = resolved.endsWith('.md') ? files.read(resolved) : undefined;
    if (page === undefined && (resolved.endsWith('.md') || !files.exists(resolved))) {
      broken.push(`${where} (no file ${resolved})`);
      continue;
    }
    if (anchor === undefined || page === undefined) continue;
    if (!anchors(page).has(anchor)) broken.push(`${where} (no heading of ${resolved} makes #${anchor})`);
  }
  return broken;
}

const repository: Files = {
  read: (path) => (existsSync(join(ROOT, path)) ? readFileSync(join(ROOT, path), 'utf8') : undefined),
  exists: (path) => existsSync(join(ROOT, path)),
};

t.test('every relative link and anchor of the documentation leads somewhere', async (t) => {
  const files = pages();
  t.ok(files.length >= 10, 'README.md, DESIGN.md and the pages of docs/');
  for (const file of files) t.same(brokenLinks(file, repository), [], file);
});

t.test('anchors are slugged as GitHub does', async (t) => {
  t.equal(slug('WebRTC → RTMP gateway'), 'webrtc--rtmp-gateway');
  t.equal(slug('Captions: `POST /rest-api/stream/caption`'), 'captions-post-rest-apistreamcaption');
  t.equal(slug('Days of streaming, and a machine out of CPU'), 'days-of-streaming-and-a-machine-out-of-cpu');
  t.equal(slug('Audio commands: `mute`, `sound_on`'), 'audio-commands-mute-sound_on');
  t.equal(slug('See [the page](x.md) (v2.1)'), 'see-the-page-v21');
  t.same(
    [...anchors('# Usage\n\n```sh\n# not a heading\n```\n\n## Usage\n### Usage ##\n<a id="kept"></a>\n')],
    ['usage', 'usage-1', 'usage-2', 'kept'],
  );
});

t.test('the check finds a missing file, a missing anchor, and leaves code and other schemes alone', async (t) => {
  const files: Record<string, string> = {
    'README.md': [
      '# Gateway',
      '',
      'See [the API](docs/api.md#startup), [missing](docs/gone.md), [nowhere](docs/api.md#shutdown),',
      '[here](#gateway), [not here](#nothing), ![picture](docs/none.png), <https://example.com/#x>,',
      '[site](https://example.com/a.md#b), [mail](mailto:someone@example.com), `[code](docs/gone.md)`.',
      '',
      '```md',
      '[in a block](docs/gone.md)',
      '```',
      '',
      '[ref]: docs/api.md#startup-1',
    ].join('\n'),
    'docs/api.md': '# API\n\n## Startup\n\n## Startup\n\nBack to [the start](../README.md#gateway).\n',
  };
  const made: Files = { read: (path) => files[path], exists: (path) => path in files };
  t.same(brokenLinks('README.md', made), [
    'README.md:3: docs/gone.md (no file docs/gone.md)',
    'README.md:3: docs/api.md#shutdown (no heading of docs/api.md makes #shutdown)',
    'README.md:4: #nothing (no heading of README.md makes #nothing)',
    'README.md:4: docs/none.png (no file docs/none.png)',
  ]);
  t.same(brokenLinks('docs/api.md', made), []);
});
