/**
 * `git`: a work tree of a repository at a version (Ansible's git). The repository is read FROM THE
 * HOST (its URL or path as the host sees it), with the host's `git`.
 *
 * Probe (read-only): what `dest` is (missing, an empty folder, a git work tree with its HEAD commit
 * and whether tracked files are modified, something else), then the commit `version` names on the
 * remote, from `git ls-remote --symref` (a full 40-hex commit is itself, no remote read). With
 * `update: false` and a work tree already there, the remote is not read at all.
 *
 * Plan (pure): missing or empty `dest` → `git clone` (a branch or tag with `--branch`, a commit
 * checked out detached); a work tree whose HEAD is another commit → `git fetch` of that ref from
 * `repo` and `git checkout` of the commit (a branch: the local branch is set to it with `-B`; a tag or
 * commit: detached); HEAD already there → nothing. Modified tracked files fail the task unless
 * `force` (then they are discarded: `checkout -f`, or `reset --hard` when HEAD is already right).
 * Untracked files are never touched (as Ansible).
 *
 * The reason says the commits (`update /srv/app 1a2b3c4d5e6f → 7a8b9c0d1e2f (main)`), and the plan's
 * `data` is `{before, after}` (full commits; `before` null for a clone).
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';

export interface GitArgs {
  /** The repository as the host reaches it: a URL (`https://…`, `ssh://…`, `git@host:path`) or a path on the host. */
  readonly repo: string;
  /** Absolute path of the work tree on the host: cloned when missing or an empty folder. */
  readonly dest: string;
  /**
   * What to check out: a branch, a tag (`v1.2`, or a full ref `refs/tags/v1.2`) or a full 40-hex
   * commit. Default `HEAD`: the remote's default branch. An abbreviated commit is not accepted (it
   * cannot be resolved without fetching).
   */
  readonly version?: string;
  /** Discard modifications of tracked files in `dest`. Default false: modifications fail the task. */
  readonly force?: boolean;
  /** Shallow clone and fetch with this many commits of history (`--depth`). Unset: full history. */
  readonly depth?: number;
  /** Move an existing work tree to `version` (default true); false: only clone when `dest` is missing. */
  readonly update?: boolean;
}

const gitArgs = z.strictObject({
  repo: z.string().check(z.minLength(1)),
  dest: z.string(),
  version: z.optional(z.string().check(z.minLength(1))),
  force: z.optional(z.boolean()),
  depth: z.optional(z.int().check(z.positive())),
  update: z.optional(z.boolean()),
});
const gitInSync: Exact<z.infer<typeof gitArgs>, GitArgs> = true;

/** What `dest` is on the host. */
export type GitWorkTree =
  | {readonly kind: 'missing'}
  /** An existing folder with nothing in it (cloned into, as git allows). */
  | {readonly kind: 'empty'}
  /** A git work tree whose top is `dest`: its HEAD commit (undefined: no commit yet) and whether tracked files are modified. */
  | {readonly kind: 'repo'; readonly head?: string; readonly dirty: boolean}
  /** A file, or a folder with content that is not a work tree of its own. */
  | {readonly kind: 'other'; readonly what: 'file' | 'folder'}
  /** git is not installed on the host. */
  | {readonly kind: 'nogit'};

/** A line of `git ls-remote`: a ref and the commit (or, for a tag, the tag object) it names. */
export interface RemoteRef {
  readonly ref: string;
  readonly sha: string;
}

/** What the remote said about `version`. */
export type GitRemote =
  | {readonly kind: 'refs'; readonly refs: readonly RemoteRef[]; /** HEAD's branch (`refs/heads/main`), from `--symref`. */ readonly headRef?: string}
  | {readonly kind: 'error'; readonly message: string}
  /** Not read: `version` is a full commit, or `update: false` and the work tree is there. */
  | {readonly kind: 'skipped'};

export interface GitState {
  readonly tree: GitWorkTree;
  readonly remote: GitRemote;
}

/** Where `version` points on the remote, and how to check it out. */
export type GitTarget =
  | {readonly kind: 'branch'; readonly sha: string; readonly branch: string; readonly ref: string}
  | {readonly kind: 'tag'; readonly sha: string; readonly tag: string; readonly ref: string}
  | {readonly kind: 'commit'; readonly sha: string};

const fullSha = /^[0-9a-f]{40}$/;
const version = (a: GitArgs): string => a.version ?? 'HEAD';

/** The patterns `git ls-remote` is asked for: `version` and its peeled tag (`v1^{}`); none for a full commit. */
export function lsRemotePatterns(v: string): string[] {
  if (fullSha.test(v.toLowerCase())) return [];
  return v === 'HEAD' ? ['HEAD'] : [v, `${v}^{}`];
}

