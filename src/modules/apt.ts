/**
 * `apt`: Debian packages present, absent or at the candidate version, with an `apt-get update` only
 * when the package lists are older than `cacheValidTime`. One probe reads dpkg's status of every named
 * package, the age of the lists and (for `latest`) apt's candidate versions; the plan is one
 * `apt-get` call for every package that needs action. Every apt-get call waits up to `lockTimeout`
 * seconds for the locks of other package managers (unattended-upgrades, another apt-get), as Ansible's
 * `lock_timeout`, and the task's message says what it waited for.
 */
import {argv, q} from '../core/cmd.ts';
import {group} from '../shared/match.ts';
import {makeTask, TaskArgumentError, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Step, Task, TaskOptions, Vars} from '../core/types.ts';

export interface AptArgs {
  /**
   * Package names, optionally pinned to an exact version (`nginx=1.22.1-9`) or qualified with an
   * architecture (`libc6:i386`). A string may hold several names separated by commas or spaces.
   * An empty list with `updateCache: true` only refreshes the lists.
   */
  readonly packages: string | readonly string[];
  /**
   * `present` (default): installed, at the pinned version if one is given; `latest`: installed and at
   * apt's candidate version; `absent`: removed (only when at the pinned version, if one is given).
   */
  readonly state?: 'present' | 'absent' | 'latest';
  /**
   * `true`: run `apt-get update` when the lists are older than `cacheValidTime`. Unset: do so only
   * when a package must be installed or upgraded. `false`: never update.
   */
  readonly updateCache?: boolean;
  /** Lists younger than this many seconds count as fresh (default 3600; 0 updates every time). */
  readonly cacheValidTime?: number;
  /** Install recommended packages too (default false: `--no-install-recommends`). */
  readonly installRecommends?: boolean;
  /** With `state: 'absent'`: purge configuration files too (also purges packages left in `config-files` state). */
  readonly purge?: boolean;
  /**
   * Seconds every apt-get call waits for the package manager's locks held by another process
   * (unattended-upgrades, another apt-get): `-o DPkg::Lock::Timeout`, and a retry loop for the lists
   * lock of `apt-get update`, which that option does not cover. Default: the host variable
   * `provision_apt_lock_timeout`, else 60 (Ansible's `lock_timeout`); 0 fails at once.
   */
  readonly lockTimeout?: number;
}

const aptArgs = z.strictObject({
  packages: z.union([z.string(), z.array(z.string())]),
  state: z.optional(z.enum(['present', 'absent', 'latest'])),
  updateCache: z.optional(z.boolean()),
  cacheValidTime: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
  installRecommends: z.optional(z.boolean()),
  purge: z.optional(z.boolean()),
  lockTimeout: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
});
const aptInSync: Exact<z.infer<typeof aptArgs>, AptArgs> = true;

/** dpkg's view of one package. */
export type PackageState =
  /** Unknown to dpkg, or known but not installed (`not-installed`). */
  | {readonly kind: 'missing'}
  /** Installed and configured (`installed`, or `triggers-pending`/`triggers-awaited`). */
  | {readonly kind: 'installed'; readonly version: string}
  /** Removed, configuration files left (`rc` in `dpkg -l`). */
  | {readonly kind: 'config-files'; readonly version: string}
  /** Interrupted install or removal: `half-installed`, `unpacked`, `half-configured`. */
  | {readonly kind: 'partial'; readonly status: string; readonly version: string};

/** apt's versions of one package, from `apt-cache policy`; null for `(none)`. */
export interface PolicyEntry {
  readonly installed: string | null;
  readonly candidate: string | null;
}

export interface AptState {
  /** By package name as requested (arch qualifier kept, version pin dropped). */
  readonly packages: Readonly<Record<string, PackageState>>;
  /** By package name as requested; only for `latest`, and only packages apt knows. */
  readonly policy: Readonly<Record<string, PolicyEntry>>;
  /** Seconds since the package lists were last updated; null when there are no lists at all. */
  readonly cacheAge: number | null;
}

/** One requested package: `name` is what dpkg and apt are asked about (`nginx`, `libc6:i386`). */
export interface PackageSpec {
  readonly name: string;
  readonly version?: string;
}

