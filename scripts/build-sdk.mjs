// Bundles the browser SDK (ESM and a global `Gateway` for <script> tags) and its type declarations.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'sdk/src/gateway.ts');
const common = { entryPoints: [entry], bundle: true, target: 'es2020', sourcemap: true, logLevel: 'warning' };
await build({ ...common, format: 'esm', outfile: join(root, 'dist/sdk/gateway.js') });
await build({ ...common, format: 'iife', globalName: 'Gateway', outfile: join(root, 'dist/sdk/gateway.iife.js') });
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'sdk/tsconfig.json')], {
  stdio: 'inherit',
});
// The SDK's types are served as one file: the declarations of its public files joined, their
// imports of each other dropped. Nothing else may be imported (the signalling protocol it shares
// with the server is internal to it: what uses it is marked @internal).
const PUBLIC_FILES = ['types', 'session', 'stream', 'viewer', 'gateway'];
const ownImport = /^(?:import\b.*from '\.\/[a-z-]+\.js';|export (?:\*|\{[^}]*\}) from '\.\/[a-z-]+\.js';)$/;
const joined = PUBLIC_FILES.map((name) =>
  readFileSync(join(root, `dist/sdk-types/sdk/src/${name}.d.ts`), 'utf8')
    .split('\n')
    .filter((line) => !ownImport.test(line) && line !== 'export {};')
    .join('\n')
    .trim(),
).join('\n\n');
if (/^import\b|\bfrom '|import\(/m.test(joined))
  throw new Error("the SDK's public types import something outside them: mark what uses it @internal");
writeFileSync(join(root, 'dist/sdk/gateway.d.ts'), joined + '\n');
