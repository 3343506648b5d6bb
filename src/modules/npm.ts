/**
 * `npm`: Node.js packages in a folder or global (Ansible's npm), with the host's `npm`.
 *
 * Probe (read-only): `npm ls --json --depth=0` of the folder (`--prefix <path>`, so npm never walks
 * up to a parent project) or of the global tree (`-g`): names and versions of the top-level packages.
 *
 * Plan (pure): `present`: one `npm install` of every package missing, or at another version when the
 * spec pins an exact version (`left-pad@1.3.0`); a folder that does not exist is made first (`mkdir
 * -p`). `absent`: one `npm uninstall` of those installed. In a folder, npm records them in its
 * package.json as it always does (that is what keeps a later install from pruning them).
 *
 * A spec that is not an exact version (a range, a tag, `file:…`, a URL) is satisfied by the package
 * being installed at any version: the module compares what `npm ls` says, it never asks a registry,
 * so a converged host runs no npm command but the probe.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';

export interface NpmArgs {
  /**
   * Packages: `name`, `@scope/name`, optionally with `@spec`: an exact version (`left-pad@1.3.0`,
   * compared), or any other npm spec (`^1.2`, `latest`, `file:/srv/pkg.tgz`: installed when missing).
   */
  readonly name: readonly string[];
  /** Absolute path of the folder (its `node_modules`; made when missing). Unset: the global packages (`-g`). */
  readonly path?: string;
  /** `present` (default) or `absent`. */
  readonly state?: 'present' | 'absent';
  /** The registry URL for installs (`--registry`). Unset: npm's configuration. */
  readonly registry?: string;
  /** More arguments of `npm install` (not of uninstall), e.g. `['--offline']` or `['--omit=dev']`. */
  readonly extraArgs?: readonly string[];
}

const npmArgs = z.strictObject({
  name: z.array(z.string()).check(z.minLength(1)),
  path: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
  registry: z.optional(z.string()),
  extraArgs: z.optional(z.array(z.string())),
});
const npmInSync: Exact<z.infer<typeof npmArgs>, NpmArgs> = true;

/** What the probe found. */
export type NpmState =
  | {readonly kind: 'nonpm'}
  /** `path` does not exist. */
  | {readonly kind: 'nodir'}
  /** Top-level packages: name → version. */
  | {readonly kind: 'tree'; readonly packages: ReadonlyMap<string, string>}
  | {readonly kind: 'error'; readonly message: string};

/** A package as written: its name, the spec after `@` if any, and whether that spec is an exact version. */
export interface NpmSpec {
  readonly spec: string;
  readonly name: string;
  readonly range?: string;
  readonly exact: boolean;
}

const nameRe = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/i;
const exactRe = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** Pure: `name[@spec]` split, or why it is not a package spec this module takes. */
export function parseNpmSpec(spec: string): NpmSpec | string {
  const s = spec.trim();
  const at = s.indexOf('@', s.startsWith('@') ? 1 : 0);
  const name = at < 0 ? s : s.slice(0, at);
  const range = at < 0 ? undefined : s.slice(at + 1);
  if (!nameRe.test(name)) return `'${spec}': expected a package name (optionally @scope/), then optionally @version or @spec`;
  if (range !== undefined && (range === '' || /\s/.test(range))) return `'${spec}': empty or spaced spec after '@'`;
  return {spec: s, name, ...(range === undefined ? {} : {range}), exact: range !== undefined && exactRe.test(range)};
}

const where = (a: NpmArgs): string[] => (a.path === undefined ? ['-g'] : ['--prefix', a.path]);
const place = (a: NpmArgs): string => a.path ?? 'the global packages';

/** The probe: `nonpm`, `nodir`, or `ok` then `npm ls`'s JSON (npm exits 1 for a tree with problems: the JSON still says what is there). */
export function npmProbeScript(a: NpmArgs): string {
  const ls = ['npm', 'ls', '--json', '--depth=0', '--no-update-notifier', ...where(a)].map(q).join(' ');
  return [
    'if ! command -v npm >/dev/null 2>&1; then echo nonpm',
    ...(a.path === undefined ? [] : [`elif [ ! -d ${q(a.path)} ]; then echo nodir`]),
    `else echo ok; ${ls} 2>/dev/null; echo; fi`,
  ].join('\n');
}

