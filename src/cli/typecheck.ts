/**
 * Type-check user TypeScript (a playbook and the roles it loads) before a run. esbuild
 * (src/cli/usercode.ts) strips types without reading them; this is the check it skips, with the
 * compiler options of the user's tsconfig.json, reported as one `file:line:col: TSxxxx: message` line
 * per error.
 *
 * Cached by content, so a run of unchanged code pays nothing: a check writes a manifest to the cache
 * folder naming every file the compiler read outside node_modules (sources, package.json files,
 * tsconfig files) with the sha256 of its bytes, every path it looked for and did not find (an import
 * that did not resolve, an extension probed), and the result. The next call reads the manifest,
 * hashes those files again (29 files and 16 absent paths for this repository's site playbook and
 * roles: ~3 ms) and, when nothing changed, returns the stored result without importing `typescript`
 * at all (that import alone costs ~0.3-0.5 s; a cold check of the site, 3.5-4 s).
 *
 * The manifest's name hashes what is known without the compiler: the roots, the tsconfig.json found
 * (or the default options), the installed TypeScript version and the caller's salt. The compiler
 * options themselves are a function of the tsconfig files (`extends` included), whose hashes are in
 * the manifest; parsing them needs `typescript`, which a cache hit must not load.
 *
 * Not covered: packages (anything under node_modules, @types included) are assumed unchanged
 * between checks; pass a salt (e.g. a hash of the lockfile) to cover them.
 */
import {createHash} from 'node:crypto';
import {existsSync, readFileSync, statSync} from 'node:fs';
import {createRequire} from 'node:module';
import {dirname, join, relative, resolve} from 'node:path';
import type * as TS from 'typescript';
import {writeFileAtomic} from '../core/localfs.ts';
import {projectRoot} from '../core/paths.ts';

export interface TypecheckResult {
  /**
   * One line per error: `file:line:col: TSxxxx: message` (file relative to process.cwd(), message on
   * one line), sorted by file, line and column. An error with no position (a missing root file, a
   * compiler option) has only `file: ` or nothing before the code. Empty: clean.
   */
  readonly errors: readonly string[];
  /** True when the answer came from the cache (nothing was compiled, typescript was not even imported). */
  readonly cached: boolean;
}

export interface TypecheckOptions {
  /** The folder of the manifests (created when missing). */
  readonly cacheDir: string;
  /** Anything else the result depends on (a provision version, a lockfile hash): another salt, another cache entry. */
  readonly salt?: string;
}

/** The compiler options without a tsconfig.json, in tsconfig spelling (hashed as is into the cache key). */
const DEFAULT_OPTIONS = {
  strict: true,
  noEmit: true,
  target: 'ES2022',
  module: 'Preserve',
  moduleResolution: 'Bundler',
  allowImportingTsExtensions: true,
  skipLibCheck: true,
  esModuleInterop: true,
  resolveJsonModule: true,
} as const;

/** Bumped when the manifest's shape or the meaning of its entries changes. */
const FORMAT = 1;

/** An error as stored: positions 1-based, the file absolute (shown relative to the cwd of each call). */
interface StoredError {
  readonly file?: string;
  readonly line?: number;
  readonly col?: number;
  /** `TSxxxx: message`. */
  readonly text: string;
}

