// Bundles the browser SDK (ESM and a global `Gateway` for <script> tags) and its type declarations.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'sdk/src/gateway.ts');
const common = { entryPoints: [entry], bundle: true, target: 'es2020', sourcemap: true, logLevel: 'warning' };
await build({ ...common, format: 'esm', outfile: join(root, 'dist/sdk/gateway.js') });
await build({ ...common, format: 'iife', globalName: 'Gateway', outfile: join(root, 'dist/sdk/gateway.iife.js') });
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'sdk/tsconfig.json')], { stdio: 'inherit' });
