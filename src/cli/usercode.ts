/**
 * User TypeScript (playbooks, roles) for a process that runs from the prebuilt bundle
 * (bin/build.mjs): each file is bundled by esbuild, with the relative modules it imports, into plain
 * JS under node_modules/.cache/provision/user/ and imported from there. A file unchanged since (every
 * input's size and mtime, per a manifest) is imported straight from the cache: no compiler and no
 * loader hooks in the run at all, where tsx cost ~0.15 s at every start.
 *
 * The user's `import ... from 'provision'` (and `'<provision>/src/index.ts'`) becomes an import of the
 * running bundle's index.mjs, `'provision/roles'` of its roles.mjs: one copy of provision's modules for
 * the CLI and user code, whatever provision the user's project has installed and whatever its package
 * type. Other packages stay imports, resolved from the user file's folder; `import.meta.url`,
 * `.dirname` and `.filename` keep naming the source file. The output carries an inline source map,
 * which src/core/task.ts reads to say where (the user's .ts file and line) a task was written.
 *
 * The cache: node_modules/.cache/provision/user/ of the current project (src/core/paths.ts userCacheDir).
 */
import {createHash} from 'node:crypto';
import {existsSync, readFileSync, readdirSync, rmSync, statSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join, relative, resolve} from 'node:path';
import {pathToFileURL} from 'node:url';
import {parseError} from '../core/errors.ts';
import {projectRoot, userCacheDir} from '../core/paths.ts';
import {writeFileAtomic} from '../core/localfs.ts';

interface Manifest {
  readonly bundle: string;
  readonly inputs: readonly (readonly [string, number, number])[];
  readonly out: string;
}

const stamp = (file: string): [string, number, number] | undefined => {
  try {
    const s = statSync(file);
    return [file, s.mtimeMs, s.size];
  } catch {
    return undefined;
  }
};

function fresh(m: Manifest, bundle: string, dir: string): boolean {
  if (m.bundle !== bundle || !existsSync(join(dir, m.out))) return false;
  return m.inputs.every(([file, mtime, size]) => {
    const s = stamp(file);
    return s !== undefined && s[1] === mtime && s[2] === size;
  });
}

/** Where `import ... from spec` goes when it names provision: the bundle's entry (undefined: not provision). */
function provisionEntry(spec: string, resolveDir: string, bundle: string): string | undefined {
  if (spec === 'provision') return join(bundle, 'index.mjs');
  if (spec === 'provision/roles') return join(bundle, 'roles.mjs');
  if (!/^[./]/.test(spec)) return undefined;
  const target = resolve(resolveDir, spec);
  if (target === join(projectRoot, 'src', 'index.ts')) return join(bundle, 'index.mjs');
  if (target === join(projectRoot, 'roles', 'index.ts')) return join(bundle, 'roles.mjs');
  return undefined;
}

/** The file URL to import for user TypeScript `path`, compiled first when it (or an import) changed. */
export async function compiledUserModule(path: string, bundle: string): Promise<string> {
  const dir = userCacheDir('user');
  const id = createHash('sha256').update(path).digest('hex').slice(0, 16);
  const manifestPath = join(dir, `${id}.json`);
  try {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    if (fresh(m, bundle, dir)) return pathToFileURL(join(dir, m.out)).href;
  } catch {
    // no manifest yet, or a damaged one: compile
  }
  const {build} = await import('esbuild');
  let result;
  try {
    result = await build({
      entryPoints: [path],
      bundle: true,
      write: false,
      metafile: true,
      // The map is made absolute and inlined below (the cache folder may be reached through a link).
      outfile: join(dir, `${id}.mjs`),
      sourcemap: 'external',
      sourcesContent: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
      absWorkingDir: dirname(path),
      plugins: [{
        name: 'provision-user-code',
        setup(b) {
          b.onResolve({filter: /.*/}, (args) => {
            if (args.kind === 'entry-point') return undefined;
            if (args.path.startsWith('node:')) return {path: args.path, external: true};
            const entry = provisionEntry(args.path, args.resolveDir, bundle);
            if (entry) return {path: entry, external: true};
            if (/^[./]/.test(args.path)) return undefined;
            // A package: imported from where the user's file would have found it.
            try {
              return {path: createRequire(join(args.resolveDir, 'noop.js')).resolve(args.path), external: true};
            } catch {
              return {path: args.path, external: true};
            }
          });
          b.onLoad({filter: /\.[cm]?[jt]sx?$/}, (args) => {
            const text = readFileSync(args.path, 'utf8')
              .replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href))
              .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dirname(args.path)))
              .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(args.path));
            const ext = /\.([cm]?)([jt]sx?)$/.exec(args.path)![2];
            return {contents: text, loader: ext as 'ts' | 'tsx' | 'js' | 'jsx'};
          });
        },
      }],
    });
  } catch (e) {
    const err = (e as {errors?: {text: string; location?: {file: string; line: number} | null}[]}).errors?.[0];
    const shown = (f: string): string => relative(process.cwd(), f) || f;
    if (err) throw parseError(err.text, err.location ? {file: shown(resolve(dirname(path), err.location.file)), line: err.location.line} : {file: shown(path)});
    throw e;
  }
  const code = withInlineMap(result.outputFiles, join(dir, `${id}.mjs`));
  const out = `${id}-${createHash('sha256').update(code).digest('hex').slice(0, 12)}.mjs`;
  if (!existsSync(join(dir, out))) writeFileAtomic(join(dir, out), code);
  pruneOlder(dir, id, out);
  const inputs = Object.keys(result.metafile.inputs).map((f) => stamp(resolve(dirname(path), f))).filter((s) => s !== undefined);
  writeFileAtomic(manifestPath, JSON.stringify({bundle, inputs, out} satisfies Manifest));
  return pathToFileURL(join(dir, out)).href;
}

/**
 * The compiled code with its source map inline, the map's sources absolute: a frame of this file maps
 * to the user's own .ts path (src/core/task.ts), wherever the cache folder really is.
 */
function withInlineMap(files: readonly {path: string; text: string}[], outfile: string): string {
  const js = files.find((f) => f.path.endsWith('.mjs'))!;
  const map = files.find((f) => f.path.endsWith('.map'));
  const code = js.text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
  if (!map) return code;
  const json = JSON.parse(map.text) as {sources: string[]};
  json.sources = json.sources.map((s) => pathToFileURL(resolve(dirname(outfile), s)).href);
  return `${code}//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(json)).toString('base64')}\n`;
}

/** Drop earlier compilations of the same file, those over 10 minutes old (a newer one may be what a concurrent run is about to import). */
function pruneOlder(dir: string, id: string, keep: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(`${id}-`) || name === keep) continue;
    try {
      if (Date.now() - statSync(join(dir, name)).mtimeMs > 600_000) rmSync(join(dir, name), {force: true});
    } catch {
      // removed meanwhile
    }
  }
}
