#!/usr/bin/env node
/**
 * `npm pack` / `npm publish` run this first (package.json `prepack`): it builds dist/, what the package
 * ships instead of the TypeScript sources.
 *
 * - dist/cli/main.mjs, dist/index.mjs (`provision`), dist/roles.mjs (`provision/roles`) and their
 *   shared chunks: esbuild's bundle, the same build as the repository's own (bin/build.mjs), so the CLI
 *   and user code importing either entry share one copy of provision's modules.
 * - dist/types/: the declarations of the public API (tsconfig.build.json).
 * - roles/app/files/app.js: the sample app's bundle (roles/app/build.mjs), built, not committed; the
 *   shipped `app` role copies it to the web servers, so the package must hold it.
 *
 * A fresh clone has no node_modules: `npm ci` runs first. Everything is logged on stderr (npm pack
 * prints the tarball's name on stdout).
 */
import {spawnSync} from 'node:child_process';
import {existsSync, renameSync, rmSync} from 'node:fs';
import {join} from 'node:path';
import {bundle, root} from '../bin/build.mjs';

function run(cmd, args) {
  process.stderr.write(`prepack: ${[cmd, ...args].join(' ')}\n`);
  const r = spawnSync(cmd, args, {cwd: root, stdio: ['ignore', 2, 2]});
  if (r.status !== 0) {
    process.stderr.write(`prepack: ${cmd} failed (${r.error?.message ?? `exit ${r.status}`})\n`);
    process.exit(1);
  }
}

const has = (pkg) => existsSync(join(root, 'node_modules', pkg, 'package.json'));
if (!has('esbuild') || !has('typescript') || !has('mysql2')) {
  // npm sets npm_execpath to its own CLI when it runs a script.
  const npm = process.env.npm_execpath;
  if (npm) run(process.execPath, [npm, 'ci', '--no-audit', '--no-fund']);
  else run('npm', ['ci', '--no-audit', '--no-fund']);
}

const dist = join(root, 'dist');
const tmp = join(root, `dist.tmp-${process.pid}`);
rmSync(tmp, {recursive: true, force: true});
try {
  process.stderr.write('prepack: bundle → dist/\n');
  await bundle(tmp);
  rmSync(dist, {recursive: true, force: true});
  renameSync(tmp, dist);
} finally {
  rmSync(tmp, {recursive: true, force: true});
}
run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
process.stderr.write('prepack: dist/ ready\n');
// Not --if-deps: a package without app.js would ship an `app` role that fails on every web server.
run(process.execPath, [join(root, 'roles', 'app', 'build.mjs')]);
