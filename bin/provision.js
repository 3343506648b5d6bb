#!/usr/bin/env node
// Entry point. Runs the prebuilt bundle of provision's sources (bin/build.mjs: plain JS, built again
// whenever a source changed), else the TypeScript sources through tsx. tsx loads the user's
// TypeScript playbooks and roles either way (src/cli/load.ts).
import {join} from 'node:path';
import {pathToFileURL} from 'node:url';
import {ensureBuild} from './build.mjs';

let dir;
if (!process.env.PROVISION_FROM_SOURCE) {
  try {
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
