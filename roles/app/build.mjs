#!/usr/bin/env node
/**
 * Builds the sample app into ONE file, roles/app/files/app.js, that the `app` role ships to the web
 * servers (they have no route to the npm registry). Runs on the controller.
 *
 * app.js is built, not committed (.gitignore): `npm ci` builds it (package.json `prepare`), and so does
 * `npm pack` (scripts/prepack.mjs: the package ships it, the shipped `app` role copies it).
 *
 *   node roles/app/build.mjs             # (npm run build:app) write files/app.js
 *   node roles/app/build.mjs --out FILE  # write it to FILE instead
 *   node roles/app/build.mjs --check     # exit 1 if files/app.js is missing or not what the sources build to
 *   node roles/app/build.mjs --if-deps   # (npm's `prepare`) without mysql2 installed (npm ci --omit=dev),
 *                                        # warn and build nothing instead of failing the install
 *
 * The bundle holds src/ and its one dependency, mysql2 (a devDependency of the project, its version
 * pinned by package-lock.json), as CommonJS for Node 18 (Debian 12's nodejs). The output is
 * deterministic (no timestamps; paths relative to the repository, whatever the cwd), so rebuilding
 * unchanged sources gives the same bytes and the role reports no change; test/roles/app-build.test.ts
 * holds it to that.
 */
import {mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join, relative, resolve} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {parseArgs} from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository: esbuild's comments name files relative to it. */
const root = resolve(here, '..', '..');
/** Where the role finds it (roles/app/index.ts, `appBundle`). */
export const appJs = join(here, 'files', 'app.js');

/** The bundle's bytes, with the versions of mysql2 and esbuild that made it. */
export async function buildApp() {
  const esbuild = await import('esbuild');
  const mysql2 = createRequire(import.meta.url)('mysql2/package.json').version;
  const result = await esbuild.build({
    // Paths in the bundle's comments are relative to this, not to the caller's cwd: same bytes from anywhere.
    absWorkingDir: root,
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
  return {code: Buffer.from(result.outputFiles[0].contents), mysql2, esbuild: esbuild.version};
}

/** Is mysql2 installed where the build resolves it? */
function hasMysql2() {
  try {
    createRequire(import.meta.url).resolve('mysql2/package.json');
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const {values} = parseArgs({options: {out: {type: 'string'}, check: {type: 'boolean'}, 'if-deps': {type: 'boolean'}}});
  const out = resolve(values.out ?? appJs);
  const rel = relative(process.cwd(), out);
  const shown = rel === '' || rel.startsWith('..') ? out : rel;
  if (!hasMysql2()) {
    const why = `mysql2 (a devDependency) is not installed: run npm ci (without --omit=dev), then npm run build:app`;
    if (values['if-deps'] && !values.check) {
      console.error(`roles/app/build.mjs: ${shown} not built: ${why}`);
      process.exit(0);
    }
    console.error(`roles/app/build.mjs: ${why}`);
    process.exit(1);
  }
  const {code, mysql2, esbuild} = await buildApp();
  let have = null;
  try {
    have = readFileSync(out);
  } catch {
    // missing: built below (or reported by --check)
  }
  if (values.check) {
    if (have === null || !code.equals(have)) {
      console.error(`${shown} is ${have === null ? 'missing' : 'stale'}: run npm run build:app`);
      process.exit(1);
    }
    console.log(`${shown} is up to date (${code.length} bytes)`);
  } else {
    // Same bytes: leave the file alone. Else a temp file renamed over it: never half a bundle.
    if (have === null || !code.equals(have)) {
      mkdirSync(dirname(out), {recursive: true});
      const tmp = `${out}.tmp-${process.pid}`;
      try {
        writeFileSync(tmp, code);
        renameSync(tmp, out);
      } finally {
        rmSync(tmp, {force: true});
      }
    }
    console.log(`${have !== null && code.equals(have) ? 'unchanged' : 'wrote'} ${shown} (${code.length} bytes, mysql2 ${mysql2}, esbuild ${esbuild})`);
  }
}
