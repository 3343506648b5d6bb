/**
 * The watcher's release: what the monitoring host needs to run `provision watch` from the project the
 * controller runs from, in one archive.
 *
 * - The project's files, walked from its root, without the names in `exclude` (any path segment,
 *   `*` a wildcard: `.git`, `.lab`, `*.retry`…), then the `include` paths (relative to the root) put
 *   back even where excluded (the vault password file, a CA the inventory names).
 * - `node_modules/`: the packages package-lock.json lists for production (not `dev`; all of them when
 *   provision itself is a dev dependency), where present on disk (an optional package of another
 *   platform is not); without a package-lock.json, all of it. Never `.bin/` or `.cache/`.
 * - The controller's Node.js binary, as `node_modules/.provision-node/node` (no package of the lock,
 *   so the walk of an unpacked release does not meet it).
 *
 * Its key hashes every entry's path, size, mtime (whole seconds: tar keeps no more) and symbolic link
 * target, and Node's version and binary. The same walk over an unpacked release gives the same key,
 * so a watcher that checks the site (the role included) finds its own release in place: no drift.
 */
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {basename, dirname, join, sep} from 'node:path';

export interface ReleaseSpec {
  /** The project's root (its package.json's folder). */
  readonly root: string;
  /** Names left out wherever they are (a path segment; `*` matches any characters). */
  readonly exclude: readonly string[];
  /** Paths relative to `root` put back (files or folders), even where `exclude` left them out. */
  readonly include: readonly string[];
  /** The Node.js binary to ship (default: the one running). */
  readonly node?: string;
  /**
   * provision's own folder in the project (`node_modules/provision`): when the lock has it as a dev
   * dependency, the dev packages are shipped too (it needs its dependencies, which are dev then).
   */
  readonly provision?: string;
}

/** Where the binary lands inside the release. */
export const nodeInRelease = 'node_modules/.provision-node/node';

const globRe = (p: string): RegExp => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

function walk(root: string, dir: string, skip: (rel: string, name: string) => boolean, out: Set<string>): void {
  let entries;
  try {
    entries = readdirSync(join(root, dir), {withFileTypes: true});
  } catch {
    return;
  }
  for (const e of entries) {
    const rel = dir === '' ? e.name : `${dir}/${e.name}`;
    if (skip(rel, e.name)) continue;
    if (e.isDirectory()) walk(root, rel, skip, out);
    else if (e.isFile() || e.isSymbolicLink()) out.add(rel);
  }
}

/** The production packages' folders (`node_modules/a`, `node_modules/a/node_modules/b`) from package-lock.json; undefined without one. */
function productionPackages(root: string, provision: string | undefined): string[] | undefined {
  const lock = join(root, 'package-lock.json');
  if (!existsSync(lock)) return undefined;
  const packages = (JSON.parse(readFileSync(lock, 'utf8')) as {packages?: Record<string, {dev?: boolean; link?: boolean}>}).packages;
  if (!packages) return undefined;
  const withDev = provision !== undefined && packages[provision]?.dev === true;
  return Object.entries(packages)
    .filter(([k, v]) => k.startsWith('node_modules/') && (withDev || !v.dev) && !v.link)
    .map(([k]) => k)
    .filter((k) => existsSync(join(root, k)));
}

/** Every file and symbolic link of the release but Node's binary, relative to the root, sorted. */
export function releaseFiles(spec: ReleaseSpec): string[] {
  const excluded = spec.exclude.map(globRe);
  const isExcluded = (name: string): boolean => excluded.some((re) => re.test(name));
  const out = new Set<string>();
  walk(spec.root, '', (rel, name) => rel === 'node_modules' || isExcluded(name), out);
  const pkgs = productionPackages(spec.root, spec.provision);
  const modules = (rel: string, name: string): boolean => name === '.bin' || name === '.cache' || name === '.provision-node' || isExcluded(name);
  if (pkgs === undefined) walk(spec.root, 'node_modules', modules, out);
  else for (const p of pkgs) walk(spec.root, p, (rel, name) => name === 'node_modules' || modules(rel, name), out);
  for (const inc of spec.include) {
    const rel = inc.split(sep).join('/').replace(/^\.\/|\/$/g, '');
    if (rel === '' || rel.startsWith('../') || rel.startsWith('/')) throw new Error(`provision_watch_include: '${inc}' is not a path inside the project`);
    const st = lstatSync(join(spec.root, rel), {throwIfNoEntry: false});
    if (!st) throw new Error(`provision_watch_include: '${inc}' does not exist in ${spec.root}`);
    if (st.isDirectory()) walk(spec.root, rel, () => false, out);
    else out.add(rel);
  }
  out.delete(basename(spec.node ?? process.execPath));
  return [...out].sort();
}

/** The release's key: 16 hex digits over every entry (path, size, mtime in seconds, link target) and Node. */
export function releaseKey(spec: ReleaseSpec, files: readonly string[]): string {
  const h = createHash('sha256');
  for (const rel of files) {
    const p = join(spec.root, rel);
    const st = lstatSync(p);
    h.update(`${rel}\0${st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : `${st.size} ${Math.floor(st.mtimeMs / 1000)}`}\n`);
  }
  const node = realpathSync(spec.node ?? process.execPath);
  const st = statSync(node);
  h.update(`node ${process.version} ${st.size} ${Math.floor(st.mtimeMs / 1000)}\n`);
  return h.digest('hex').slice(0, 16);
}

/**
 * The release's archive (`<cache>/<key>.tar.gz`, mode 0600: it may hold the vault's password file),
 * built with GNU tar when missing. Written to a temp file and renamed, so a concurrent run never reads
 * half of one; older archives in `cache` are removed.
 */
export function releaseArchive(spec: ReleaseSpec, cache: string): {key: string; archive: string; files: number} {
  const files = releaseFiles(spec);
  const key = releaseKey(spec, files);
  const archive = join(cache, `${key}.tar.gz`);
  if (existsSync(archive)) return {key, archive, files: files.length};
  mkdirSync(cache, {recursive: true, mode: 0o700});
  const list = join(cache, `.${key}.${process.pid}.list`);
  const tmp = join(cache, `.${key}.${process.pid}.tmp`);
  // The folders too (tar would create missing ones as root, and unarchive's owner applies to entries only).
  const dirs = new Set<string>();
  for (const f of files) for (let d = dirname(f); d !== '.' && !dirs.has(d); d = dirname(d)) dirs.add(d);
  writeFileSync(list, [...[...dirs].sort(), ...files].map((f) => `${f}\0`).join(''), {mode: 0o600});
  const node = realpathSync(spec.node ?? process.execPath);
  try {
    writeFileSync(tmp, '', {mode: 0o600});
    // gzip -1: a third of default gzip's time for 5% more bytes (most of them the Node binary).
    execFileSync('tar', [
      '--create', '--file', tmp, '--use-compress-program', 'gzip -1', '--no-recursion',
      '-C', spec.root, '--null', '--files-from', list,
      '--transform', `s,^${basename(node).replace(/[.^$*[\]\\]/g, '\\$&')}$,${nodeInRelease},SH`,
      '-C', dirname(node), basename(node),
    ], {stdio: ['ignore', 'ignore', 'pipe']});
    renameSync(tmp, archive);
  } finally {
    rmSync(list, {force: true});
    rmSync(tmp, {force: true});
  }
  for (const old of readdirSync(cache)) if (old.endsWith('.tar.gz') && old !== basename(archive)) rmSync(join(cache, old), {force: true});
  return {key, archive, files: files.length};
}
