import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/**
 * The layers docs/how-it-works.md lists, checked against every import of `src/` and
 * `sdk/src/` (type-only imports too: they couple as much).
 */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

function documentedLayers(): string[][] {
  const page = readFileSync(join(ROOT, 'docs/how-it-works.md'), 'utf8');
  const block = /<!-- layers -->\n([\s\S]*?)<!-- \/layers -->/.exec(page);
  if (!block) throw new Error('docs/how-it-works.md has no <!-- layers --> list');
  return block[1]!
    .trim()
    .split('\n')
    .map((line) => [...line.matchAll(/`([\w-]+)`/g)].map((m) => m[1]!));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative import and re-export of a file, as paths from the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g),
  ];
  return found.map((m) => normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
}

/** The module a file of `src/` belongs to: its folder, or its own name at the top. */
function moduleOf(file: string): string {
  const [, first, second] = file.split('/');
  return second === undefined ? first!.replace(/\.ts$/, '') : first!;
}

/** Imports of `files` that go against `layers`: each as "file -> import (why)". */
function layerViolations(layers: string[][], files: string[], imports: (file: string) => string[]): string[] {
  const layerOf = new Map(layers.flatMap((names, i) => names.map((name) => [name, i] as const)));
  const wrong: string[] = [];
  for (const file of files) {
    const from = moduleOf(file);
    const fromLayer = layerOf.get(from);
    if (fromLayer === undefined) {
      wrong.push(`${file}: its module ${from} is in no layer`);
      continue;
    }
    for (const target of imports(file)) {
      if (!target.startsWith('src/')) continue;
      const to = moduleOf(target);
      if (to === from) continue;
      const toLayer = layerOf.get(to);
      if (toLayer === undefined || toLayer >= fromLayer)
        wrong.push(
          `${file} -> ${target} (${from} is in layer ${fromLayer + 1}, ${to} in ${toLayer === undefined ? 'none' : toLayer + 1})`,
        );
    }
  }
  return wrong;
}

t.test('every module of src/ imports only from its own folder and the layers below it', async (t) => {
  const layers = documentedLayers();
  t.ok(layers.length >= 5, 'docs/how-it-works.md lists the layers');
  const files = sourceFiles('src');
  const modules = new Set(files.map(moduleOf));
  const listed = layers.flat();
  t.same([...modules].filter((m) => !listed.includes(m)).sort(), [], 'every module has a layer');
  t.same(
    listed.filter((m) => !modules.has(m)),
    [],
    'every listed module exists',
  );
  t.same(layerViolations(layers, files, importsOf), []);
});

t.test('the check finds an import that goes up, and one within a layer', async (t) => {
  const layers = [['errors'], ['media', 'rtmp'], ['pushes']];
  const imports: Record<string, string[]> = {
    'src/media/h264.ts': ['src/errors.ts', 'src/media/rtp.ts', 'src/pushes/tag-writer.ts'],
    'src/rtmp/client.ts': ['src/media/flv.ts'],
    'src/pushes/tag-writer.ts': ['src/media/rtp.ts'],
  };
  t.same(
    layerViolations(layers, Object.keys(imports), (f) => imports[f]!),
    [
      'src/media/h264.ts -> src/pushes/tag-writer.ts (media is in layer 2, pushes in 3)',
      'src/rtmp/client.ts -> src/media/flv.ts (rtmp is in layer 2, media in 2)',
    ],
  );
});

t.test('the SDK imports only its own files and the signalling protocol', async (t) => {
  const outside = sourceFiles('sdk/src').flatMap((file) =>
    importsOf(file)
      .filter((target) => !target.startsWith('sdk/src/') && target !== 'src/signaling/protocol.ts')
      .map((target) => `${file} -> ${relative(ROOT, join(ROOT, target))}`),
  );
  t.same(outside, []);
});
