#!/usr/bin/env node
/**
 * Builds the sample app into ONE file, roles/app/files/app.js, that the `app` role ships to the web
 * servers (they have no route to the npm registry). Runs on the controller:
 *
 *   node roles/app/build.mjs           # rebuild files/app.js
 *   node roles/app/build.mjs --check   # exit 1 if files/app.js is not what the sources build to
 *
 * The bundle holds src/ and its one dependency, mysql2 (a devDependency of the project), as CommonJS
 * for Node 18 (Debian 12's nodejs). The output is deterministic (no timestamps), so rebuilding unchanged
 * sources leaves the file byte-identical and the role reports no change.
 */
import {readFile, writeFile} from 'node:fs/promises';
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'files', 'app.js');
const require = createRequire(import.meta.url);
const mysql2 = require('mysql2/package.json').version;

const result = await esbuild.build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  platform: 'node',
  target: 'node18',
  // CommonJS: mysql2 and its dependencies are CommonJS and require() Node's built-ins, which an ESM
  // bundle cannot do. With no package.json beside it on the server, Node loads app.js as CommonJS.
  format: 'cjs',
  minify: false,
  legalComments: 'eof',
  charset: 'utf8',
  write: false,
  logLevel: 'warning',
  banner: {js: `// Sample app for the site playbook, built by roles/app/build.mjs from roles/app/src (mysql2 ${mysql2}, esbuild ${esbuild.version}). Do not edit: rebuild.`},
});
const code = result.outputFiles[0].contents;

if (process.argv.includes('--check')) {
  const have = await readFile(out).catch(() => Buffer.alloc(0));
  if (!Buffer.from(code).equals(have)) {
    console.error(`${out} is stale: run node roles/app/build.mjs`);
    process.exit(1);
  }
  console.log(`${out} is up to date (${code.length} bytes)`);
} else {
  await writeFile(out, code);
  console.log(`wrote ${out} (${code.length} bytes, mysql2 ${mysql2}, esbuild ${esbuild.version})`);
}
