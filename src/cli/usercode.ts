/**
 * User TypeScript (playbooks, roles) for a process that runs from the prebuilt bundle
 * (bin/build.mjs): each file is bundled by esbuild, with the relative modules it imports, into plain
 * JS under node_modules/.cache/provision/user/ and imported from there. A file unchanged since (every
 * input's size and mtime, per a manifest) is imported straight from the cache: no compiler and no
 * loader hooks in the run at all, where tsx cost ~0.15 s at every start.
 *
 * The user's `import ... from '<provision>/src/index.ts'` becomes an import of the bundle's index.mjs
 * (one copy of provision's modules for the CLI and user code); packages stay imports, resolved from
 * the user file's folder; `import.meta.url`, `.dirname` and `.filename` keep naming the source file.
 */
import {createHash} from 'node:crypto';
import {existsSync, readFileSync, statSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join, relative, resolve} from 'node:path';
import {pathToFileURL} from 'node:url';
import {parseError} from '../core/errors.ts';
import {projectRoot} from '../core/paths.ts';
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

/** The file URL to import for user TypeScript `path`, compiled first when it (or an import) changed. */
export async function compiledUserModule(path: string, bundle: string): Promise<string> {
  const dir = join(bundle, '..', 'user');
  const id = createHash('sha256').update(path).digest('hex').slice(0, 16);
  const manifestPath = join(dir, `${id}.json`);
  try {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    if (fresh(m, bundle, dir)) return pathToFileURL(join(dir, m.out)).href;
  } catch {
    // no manifest yet, or a damaged one: compile
  }
  const {build} = await import('esbuild');
  const srcIndex = join(projectRoot, 'src', 'index.ts');
  const bundleIndex = join(bundle, 'index.mjs');
  let result;
  try {
    result = await build({
      entryPoints: [path],
      bundle: true,
      write: false,
      metafile: true,
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
            if (/^[./]/.test(args.path)) {
              return resolve(args.resolveDir, args.path) === srcIndex ? {path: bundleIndex, external: true} : undefined;
            }
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
  const code = result.outputFiles[0].text;
  const out = `${id}-${createHash('sha256').update(code).digest('hex').slice(0, 12)}.mjs`;
  if (!existsSync(join(dir, out))) writeFileAtomic(join(dir, out), code);
  const inputs = Object.keys(result.metafile.inputs).map((f) => stamp(resolve(dirname(path), f))).filter((s) => s !== undefined);
  writeFileAtomic(manifestPath, JSON.stringify({bundle, inputs, out} satisfies Manifest));
  return pathToFileURL(join(dir, out)).href;
}