interface Manifest {
  readonly format: typeof FORMAT;
  /** The key the manifest's name was derived from (guards against a file copied under another name). */
  readonly key: string;
  /** Every file read, with the sha256 of its bytes. */
  readonly files: readonly (readonly [path: string, sha256: string])[];
  /** Paths looked for as files and not found: one that appears changes what an import resolves to. */
  readonly absentFiles: readonly string[];
  /** The same for folders (resolution skips a folder it does not find, with all its files). */
  readonly absentDirs: readonly string[];
  readonly errors: readonly StoredError[];
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const inNodeModules = (path: string): boolean => path.split(/[\\/]/).includes('node_modules');

const require = createRequire(import.meta.url);

/** The installed TypeScript's version, read from its package.json (the package itself is not loaded). */
function typescriptVersion(): string {
  return (JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')) as {version: string}).version;
}

function isFile(path: string): boolean {
  try {
    return statSync(path, {throwIfNoEntry: false})?.isFile() ?? false;
  } catch {
    return false; // ENOTDIR: a parent is a file
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path, {throwIfNoEntry: false})?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** The nearest tsconfig.json in the folder of `file` or above it. */
function findTsconfig(file: string): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const candidate = join(dir, 'tsconfig.json');
    if (isFile(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

function unchanged(m: Manifest): boolean {
  for (const [path, hash] of m.files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      return false; // deleted, or no longer readable
    }
    if (sha256(bytes) !== hash) return false;
  }
  return !m.absentFiles.some(isFile) && !m.absentDirs.some(isDirectory);
}

function readManifest(path: string, key: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
    return m.format === FORMAT && m.key === key ? m : undefined;
  } catch {
    return undefined; // none yet, or a damaged one: check again
  }
}

function format(errors: readonly StoredError[]): string[] {
  const shown = (file: string): string => relative(process.cwd(), file) || file;
  return errors
    .map((e) => ({where: e.file === undefined ? '' : shown(e.file), line: e.line ?? 0, col: e.col ?? 0, text: e.text}))
    .sort((a, b) => (a.where < b.where ? -1 : a.where > b.where ? 1 : a.line - b.line || a.col - b.col || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0)))
    .map((e) => (e.where === '' ? e.text : e.line === 0 ? `${e.where}: ${e.text}` : `${e.where}:${e.line}:${e.col}: ${e.text}`));
}

/** Type-check `roots` (a playbook and the role files it loads by name) and every file they import. */
export async function typecheck(roots: readonly string[], opts: TypecheckOptions): Promise<TypecheckResult> {
  const [first, ...others] = roots.map((r) => resolve(r));
  if (first === undefined) throw new Error('typecheck: no root files');
  const rootPaths: readonly [string, ...string[]] = [first, ...others];
  const tsconfig = findTsconfig(first);
  const tsVersion = typescriptVersion();
  const key = createHash('sha256')
    .update(JSON.stringify({format: FORMAT, roots: rootPaths, tsconfig: tsconfig ?? null, defaults: tsconfig ? null : DEFAULT_OPTIONS, typescript: tsVersion, salt: opts.salt ?? null}))
    .digest('hex');
  const manifestPath = join(opts.cacheDir, `typecheck-${key.slice(0, 24)}.json`);

  const previous = readManifest(manifestPath, key);
  if (previous && unchanged(previous)) return {errors: format(previous.errors), cached: true};

  const manifest = await check(rootPaths, tsconfig, key);
  try {
    writeFileAtomic(manifestPath, JSON.stringify(manifest));
  } catch {
    // A cache that cannot be written only costs the next run a check: the result stands.
  }
  return {errors: format(manifest.errors), cached: false};
}

/** Compile (nothing is emitted) and collect the errors and every input, for the manifest. */
async function check(roots: readonly [string, ...string[]], tsconfig: string | undefined, key: string): Promise<Manifest> {
  const ts = (await import('typescript')).default;
  const files = new Map<string, string>();
  const absentFiles = new Set<string>();
  const absentDirs = new Set<string>();
  const done = (errors: StoredError[]): Manifest => ({
    format: FORMAT,
    key,
    files: [...files].sort(([a], [b]) => (a < b ? -1 : 1)),
    absentFiles: [...absentFiles].sort(),
    absentDirs: [...absentDirs].sort(),
    errors,
  });
  /** The diagnostic as stored; `fallback` names the file of one without a file of its own. */
  const stored = (d: TS.Diagnostic, fallback?: string): StoredError => {
    const text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n').replace(/\s*\n\s*/g, ' ')}`;
    if (d.file && d.start !== undefined) {
      const {line, character} = d.file.getLineAndCharacterOfPosition(d.start);
      return {file: resolve(d.file.fileName), line: line + 1, col: character + 1, text};
    }
    const file = d.file?.fileName ?? fallback;
    return file === undefined ? {text} : {file: resolve(file), text};
  };
  const errorsOf = (ds: readonly TS.Diagnostic[], fallback?: string): StoredError[] =>
    ds.filter((d) => d.category === ts.DiagnosticCategory.Error).map((d) => stored(d, fallback));

  let libDir = '';
  /** Read as TypeScript's sys.readFile does, recording the bytes' hash (`always`: even under node_modules). */
  const readFile = (path: string, always = false): string | undefined => {
    const keep = always || (!inNodeModules(path) && (libDir === '' || !resolve(path).startsWith(libDir)));
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      if (keep) absentFiles.add(resolve(path));
      return undefined;
    }
    if (keep) files.set(resolve(path), sha256(bytes));
    if (bytes.length >= 2 && ((bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0xff && bytes[1] === 0xfe))) {
      return ts.sys.readFile(path); // UTF-16: rare enough to read twice
    }
    return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.toString('utf8', 3) : bytes.toString('utf8');
  };
  const fileExists = (path: string): boolean => {
    const found = ts.sys.fileExists(path);
    if (!found && !inNodeModules(path)) absentFiles.add(resolve(path));
    return found;
  };
  const directoryExists = (path: string): boolean => {
    const found = ts.sys.directoryExists(path);
    if (!found && !inNodeModules(path)) absentDirs.add(resolve(path));
    return found;
  };

  let options: TS.CompilerOptions;
  if (tsconfig === undefined) {
    // No tsconfig (a playbook outside any project): node's types from the nearest node_modules, else
    // from provision's own installation (it depends on @types/node).
    options = {...ts.convertCompilerOptionsFromJson(DEFAULT_OPTIONS, process.cwd()).options, typeRoots: typeRoots(roots[0])};
  } else {
    const read = ts.readConfigFile(tsconfig, (path) => readFile(path, true));
    if (read.error) return done(errorsOf([read.error], tsconfig));
    const config: unknown = read.config;
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      return done([{file: tsconfig, text: 'not a JSON object'}]);
    }
    // The roots are the program's files: the tsconfig's own list is ignored (and never enumerated).
    const {files: _files, include: _include, references: _references, ...rest} = config as Record<string, unknown>;
    const parsed = ts.parseJsonConfigFileContent(rest, {
      useCaseSensitiveFileNames: ts.sys.useCaseSensitiveFileNames,
      readDirectory: () => [],
      fileExists,
      readFile: (path) => readFile(path, true), // a tsconfig extended from a package is consulted too
    }, dirname(tsconfig), undefined, tsconfig);
    // 18002/18003: the file list is empty, which is the point.
    const configErrors = errorsOf(parsed.errors.filter((d) => d.code !== 18002 && d.code !== 18003), tsconfig);
    if (configErrors.length > 0) return done(configErrors);
    options = parsed.options;
  }
  options = {...options, noEmit: true};
  delete options.emitDeclarationOnly; // cannot be combined with noEmit

