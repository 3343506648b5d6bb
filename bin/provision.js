#!/usr/bin/env node
// Entry point.
// - An installed package (no src/ beside this file): runs dist/, the bundle `npm pack` built
//   (scripts/prepack.mjs).
// - The repository: runs the bundle of today's sources (bin/build.mjs: plain JS, built again whenever a
//   source changed, so a stale dist/ is never used), else the TypeScript sources through tsx.
// User playbooks and roles are compiled by src/cli/usercode.ts against the bundle, or run through tsx.
import {existsSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let dir;
if (!existsSync(join(root, 'src')) && existsSync(join(root, 'dist', 'cli', 'main.mjs'))) {
  dir = join(root, 'dist');
} else if (!process.env.PROVISION_FROM_SOURCE) {
  try {
    const {ensureBuild} = await import('./build.mjs');
    dir = await ensureBuild();
  } catch {
    dir = undefined; // no esbuild, a read-only node_modules, a source that does not compile: run the sources
  }
}
let main;
if (dir) {
  globalThis.__PROVISION_BUNDLE__ = dir;
  ({main} = await import(pathToFileURL(join(dir, 'cli', 'main.mjs')).href));
} else {
  const {register} = await import('tsx/esm/api');
  register();
  ({main} = await import('../src/cli/main.ts'));
}
await main(process.argv);
