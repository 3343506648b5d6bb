/**
 * The prebuilt CLI. provision's TypeScript sources are bundled by esbuild into plain ES modules under
 * node_modules/.cache/provision/<key>/, so a run starts without sending ~70 modules through tsx's
 * loader hooks (that cost about 0.3 s of CPU at every start, a third of a no-op site run).
 *
 * Three entries, split into shared chunks: cli/main.mjs (the CLI), index.mjs (`provision`, the public
 * API) and roles.mjs (`provision/roles`, the shipped roles). The CLI and user code importing either
 * entry share ONE copy of provision's modules (src/core/secret.ts and others hold module-level state).
 *
 * <key> hashes the path, size and mtime of every file under src/ and of every roles/ source (and this
 * file): a source edited since gets a new bundle at the next start, built once in about 0.3 s. The
 * bundle is written to a temp folder and renamed into place, so concurrent starts never see half of one.
 *
 * The user's playbooks and roles are compiled the same way (src/cli/usercode.ts), their imports of
 * `provision`, `provision/roles` and `<root>/src/index.ts` sent to the bundle's entries.
 *
 * The package (`npm pack`) ships the same bundle, built once into dist/ by scripts/prepack.mjs.
 *
 *   node bin/build.mjs      build now (npm's `prepare` runs it after `npm ci`)
 */
import {createHash} from 'node:crypto';
import {existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync} from 'node:fs';
import {dirname, join, relative, resolve} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A hash of every source file's path, size and mtime (src/, roles/), and of this builder. */
export function buildKey() {
  const h = createHash('sha256');
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  const walk = (dir, keep) => {
    for (const e of readdirSync(dir, {withFileTypes: true}).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, keep);
      else if (keep(e.name)) {
        const s = statSync(p);
        h.update(`${relative(root, p)} ${s.size} ${s.mtimeMs}\n`);
      }
    }
  };
  walk(join(root, 'src'), () => true);
  // The roles' TypeScript (their templates and files are read at run time, not bundled).
  walk(join(root, 'roles'), (name) => /\.tsx?$/.test(name));
  return h.digest('hex').slice(0, 16);
}

/**
 * Bundle provision's sources into `outdir`: cli/main.mjs, index.mjs and roles.mjs, sharing chunks.
 * Packages stay imports (resolved from node_modules at run time).
 */
export async function bundle(outdir) {
  const {build} = await import('esbuild');
  await build({
    absWorkingDir: root,
    entryPoints: {'cli/main': 'src/cli/main.ts', index: 'src/index.ts', roles: 'roles/index.ts'},
    outdir,
    outExtension: {'.js': '.mjs'},
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
    // Packages stay imports, resolved from node_modules at run time, except zod: bundled, it loads in a
    // fifth of the time (every run checks task arguments with it).
    plugins: [{
      name: 'external-packages',
      setup(b) {
        b.onResolve({filter: /^[^./]/}, (args) => (/^zod(\/|$)/.test(args.path) ? undefined : {path: args.path, external: true}));
      },
    }],
  });
}

/** The folder of the bundle for today's sources, built first when missing. */
export async function ensureBuild() {
  const cache = join(root, 'node_modules', '.cache', 'provision');
  const dir = join(cache, buildKey());
  if (existsSync(dir)) return dir;
  mkdirSync(cache, {recursive: true});
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, {recursive: true, force: true});
  try {
    await bundle(tmp);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(dir)) throw e; // another start built the same sources first: use that one
    }
  } finally {
    rmSync(tmp, {recursive: true, force: true});
  }
  // Bundles of older sources: kept a day (a run started from one may still load its lazy chunks);
  // compiled user code (src/cli/usercode.ts) unused for a week: compiled again when next needed.
  const prune = (folder, maxAgeMs, skip) => {
    for (const name of existsSync(folder) ? readdirSync(folder) : []) {
      const p = join(folder, name);
      try {
        if (!skip.includes(name) && Date.now() - statSync(p).mtimeMs > maxAgeMs) rmSync(p, {recursive: true, force: true});
      } catch {
        // removed meanwhile
      }
    }
  };
  prune(cache, 86_400_000, [relative(cache, dir), 'user', 'typecheck']);
  prune(join(cache, 'user'), 7 * 86_400_000, []);
  return dir;
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const dir = await ensureBuild();
  process.stdout.write(`provision: bundle ${relative(process.cwd(), dir) || dir}\n`);
}
