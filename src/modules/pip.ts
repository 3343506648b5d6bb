/**
 * `pip`: Python packages in a virtualenv on the host (Ansible's pip, always with a virtualenv: the
 * system Python of current distributions refuses pip installs, PEP 668).
 *
 * Probe (read-only): whether `<virtualenv>/bin/python` exists, and then that interpreter's
 * `pip list --format=json` (names and versions of everything installed in it).
 *
 * Plan (pure): the virtualenv missing → `python3 -m venv <virtualenv>` first; `present`: one
 * `pip install` of every requirement missing or at another version (`name==version`); `absent`: one
 * `pip uninstall -y` of those installed. Names are compared as PEP 503 says (case-insensitive, runs
 * of `-`, `_` and `.` are one `-`), versions with trailing `.0`s ignored (`1.0` is `1.0.0`).
 *
 * Only `name` and `name==version` are accepted (no ranges, no `latest`): each is either satisfied or
 * not by what `pip list` says, so a converged host runs no pip command and reaches no index.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';

export interface PipArgs {
  /** Requirements: `name` (any version) or `name==version`, e.g. `['requests', 'flask==3.0.3']`. */
  readonly name: readonly string[];
  /** `present` (default): installed (at the version when given); `absent`: uninstalled (with `==version`, only that version). */
  readonly state?: 'present' | 'absent';
  /** Absolute path of the virtualenv; created with `<virtualenvPython> -m venv` when it has no `bin/python`. */
  readonly virtualenv: string;
  /** The interpreter that creates the virtualenv (default `python3`, as the host's PATH finds it). */
  readonly virtualenvPython?: string;
  /** More arguments of `pip install` (not of uninstall), e.g. `['--no-index', '--find-links', '/srv/wheels']`. */
  readonly extraArgs?: readonly string[];
}

const pipArgs = z.strictObject({
  name: z.array(z.string()).check(z.minLength(1)),
  state: z.optional(z.enum(['present', 'absent'])),
  virtualenv: z.string(),
  virtualenvPython: z.optional(z.string()),
  extraArgs: z.optional(z.array(z.string())),
});
const pipInSync: Exact<z.infer<typeof pipArgs>, PipArgs> = true;

/** What the probe found. */
export type PipState =
  | {readonly kind: 'novenv'}
  /** The virtualenv's packages: PEP 503 name → version. */
  | {readonly kind: 'venv'; readonly packages: ReadonlyMap<string, string>}
  /** The interpreter is there but pip could not list (pip missing from the venv, a broken venv). */
  | {readonly kind: 'error'; readonly message: string};

/** A requirement as written: its name (as given), its PEP 503 name, the pinned version if any. */
export interface Requirement {
  readonly spec: string;
  readonly name: string;
  readonly key: string;
  readonly version?: string;
}

/** PEP 503 normalised name: lower case, runs of `-`, `_`, `.` as one `-`. */
export const normalizeName = (name: string): string => name.replace(/[-_.]+/g, '-').toLowerCase();