  const host = ts.createCompilerHost(options);
  libDir = resolve(dirname(host.getDefaultLibFileName(options)));
  host.readFile = (path) => readFile(path);
  host.fileExists = fileExists;
  host.directoryExists = directoryExists;
  const program = ts.createProgram({rootNames: roots, options, host});

  // What `tsc --noEmit` prints: syntax errors first; the options, and then the types, only when there
  // are none (a type error after a parse error is mostly the parser's recovery talking).
  const mine = program.getSourceFiles().filter((f) => !f.isDeclarationFile && !inNodeModules(f.fileName));
  let errors = errorsOf(mine.flatMap((f) => program.getSyntacticDiagnostics(f)));
  if (errors.length === 0) errors = errorsOf([...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]);
  if (errors.length === 0) errors = errorsOf(mine.flatMap((f) => program.getSemanticDiagnostics(f)));
  return done(errors);
}

/** Every node_modules/@types folder from `file` up, then provision's own (installed or hoisted beside it). */
function typeRoots(file: string): string[] {
  const out: string[] = [];
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    out.push(join(dir, 'node_modules', '@types'));
    if (dirname(dir) === dir) break;
  }
  out.push(join(projectRoot, 'node_modules', '@types'), join(dirname(projectRoot), '@types'));
  return [...new Set(out)].filter((d) => existsSync(d));
}