/** The probe: the work tree's lines, then `--remote`, `ok`/`err`/`skipped` and ls-remote's output. */
export function gitProbeScript(a: GitArgs): string {
  const d = q(a.dest);
  const patterns = lsRemotePatterns(version(a));
  const lsRemote = `GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND="\${GIT_SSH_COMMAND:-ssh -o BatchMode=yes}" git ls-remote --symref -- ${[a.repo, ...patterns].map(q).join(' ')}`;
  const remote = patterns.length === 0
    ? "echo skipped"
    : `if out=$(${lsRemote} 2>&1); then echo ok; else echo err; fi; printf '%s\\n' "$out"`;
  return [
    'if ! command -v git >/dev/null 2>&1; then echo nogit; exit 0; fi',
    `if [ -e ${d} ] && [ ! -d ${d} ]; then printf 'other\\nfile\\n'`,
    `elif [ ! -e ${d} ]; then echo missing`,
    `elif top=$(git -C ${d} rev-parse --show-toplevel 2>/dev/null) && [ "$top" = "$(cd ${d} && pwd -P)" ]; then`,
    `  echo repo; git -C ${d} rev-parse -q --verify HEAD 2>/dev/null || echo -`,
      // GIT_OPTIONAL_LOCKS=0: status does not refresh (write) the index.
    `  if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C ${d} status --porcelain --untracked-files=no 2>&1)" ]; then echo dirty; else echo clean; fi`,
    `elif [ -z "$(ls -A ${d} 2>/dev/null)" ]; then echo empty`,
    "else printf 'other\\nfolder\\n'; fi",
    'echo --remote',
    a.update === false ? `if [ -d ${d} ] && [ -n "$(ls -A ${d} 2>/dev/null)" ]; then echo skipped; else ${remote}; fi` : remote,
  ].join('\n');
}

/** Pure parser of `gitProbeScript`'s output. */
export function parseGit(stdout: string): GitState {
  const lines = stdout.split('\n');
  const at = lines.indexOf('--remote');
  const head = at < 0 ? lines : lines.slice(0, at);
  const rest = at < 0 ? [] : lines.slice(at + 1);
  const [kind = '', l1 = '', l2 = ''] = head;
  const tree: GitWorkTree =
    kind === 'missing' ? {kind: 'missing'}
      : kind === 'empty' ? {kind: 'empty'}
        : kind === 'nogit' ? {kind: 'nogit'}
          : kind === 'repo' ? {kind: 'repo', ...(fullSha.test(l1.trim()) ? {head: l1.trim()} : {}), dirty: l2.trim() === 'dirty'}
            : {kind: 'other', what: l1 === 'file' ? 'file' : 'folder'};
  const [answer = '', ...out] = rest;
  let remote: GitRemote;
  if (answer === 'ok') {
    const refs: RemoteRef[] = [];
    let headRef: string | undefined;
    for (const line of out) {
      const sym = /^ref: (\S+)\tHEAD$/.exec(line);
      if (sym) headRef = sym[1];
      const m = /^([0-9a-f]{40})\t(\S+)$/.exec(line);
      if (m) refs.push({sha: m[1] ?? '', ref: m[2] ?? ''});
    }
    remote = {kind: 'refs', refs, ...(headRef === undefined ? {} : {headRef})};
  } else if (answer === 'err') {
    remote = {kind: 'error', message: out.join('\n').trim() || 'git ls-remote failed'};
  } else {
    remote = {kind: 'skipped'};
  }
  return {tree, remote};
}

/**
 * Pure: what `version` names on the remote, in git's order for a short name (`refs/<v>`, then a tag,
 * then a branch), an annotated tag taken as the commit it points to. A string: why it cannot be resolved.
 */
export function resolveVersion(v: string, remote: GitRemote, repo: string): GitTarget | string {
  if (fullSha.test(v.toLowerCase())) return {kind: 'commit', sha: v.toLowerCase()};
  if (remote.kind === 'error') return `cannot read ${repo}: ${remote.message.split('\n').filter((l) => l.trim() !== '').slice(0, 2).join(' ')}`;
  if (remote.kind === 'skipped') return `${repo} was not read`;
  const sha = (ref: string): string | undefined => (remote.refs.find((r) => r.ref === `${ref}^{}`) ?? remote.refs.find((r) => r.ref === ref))?.sha;
  const target = (ref: string): GitTarget | undefined => {
    const s = sha(ref);
    if (s === undefined) return undefined;
    if (ref.startsWith('refs/heads/')) return {kind: 'branch', sha: s, branch: ref.slice('refs/heads/'.length), ref};
    if (ref.startsWith('refs/tags/')) return {kind: 'tag', sha: s, tag: ref.slice('refs/tags/'.length), ref};
    return {kind: 'commit', sha: s};
  };
  if (v === 'HEAD') {
    const s = sha('HEAD');
    if (s === undefined) return `${repo} has no HEAD (an empty repository?)`;
    const ref = remote.headRef;
    return ref?.startsWith('refs/heads/') ? {kind: 'branch', sha: s, branch: ref.slice('refs/heads/'.length), ref} : {kind: 'commit', sha: s};
  }
  const names = v.startsWith('refs/') ? [v] : [`refs/${v}`, `refs/tags/${v}`, `refs/heads/${v}`];
  for (const n of names) {
    const t = target(n);
    if (t) return t;
  }
  const abbreviated = /^[0-9a-f]{7,39}$/i.test(v) ? ' (an abbreviated commit is not enough: give all 40 hex digits)' : ' (nor a full 40-hex commit)';
  return `version '${v}' is not a branch or tag of ${repo}${abbreviated}`;
}