const nameRe = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** Pure: a requirement, or why it is not one this module accepts. */
export function parseRequirement(spec: string): Requirement | string {
  const s = spec.trim();
  const m = /^([^=<>!~\s[;@]+)(?:\s*==\s*(\S+))?$/.exec(s);
  if (!m || !nameRe.test(m[1] ?? '')) return `'${spec}': expected a name or name==version (no ranges, extras or URLs)`;
  const name = m[1] ?? '';
  const version = m[2];
  if (version !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/.test(version)) return `'${spec}': '${version}' is not a version`;
  return {spec: version === undefined ? name : `${name}==${version}`, name, key: normalizeName(name), ...(version === undefined ? {} : {version})};
}

/** Versions equal as far as this module compares: case-insensitive, trailing `.0` release parts ignored. */
export function sameVersion(a: string, b: string): boolean {
  const norm = (v: string): string => {
    const m = /^(\d+(?:\.\d+)*)(.*)$/.exec(v.toLowerCase());
    if (!m) return v.toLowerCase();
    return `${(m[1] ?? '').split('.').map(Number).join('.').replace(/(\.0)+$/, '')}${m[2] ?? ''}`;
  };
  return norm(a) === norm(b);
}

export const pythonOf = (venv: string): string => `${venv.replace(/\/+$/, '')}/bin/python`;

/** The probe: `novenv`, or `ok` and pip's JSON, or `err` and pip's message. */
export function pipProbeScript(a: PipArgs): string {
  const py = q(pythonOf(a.virtualenv));
  const list = `${py} -m pip list --format=json --disable-pip-version-check --no-color --no-input`;
  return [
    `if [ ! -x ${py} ]; then echo novenv`,
    `elif json=$(${list} 2>/dev/null); then printf 'ok\\n%s\\n' "$json"`,
    // Only when it failed: again, for its message.
    `else printf 'err\\n%s\\n' "$(${list} 2>&1)"; fi`,
  ].join('\n');
}

/** Pure parser of `pipProbeScript`'s output. */
export function parsePip(stdout: string): PipState {
  const nl = stdout.indexOf('\n');
  const head = (nl < 0 ? stdout : stdout.slice(0, nl)).trim();
  const body = nl < 0 ? '' : stdout.slice(nl + 1).trim();
  if (head === 'novenv') return {kind: 'novenv'};
  if (head !== 'ok') return {kind: 'error', message: body.split('\n').slice(-3).join(' ') || 'pip list failed'};
  try {
    const list = JSON.parse(body) as unknown;
    if (!Array.isArray(list)) throw new Error('not a list');
    const packages = new Map<string, string>();
    for (const p of list as Array<{name?: unknown; version?: unknown}>) {
      if (typeof p.name === 'string' && typeof p.version === 'string') packages.set(normalizeName(p.name), p.version);
    }
    return {kind: 'venv', packages};
  } catch {
    return {kind: 'error', message: `pip list printed no JSON: ${body.slice(0, 200)}`};
  }
}

const listed = (reqs: readonly Requirement[], packages: ReadonlyMap<string, string>): string =>
  reqs.map((r) => (packages.has(r.key) ? `${r.name}==${packages.get(r.key) ?? ''}\n` : `${r.name} (not installed)\n`)).join('');

export const pipModule: ModuleDef<PipArgs, PipState> = {
  name: 'pip',
  schema: pipArgs,
  describe: (a) => `${a.name.join(', ')} in ${a.virtualenv}${(a.state ?? 'present') === 'absent' ? ' absent' : ''}`,
  probe: (a) => ({script: pipProbeScript(a), parse: (out) => parsePip(out.stdout)}),
  plan(have, a): Plan {
    if (!a.virtualenv.startsWith('/')) return {steps: [], fail: `virtualenv must be an absolute path, got '${a.virtualenv}'`};
    const parsed = a.name.map(parseRequirement);
    const bad = parsed.filter((r): r is string => typeof r === 'string');
    if (bad.length > 0) return {steps: [], fail: bad.join('; ')};
    const reqs = parsed as Requirement[];
    const absent = (a.state ?? 'present') === 'absent';
    const py = pythonOf(a.virtualenv);
    if (have.kind === 'error') return {steps: [], fail: `cannot list the packages of ${a.virtualenv}: ${have.message}`};
    const packages: ReadonlyMap<string, string> = have.kind === 'venv' ? have.packages : new Map();
    if (absent) {
      if (have.kind === 'novenv') return {steps: [], reason: `no virtualenv ${a.virtualenv}`};
      const remove = reqs.filter((r) => {
        const got = packages.get(r.key);
        return got !== undefined && (r.version === undefined || sameVersion(got, r.version));
      });
      if (remove.length === 0) return {steps: [], reason: `not installed: ${reqs.map((r) => r.spec).join(', ')}`};
      return {
        steps: [{kind: 'exec', cmd: argv(py, '-m', 'pip', 'uninstall', '-y', '--disable-pip-version-check', '--no-input', ...remove.map((r) => r.name))}],
        reason: `uninstall ${remove.map((r) => `${r.name}==${packages.get(r.key) ?? ''}`).join(', ')} from ${a.virtualenv}`,
        diff: {path: a.virtualenv, before: listed(remove, packages), after: remove.map((r) => `${r.name} (not installed)\n`).join('')},
      };
    }
    const install = reqs.filter((r) => {
      const got = packages.get(r.key);
      return got === undefined || (r.version !== undefined && !sameVersion(got, r.version));
    });
    const steps: Step[] = [];
    const did: string[] = [];
    if (have.kind === 'novenv') {
      steps.push({kind: 'exec', cmd: argv(a.virtualenvPython ?? 'python3', '-m', 'venv', a.virtualenv)});
      did.push(`create virtualenv ${a.virtualenv}`);
    }
    if (install.length === 0 && steps.length === 0) {
      return {steps: [], reason: `already ${reqs.map((r) => `${r.name}==${packages.get(r.key) ?? ''}`).join(', ')}`};
    }
    if (install.length > 0) {
      steps.push({kind: 'exec', cmd: argv(py, '-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', ...(a.extraArgs ?? []), ...install.map((r) => r.spec))});
      const what = install.map((r) => (packages.has(r.key) ? `${r.name} ${packages.get(r.key) ?? ''} → ${r.version ?? ''}` : r.spec));
      did.push(`install ${what.join(', ')}${have.kind === 'novenv' ? '' : ` in ${a.virtualenv}`}`);
    }
    return {
      steps,
      reason: did.join('; '),
      diff: {path: a.virtualenv, before: have.kind === 'novenv' ? '(no virtualenv)\n' : listed(install, packages), after: install.map((r) => `${r.spec}\n`).join('')},
    };
  },
};

/** Python packages in a virtualenv (created when missing): installed, pinned or removed. */
export const pip = (args: ArgsOf<PipArgs>, options?: TaskOptions): Task => makeTask(pipModule, args, options);

void pipInSync;