const specRe = /^([a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?)(?:=([A-Za-z0-9.+~:_-]+))?$/;

/** Split and validate the `packages` argument. Throws on a malformed name. */
export function parseSpecs(packages: AptArgs['packages']): PackageSpec[] {
  const words = (typeof packages === 'string' ? [packages] : packages).flatMap((p) => p.split(/[\s,]+/)).filter((p) => p !== '');
  const byName = new Map<string, PackageSpec>();
  for (const w of words) {
    const m = specRe.exec(w);
    if (!m) throw new Error(`bad package '${w}': expected a name like 'nginx', 'libc6:i386' or 'nginx=1.22.1-9'`);
    const name = group(m, 1);
    const version = m[2]; // the optional `=version`
    const spec: PackageSpec = version !== undefined ? {name, version} : {name};
    const seen = byName.get(spec.name);
    if (seen && seen.version !== spec.version) throw new Error(`package '${spec.name}' is listed twice with different versions`);
    byName.set(spec.name, spec);
  }
  return [...byName.values()];
}

/** The specs, or the error message for a malformed `packages` argument (reported by `plan`). */
function specsOf(a: AptArgs): PackageSpec[] | string {
  try {
    return parseSpecs(a.packages);
  } catch (e) {
    return (e as Error).message;
  }
}

function label(s: PackageSpec): string {
  return s.version !== undefined ? `${s.name}=${s.version}` : s.name;
}

const listsDir = '/var/lib/apt/lists';

/**
 * The probe: `dpkg <Package> <Architecture> <Status> <Version>` lines, `now <epoch>`, `mtime <epoch> <path>`
 * lines for the update markers and the package lists, and (for `latest`) `apt-cache policy` after an `@policy` line.
 * Runs in a subshell so its variables stay out of the batch; every command may fail or be missing.
 */
export function aptProbeScript(names: readonly string[], withPolicy: boolean): string {
  const qs = names.map(q).join(' ');
  const lines = [
    '(',
    'echo "now $(date +%s)"',
    // One `stat` (few processes: the probe runs in every play's batch) for apt's success hook
    // (update-notifier-common), the partial dir and the lists dir, which every update touches, and the
    // lists themselves (mtime = the server's Last-Modified, a lower bound); no lists at all: no cache.
    `stat -c 'mtime %Y %n' -- /var/lib/apt/periodic/update-success-stamp ${listsDir}/partial ${listsDir} ${listsDir}/*_Packages* 2>/dev/null`,
  ];
  if (names.length > 0 && withPolicy) {
    lines.push(`LC_ALL=C dpkg-query -W -f='dpkg \${Package} \${Architecture} \${Status} \${Version}\\n' -- ${qs} 2>/dev/null`);
    lines.push('echo @policy', `LC_ALL=C apt-cache policy -- ${qs} 2>/dev/null`);
  } else if (names.length > 0) {
    // Every package dpkg knows (as cheap as naming a few: dpkg reads its whole status file either
    // way): the same script for every `present`/`absent` task, so a probe batch runs it once per host.
    lines.push(`LC_ALL=C dpkg-query -W -f='dpkg \${Package} \${Architecture} \${Status} \${Version}\\n' 2>/dev/null`);
  }
  lines.push('true', ')');
  return lines.join('\n');
}

/** `dpkg-query` status (`install ok installed`) to a package state. */
function packageState(status: string, version: string): PackageState {
  switch (status) {
    case 'installed':
    case 'triggers-pending':
    case 'triggers-awaited':
      return {kind: 'installed', version};
    case 'config-files':
      return {kind: 'config-files', version};
    case 'half-installed':
    case 'unpacked':
    case 'half-configured':
      return {kind: 'partial', status, version};
    default:
      return {kind: 'missing'};
  }
}

const rank: Record<PackageState['kind'], number> = {missing: 0, 'config-files': 1, partial: 2, installed: 3};

interface Listing {
  readonly now: number | undefined;
  readonly newest: number | undefined;
  readonly haveLists: boolean;
  /** dpkg rows by `name` and `name:arch`; a multi-arch package may have several rows. */
  readonly rows: ReadonlyMap<string, PackageState[]>;
  readonly policyLines: readonly string[] | undefined;
}

/**
 * Pure parser of `aptProbeScript`'s output, for the requested names. Every apt task of a host reads
 * the same answer (the shared script lists every package): the listing is parsed once and kept on the
 * answer (`parsed`), not once per task (at 100 hosts that was 0.2 s).
 */
export function parseAptProbe(stdout: string, names: readonly string[], parsed?: Map<string, unknown>): AptState {
  let listing = parsed?.get('apt.listing') as Listing | undefined;
  if (!listing) {
    listing = parseListing(stdout);
    parsed?.set('apt.listing', listing);
  }
  const {now, newest, haveLists, rows, policyLines} = listing;
  const packages: Record<string, PackageState> = {};
  for (const n of names) {
    const found = rows.get(n) ?? [];
    packages[n] = found.reduce<PackageState>((best, s) => (rank[s.kind] > rank[best.kind] ? s : best), {kind: 'missing'});
  }
  const policy = policyLines ? parsePolicy(policyLines.join('\n'), names) : {};
  const cacheAge = !haveLists || now === undefined || newest === undefined ? null : Math.max(0, now - newest);
  return {packages, policy, cacheAge};
}

function parseListing(stdout: string): Listing {
  const lines = stdout.split('\n');
  const policyAt = lines.indexOf('@policy');
  const head = policyAt >= 0 ? lines.slice(0, policyAt) : lines;
  let now: number | undefined;
  let newest: number | undefined;
  let haveLists = false;
  const rows = new Map<string, PackageState[]>();
  for (const line of head) {
    const f = line.split(' ');
    if (f[0] === 'now' && /^\d+$/.test(f[1] ?? '')) now = Number(f[1]);
    else if (f[0] === 'mtime' && /^\d+$/.test(f[1] ?? '')) {
      newest = Math.max(newest ?? 0, Number(f[1]));
      // `lists`: the older probe's summary line; else one line per lists file.
      if (f[2] === 'lists' || /_Packages/.test(f[2] ?? '')) haveLists = true;
    } else if (f[0] === 'dpkg' && f.length >= 6) {
      // dpkg <pkg> <arch> <want> <flag> <status> <version>; arch and version may be empty.
      const [, pkg = '', arch = '', , , status = '', version = ''] = f; // pkg, arch, status there: f.length >= 6
      const st = packageState(status, version);
      for (const key of arch ? [pkg, `${pkg}:${arch}`] : [pkg]) {
        const have = rows.get(key);
        if (have) have.push(st);
        else rows.set(key, [st]);
      }
    }
  }
  return {now, newest, haveLists, rows, policyLines: policyAt >= 0 ? lines.slice(policyAt + 1) : undefined};
}

/**
 * Pure parser of `LC_ALL=C apt-cache policy` output. A section starts with `name:` at column 0;
 * apt drops the native architecture (`libc6:amd64` is shown as `libc6:`), so a requested
 * `name:arch` falls back to the bare name's section. Unknown packages have no section.
 */
export function parsePolicy(stdout: string, names: readonly string[]): Record<string, PolicyEntry> {
  const sections = new Map<string, {installed: string | null; candidate: string | null}>();
  let cur: {installed: string | null; candidate: string | null} | undefined;
  for (const line of stdout.split('\n')) {
    const header = /^(\S+):$/.exec(line);
    if (header) {
      cur = {installed: null, candidate: null};
      sections.set(group(header, 1), cur);
      continue;
    }
    const kv = /^\s+(Installed|Candidate):\s*(\S+)/.exec(line);
    if (kv && cur) {
      const value = group(kv, 2);
      const v = value === '(none)' ? null : value;
      if (kv[1] === 'Installed') cur.installed = v;
      else cur.candidate = v;
    }
  }
  const out: Record<string, PolicyEntry> = {};
  for (const n of names) {
    const s = sections.get(n) ?? sections.get(n.replace(/:.*$/, ''));
    if (s) out[n] = s;
  }
  return out;
}

/** `42s`, `12m`, `3h`, `2d`. */
function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

const aptGet = ['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get'] as const;

/** Seconds apt-get waits for another process's lock unless told otherwise (Ansible's `lock_timeout`). */
export const DEFAULT_APT_LOCK_TIMEOUT = 60;

/** apt-get's option to wait for the dpkg locks (frontend and dpkg's own) instead of failing at once. */
const lockOption = (seconds: number): string[] => ['-o', `DPkg::Lock::Timeout=${seconds}`];

/**
 * `apt-get update`, bounded: seen in containers, apt and its methods can both end up waiting on each
 * other forever (each polling its pipe) once in a few dozen updates. Updating the lists is safe to
 * retry, so a stalled update is killed after 120 s and tried again (three times at most). The lists
 * lock is not covered by `DPkg::Lock::Timeout` (apt 2.6 fails at once), so an update that finds it held
 * is tried again each second until `lockTimeout` has passed, printing apt's own `Waiting for cache
 * lock: …` line for each second waited (read by `aptLockNote`). apt's output is merged into stdout
 * (stderr when it failed).
 */
export function aptUpdateScript(lockTimeout: number): string {
  const n = lockTimeout;
  return `end=$(($(date +%s)+${n})); s=0; i=1; while :; do`
    + ` o=$(timeout -k 5 120 apt-get update -q -o DPkg::Lock::Timeout=${n} 2>&1) && { printf '%s\\n' "$o"; exit 0; };`
    + ` w=$(printf '%s\\n' "$o" | sed -n 's/^E: \\(Could not get lock .*\\)$/Waiting for cache lock: \\1.../p');`
    + ` if [ -n "$w" ] && [ "$(date +%s)" -lt $end ]; then while [ $s -le $(($(date +%s)+${n}-end)) ]; do printf '%s\\n' "$w"; s=$((s+1)); done; sleep 1;`
    + ` else printf '%s\\n' "$o" >&2; [ -z "$w" ] && [ $i -lt 3 ] || exit 1; echo "apt-get update: attempt $i failed or stalled" >&2; i=$((i+1)); sleep 2; fi; done`;
}

/** The update script with the default lock timeout. */
export const APT_UPDATE_SCRIPT = aptUpdateScript(DEFAULT_APT_LOCK_TIMEOUT);

const aptLinePrefix = 'Waiting for cache lock: ';

/**
 * What an apt-get step waited for, read from its output (pure): while it waits, apt prints
 * `Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4711
 * (unattended-upgr)...` once a second (the update script prints the same for the lists lock).
 * Undefined when it did not wait. Failing on a lock after waiting: it gave up after `lockTimeout`.
 */
export function aptLockNote(r: {readonly stdout: string; readonly stderr: string; readonly code: number}, lockTimeout: number): string | undefined {
  const waits = r.stdout.split('\n').filter((l) => l.startsWith(aptLinePrefix));
  const lastWait = waits.at(-1);
  if (lastWait === undefined) return undefined; // it did not wait
  const last = lastWait.slice(aptLinePrefix.length).replace(/\.\.\.$/, '').trim();
  const m = /^Could not get lock (.+?)\. It is held by (process .*)$/.exec(last);
  const what = m ? `${m[1]}, held by ${m[2]}` : last;
  const gaveUp = r.code !== 0 && /^E: (Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock)/m.test(r.stderr);
  return gaveUp ? `gave up after waiting ${lockTimeout} s (lockTimeout) for ${what}` : `waited ${waits.length} s for ${what}`;
}

export const aptModule: ModuleDef<AptArgs, AptState> = {
  name: 'apt',
  schema: aptArgs,
  describe(a) {
    const specs = specsOf(a);
    const what = typeof specs === 'string' ? String(a.packages) : specs.length > 0 ? specs.map(label).join(', ') : 'package lists';
    return (a.state ?? 'present') === 'present' ? what : `${what} (${a.state})`;
  },
  probe(a): Probe<AptState> {
    const specs = specsOf(a);
    const names = typeof specs === 'string' ? [] : specs.map((s) => s.name);
    return {script: aptProbeScript(names, a.state === 'latest'), parse: (out) => parseAptProbe(out.stdout, names, out.parsed)};
  },
  plan(have, a): Plan {
    const specs = specsOf(a);
    if (typeof specs === 'string') return {steps: [], fail: specs};
    const state = a.state ?? 'present';
    const validTime = a.cacheValidTime ?? 3600;
    const stale = have.cacheAge === null || have.cacheAge >= validTime;
    const cacheNote = have.cacheAge === null ? 'no package lists' : `lists ${age(have.cacheAge)} old`;
    const noPackages = a.updateCache === true ? `cache fresh (${cacheNote})` : 'no packages given';
    const pkg = (s: PackageSpec): PackageState => have.packages[s.name] ?? {kind: 'missing'};
    const lockTimeout = a.lockTimeout ?? DEFAULT_APT_LOCK_TIMEOUT;
    const note = (r: {readonly stdout: string; readonly stderr: string; readonly code: number}): string | undefined => aptLockNote(r, lockTimeout);
    const updateStep: Step = {kind: 'exec', cmd: {shell: aptUpdateScript(lockTimeout)}, note};

    if (state === 'absent') {
      const verb = a.purge ? 'purge' : 'remove';
      const gone = specs.filter((s) => {
        const p = pkg(s);
        if (p.kind === 'missing' || (p.kind === 'config-files' && !a.purge)) return false;
        return s.version === undefined || p.version === s.version;
      });
      const steps: Step[] = [];
      const why: string[] = [];
      if (a.updateCache === true && stale) {
        steps.push(updateStep);
        why.push(`update cache (${cacheNote})`);
      }
      if (gone.length > 0) {
        const step: Step = {kind: 'exec', cmd: argv(...aptGet, verb, '-y', '-q', ...lockOption(lockTimeout), ...gone.map((s) => s.name)), note};
        steps.push(step);
        why.push(`${verb} ${gone.map((s) => s.name).join(', ')}`);
      }
      if (steps.length === 0) return {steps, reason: specs.length > 0 ? `all absent: ${specs.map(label).join(', ')}` : noPackages};
      return {steps, reason: why.join('; ')};
    }

    // present / latest: what needs installing, and why.
    const install: PackageSpec[] = [];
    const fresh: string[] = [];
    const why: string[] = [];
    const upToDate: string[] = [];
    let downgrade = false;
    for (const s of specs) {
      const p = pkg(s);
      if (p.kind === 'missing' || p.kind === 'config-files') {
        install.push(s);
        fresh.push(label(s));
      } else if (p.kind === 'partial') {
        install.push(s);
        why.push(`${s.name} is ${p.status}`);
      } else if (s.version !== undefined) {
        if (p.version === s.version) upToDate.push(label(s));
        else {
          install.push(s);
          why.push(`${s.name} ${p.version} → ${s.version}`);
          downgrade = true; // direction unknown without dpkg --compare-versions; the pin is the user's word
        }
      } else if (state === 'latest') {
        const cand = have.policy[s.name]?.candidate ?? null;
        if (cand !== null && cand !== p.version) {
          install.push(s);
          why.push(`upgrade ${s.name} ${p.version} → ${cand}`);
        } else upToDate.push(`${s.name} ${p.version}`);
      } else upToDate.push(s.name);
    }

    if (fresh.length > 0) why.unshift(`install ${fresh.join(', ')}`);
    const update = a.updateCache !== false && (a.updateCache === true || install.length > 0) && stale;
    if (update && state === 'latest') {
      // Candidates were read from stale lists: after the update any package may have a newer one.
      const recheck = specs.filter((s) => s.version === undefined && !install.includes(s));
      if (recheck.length > 0) {
        install.push(...recheck);
        why.push(`latest of ${recheck.map((s) => s.name).join(', ')} after the update`);
      }
    }
    const steps: Step[] = [];
    if (update) {
      steps.push(updateStep);
      why.unshift(`update cache (${cacheNote})`);
    }
    if (install.length > 0) {
      const words = [
        ...aptGet, 'install', '-y', '-q',
        ...(a.installRecommends ? ['-o', 'APT::Install-Recommends=true'] : ['--no-install-recommends']),
        '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold',
        ...lockOption(lockTimeout),
        ...(downgrade ? ['--allow-downgrades'] : []),
        ...install.map(label),
      ];
      const step: Step = {kind: 'exec', cmd: argv(...words), note};
      steps.push(step);
    }
    if (steps.length > 0) return {steps, reason: why.join('; ')};
    if (specs.length === 0) return {steps, reason: noPackages};
    return {steps, reason: `all ${state}: ${upToDate.join(', ')}`};
  },
};

/** `lockTimeout` from the host variable `provision_apt_lock_timeout` (a number, or its text in an INI inventory). */
export function hostLockTimeout(vars: Vars): number | undefined {
  const v = vars.provision_apt_lock_timeout;
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new TaskArgumentError(`provision_apt_lock_timeout: expected a whole number of seconds (0 or more), got ${JSON.stringify(v)}`);
  return n;
}

/** Install, upgrade or remove Debian packages with apt-get. */
export const apt = (args: ArgsOf<AptArgs>, options?: TaskOptions): Task => makeTask<AptArgs, AptArgs, AptState>({
  module: aptModule,
  toArgs(a, ctx) {
    if (a.lockTimeout !== undefined) return a;
    const fromHost = hostLockTimeout(ctx.vars);
    return fromHost === undefined ? a : {...a, lockTimeout: fromHost};
  },
}, args, options);

void aptInSync;