const short = (sha: string | undefined): string => (sha === undefined ? '(no commit)' : sha.slice(0, 12));

function problem(a: GitArgs): string | undefined {
  if (!a.dest.startsWith('/')) return `dest must be an absolute path, got '${a.dest}'`;
  if (a.repo.startsWith('-')) return `repo must be a URL or a path, got '${a.repo}'`;
  const v = version(a);
  if (v.startsWith('-') || /\s/.test(v)) return `version must be a branch, a tag or a commit, got '${v}'`;
  return undefined;
}

const depthArgs = (a: GitArgs): string[] => (a.depth === undefined ? [] : ['--depth', String(a.depth)]);

/** Steps fetching `target` from `repo` into the work tree at `dest`. */
function fetchStep(a: GitArgs, target: GitTarget): Step {
  // A commit is fetched with every branch and tag (any server serves those; not every one serves a bare commit).
  const [opts, what] = target.kind === 'commit' ? [['--tags'], ['+refs/heads/*:refs/remotes/origin/*']] : [[], [target.ref]];
  return {kind: 'exec', cmd: argv('git', '-C', a.dest, 'fetch', ...depthArgs(a), ...opts, '--', a.repo, ...what)};
}

function checkoutStep(a: GitArgs, target: GitTarget): Step {
  const force = a.force ? ['-f'] : [];
  return target.kind === 'branch'
    ? {kind: 'exec', cmd: argv('git', '-C', a.dest, 'checkout', ...force, '-B', target.branch, target.sha)}
    : {kind: 'exec', cmd: argv('git', '-C', a.dest, 'checkout', ...force, '--detach', target.sha)};
}

export const gitModule: ModuleDef<GitArgs, GitState> = {
  name: 'git',
  schema: gitArgs,
  describe: (a) => `${a.repo} → ${a.dest}${a.version ? ` (${a.version})` : ''}`,
  probe: (a) => ({script: gitProbeScript(a), parse: (out) => parseGit(out.stdout)}),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const {tree} = have;
    const v = version(a);
    if (tree.kind === 'nogit') return {steps: [], fail: 'git is not installed on the host'};
    if (tree.kind === 'other') return {steps: [], fail: `dest ${a.dest} is ${tree.what === 'file' ? 'a file' : 'a folder with content that is not a git work tree'}`};
    if (tree.kind === 'repo' && tree.dirty && !a.force) return {steps: [], fail: `${a.dest} has modified tracked files (force: true discards them)`};
    if (tree.kind === 'repo' && a.update === false) {
      return {steps: [], reason: `at ${short(tree.head)} (update: false)`, data: {before: tree.head ?? null, after: tree.head ?? null}};
    }
    const target = resolveVersion(v, have.remote, a.repo);
    if (typeof target === 'string') return {steps: [], fail: target};
    const data = {before: tree.kind === 'repo' ? tree.head ?? null : null, after: target.sha};
    const diff = {path: a.dest, before: tree.kind === 'repo' && tree.head ? `HEAD ${tree.head}\n` : '', after: `HEAD ${target.sha} (${v})\n`};
    if (tree.kind === 'missing' || tree.kind === 'empty') {
      const branch = target.kind === 'branch' && v !== 'HEAD' ? ['--branch', target.branch] : target.kind === 'tag' ? ['--branch', target.tag] : [];
      const clone: Step = {kind: 'exec', cmd: argv('git', 'clone', ...depthArgs(a), ...branch, ...(target.kind === 'commit' ? ['--no-checkout'] : []), '--', a.repo, a.dest)};
      // A clone by branch or tag gets the commit ls-remote saw unless the remote moved since: checkout pins it.
      const steps: Step[] = target.kind === 'commit'
        ? [clone, ...(a.depth === undefined ? [] : [fetchStep(a, target)]), checkoutStep(a, target)]
        : [clone, checkoutStep(a, target)];
      return {steps, reason: `clone ${a.repo} to ${a.dest} at ${short(target.sha)} (${v})`, data, diff};
    }
    if (tree.head === target.sha) {
      if (tree.dirty) return {steps: [{kind: 'exec', cmd: argv('git', '-C', a.dest, 'reset', '--hard', '-q', 'HEAD')}], reason: `discard local modifications in ${a.dest} (at ${short(target.sha)})`, data, diff: {path: a.dest, before: '(modified tracked files)\n', after: `HEAD ${target.sha} (${v})\n`}};
      return {steps: [], reason: `already at ${short(target.sha)} (${v})`, data};
    }
    return {
      steps: [fetchStep(a, target), checkoutStep(a, target)],
      reason: `update ${a.dest} ${short(tree.head)} → ${short(target.sha)} (${v})`,
      data,
      diff,
    };
  },
};

/** A git work tree at a version: cloned when missing, moved when the version's commit changed. */
export const git = (args: ArgsOf<GitArgs>, options?: TaskOptions): Task => makeTask(gitModule, args, options);

void gitInSync;