/** Pure parser of `npmProbeScript`'s output. */
export function parseNpm(stdout: string): NpmState {
  const nl = stdout.indexOf('\n');
  const head = (nl < 0 ? stdout : stdout.slice(0, nl)).trim();
  const body = nl < 0 ? '' : stdout.slice(nl + 1).trim();
  if (head === 'nonpm') return {kind: 'nonpm'};
  if (head === 'nodir') return {kind: 'nodir'};
  try {
    const tree = JSON.parse(body || '{}') as {dependencies?: Record<string, {version?: unknown; missing?: unknown}>; error?: {summary?: unknown}};
    if (tree.error && !tree.dependencies) return {kind: 'error', message: String(tree.error.summary ?? 'npm ls failed')};
    const packages = new Map<string, string>();
    for (const [name, dep] of Object.entries(tree.dependencies ?? {})) {
      if (dep.missing !== true && typeof dep.version === 'string') packages.set(name, dep.version);
    }
    return {kind: 'tree', packages};
  } catch {
    return {kind: 'error', message: `npm ls printed no JSON: ${body.slice(0, 200)}`};
  }
}

const listed = (specs: readonly NpmSpec[], packages: ReadonlyMap<string, string>): string =>
  specs.map((s) => (packages.has(s.name) ? `${s.name}@${packages.get(s.name) ?? ''}\n` : `${s.name} (not installed)\n`)).join('');

const quiet = ['--no-audit', '--no-fund', '--no-update-notifier'];

export const npmModule: ModuleDef<NpmArgs, NpmState> = {
  name: 'npm',
  schema: npmArgs,
  describe: (a) => `${a.name.join(', ')}${a.path === undefined ? ' (global)' : ` in ${a.path}`}${(a.state ?? 'present') === 'absent' ? ' absent' : ''}`,
  probe: (a) => ({script: npmProbeScript(a), parse: (out) => parseNpm(out.stdout)}),
  plan(have, a): Plan {
    if (a.path !== undefined && !a.path.startsWith('/')) return {steps: [], fail: `path must be an absolute path, got '${a.path}'`};
    const parsed = a.name.map(parseNpmSpec);
    const bad = parsed.filter((s): s is string => typeof s === 'string');
    if (bad.length > 0) return {steps: [], fail: bad.join('; ')};
    const specs = parsed as NpmSpec[];
    if (have.kind === 'nonpm') return {steps: [], fail: 'npm is not installed on the host'};
    if (have.kind === 'error') return {steps: [], fail: `cannot list the packages of ${place(a)}: ${have.message}`};
    const packages: ReadonlyMap<string, string> = have.kind === 'tree' ? have.packages : new Map();
    if ((a.state ?? 'present') === 'absent') {
      const remove = specs.filter((s) => packages.has(s.name) && (!s.exact || packages.get(s.name) === s.range));
      if (remove.length === 0) return {steps: [], reason: `not installed: ${specs.map((s) => s.spec).join(', ')}`};
      return {
        steps: [{kind: 'exec', cmd: argv('npm', 'uninstall', ...where(a), ...quiet, ...remove.map((s) => s.name))}],
        reason: `uninstall ${remove.map((s) => `${s.name}@${packages.get(s.name) ?? ''}`).join(', ')} from ${place(a)}`,
        diff: {path: place(a), before: listed(remove, packages), after: remove.map((s) => `${s.name} (not installed)\n`).join('')},
      };
    }
    const install = specs.filter((s) => !packages.has(s.name) || (s.exact && packages.get(s.name) !== s.range));
    if (install.length === 0) return {steps: [], reason: `already ${specs.map((s) => `${s.name}@${packages.get(s.name) ?? ''}`).join(', ')}`};
    const steps: Step[] = [];
    if (have.kind === 'nodir' && a.path !== undefined) steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '--', a.path)});
    steps.push({kind: 'exec', cmd: argv('npm', 'install', ...where(a), ...quiet, ...(a.registry === undefined ? [] : ['--registry', a.registry]), ...(a.extraArgs ?? []), ...install.map((s) => s.spec))});
    const what = install.map((s) => (packages.has(s.name) ? `${s.name} ${packages.get(s.name) ?? ''} → ${s.range ?? ''}` : s.spec));
    return {
      steps,
      reason: `install ${what.join(', ')} in ${place(a)}`,
      diff: {path: place(a), before: listed(install, packages), after: install.map((s) => `${s.spec}\n`).join('')},
    };
  },
};

/** Node.js packages in a folder or global: installed (at a version) or removed. */
export const npm = (args: ArgsOf<NpmArgs>, options?: TaskOptions): Task => makeTask(npmModule, args, options);

void npmInSync;
