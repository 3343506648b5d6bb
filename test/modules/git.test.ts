import test from 'ava';
import {execFileSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {q} from '../../src/core/cmd.ts';
import {definePlaybook} from '../../src/core/task.ts';
import type {Plan, Task} from '../../src/core/types.ts';
import {git, gitModule, gitProbeScript, parseGit, resolveVersion, type GitArgs, type GitState} from '../../src/modules/git.ts';
import {assertCheckMode, fakeHost, isProbeBatch} from '../helpers/fakehost.ts';
import {runFake} from '../helpers/engine.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const T = 'c'.repeat(40); // an annotated tag object
const refs = (...r: [string, string][]): GitState['remote'] => ({kind: 'refs', refs: r.map(([ref, sha]) => ({ref, sha}))});
const mainRemote: GitState['remote'] = {kind: 'refs', refs: [{ref: 'HEAD', sha: B}], headRef: 'refs/heads/main'};

// ---- pure plans

const cases: {title: string; have: GitState; args?: Partial<GitArgs>; cmds: string[]; reason?: RegExp; fail?: RegExp; data?: unknown}[] = [
  {title: 'absent → clone the default branch, pinned', have: {tree: {kind: 'missing'}, remote: mainRemote}, cmds: ['git clone -- /srv/r.git /opt/app', `git -C /opt/app checkout -B main ${B}`], reason: /^clone \/srv\/r\.git to \/opt\/app at bbbbbbbbbbbb \(HEAD\)$/, data: {before: null, after: B}},
  {title: 'empty folder → clone a tag, shallow', have: {tree: {kind: 'empty'}, remote: refs(['refs/tags/v1', T], ['refs/tags/v1^{}', A])}, args: {version: 'v1', depth: 1}, cmds: ['git clone --depth 1 --branch v1 -- /srv/r.git /opt/app', `git -C /opt/app checkout --detach ${A}`], reason: /at aaaaaaaaaaaa \(v1\)$/, data: {before: null, after: A}},
  {title: 'absent, a full commit → clone without checkout, then detach (no remote read)', have: {tree: {kind: 'missing'}, remote: {kind: 'skipped'}}, args: {version: A}, cmds: ['git clone --no-checkout -- /srv/r.git /opt/app', `git -C /opt/app checkout --detach ${A}`], data: {before: null, after: A}},
  {title: 'drifted → fetch the branch, move it', have: {tree: {kind: 'repo', head: A, dirty: false}, remote: refs(['refs/heads/main', B])}, args: {version: 'main'}, cmds: ['git -C /opt/app fetch -- /srv/r.git refs/heads/main', `git -C /opt/app checkout -B main ${B}`], reason: /^update \/opt\/app aaaaaaaaaaaa → bbbbbbbbbbbb \(main\)$/, data: {before: A, after: B}},
  {title: 'drifted, a commit → fetch branches and tags, detach', have: {tree: {kind: 'repo', head: A, dirty: false}, remote: {kind: 'skipped'}}, args: {version: B, depth: 5}, cmds: ['git -C /opt/app fetch --depth 5 --tags -- /srv/r.git +refs/heads/*:refs/remotes/origin/*', `git -C /opt/app checkout --detach ${B}`], data: {before: A, after: B}},
  {title: 'converged → nothing, with the commit as data', have: {tree: {kind: 'repo', head: B, dirty: false}, remote: mainRemote}, cmds: [], reason: /^already at bbbbbbbbbbbb \(HEAD\)$/, data: {before: B, after: B}},
  {title: 'modified files → fails without force', have: {tree: {kind: 'repo', head: A, dirty: true}, remote: mainRemote}, cmds: [], fail: /modified tracked files \(force: true discards them\)/},
  {title: 'modified files, force → checkout -f', have: {tree: {kind: 'repo', head: A, dirty: true}, remote: mainRemote}, args: {force: true}, cmds: ['git -C /opt/app fetch -- /srv/r.git refs/heads/main', `git -C /opt/app checkout -f -B main ${B}`]},
  {title: 'modified files at the right commit, force → reset --hard', have: {tree: {kind: 'repo', head: B, dirty: true}, remote: mainRemote}, args: {force: true}, cmds: ['git -C /opt/app reset --hard -q HEAD'], reason: /^discard local modifications/},
  {title: 'update: false → nothing even when behind', have: {tree: {kind: 'repo', head: A, dirty: false}, remote: {kind: 'skipped'}}, args: {update: false}, cmds: [], reason: /update: false/, data: {before: A, after: A}},
  {title: 'a folder with other content → fails', have: {tree: {kind: 'other', what: 'folder'}, remote: mainRemote}, cmds: [], fail: /not a git work tree/},
  {title: 'unknown version → fails, naming it', have: {tree: {kind: 'missing'}, remote: refs()}, args: {version: 'nope'}, cmds: [], fail: /version 'nope' is not a branch or tag of \/srv\/r\.git/},
  {title: 'abbreviated commit → fails, saying so', have: {tree: {kind: 'missing'}, remote: refs()}, args: {version: 'abc1234'}, cmds: [], fail: /abbreviated commit/},
  {title: 'unreadable remote → fails with git\'s words', have: {tree: {kind: 'missing'}, remote: {kind: 'error', message: "fatal: '/srv/r.git' does not appear to be a git repository"}}, cmds: [], fail: /^cannot read \/srv\/r\.git: fatal: /},
  {title: 'no git → fails', have: {tree: {kind: 'nogit'}, remote: {kind: 'skipped'}}, cmds: [], fail: /git is not installed/},
];
for (const c of cases) {
  test(`git plan: ${c.title}`, (t) => {
    const p = gitModule.plan(c.have, {repo: '/srv/r.git', dest: '/opt/app', ...c.args});
    t.deepEqual(cmds(p), c.cmds);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
    else t.is(p.fail, undefined);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
    if (c.data !== undefined) t.deepEqual(p.data, c.data);
  });
}

test('git: versions resolve in git\'s order (tag before branch), annotated tags peeled; the probe parses', (t) => {
  const r = refs(['refs/heads/x', A], ['refs/tags/x', T], ['refs/tags/x^{}', B]);
  t.deepEqual(resolveVersion('x', r, 'R'), {kind: 'tag', sha: B, tag: 'x', ref: 'refs/tags/x'});
  t.deepEqual(resolveVersion('refs/heads/x', r, 'R'), {kind: 'branch', sha: A, branch: 'x', ref: 'refs/heads/x'});
  t.deepEqual(resolveVersion(A.toUpperCase(), {kind: 'skipped'}, 'R'), {kind: 'commit', sha: A});
  t.deepEqual(parseGit(`repo\n${A}\ndirty\n--remote\nok\nref: refs/heads/main\tHEAD\n${B}\tHEAD\n`), {tree: {kind: 'repo', head: A, dirty: true}, remote: {kind: 'refs', refs: [{ref: 'HEAD', sha: B}], headRef: 'refs/heads/main'}});
  t.deepEqual(parseGit('repo\n-\nclean\n--remote\nskipped\n'), {tree: {kind: 'repo', dirty: false}, remote: {kind: 'skipped'}});
  t.deepEqual(parseGit('other\nfile\n--remote\nerr\nfatal: no\n'), {tree: {kind: 'other', what: 'file'}, remote: {kind: 'error', message: 'fatal: no'}});
  t.notThrows(() => execFileSync('sh', ['-n', '-c', gitProbeScript({repo: "it's", dest: '/a b', version: "x'y", update: false})]));
  t.regex(git({repo: 'r', dest: '/d', depth: 0}).problems().join(), /depth/);
});

// ---- real git, in temp folders: an origin with a tag v1 (annotated) and main one commit ahead

const gitEnv = {GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com'};
const g = (cwd: string, ...args: string[]): string => execFileSync('git', args, {cwd, env: {...process.env, ...gitEnv}, stdio: ['ignore', 'pipe', 'pipe']}).toString().trim();

/** A temp folder with `origin.git` (bare): v1 → first commit (annotated tag), main → second. */
function origin(): {dir: string; repo: string; v1: string; main: string} {
  const dir = mkdtempSync(join(tmpdir(), 'prov-git-'));
  const work = join(dir, 'work');
  mkdirSync(work);
  g(work, 'init', '-q', '-b', 'main');
  writeFileSync(join(work, 'file'), 'one\n');
  g(work, 'add', 'file');
  g(work, 'commit', '-q', '-m', 'one');
  g(work, 'tag', '-a', 'v1', '-m', 'v1');
  const v1 = g(work, 'rev-parse', 'HEAD');
  writeFileSync(join(work, 'file'), 'two\n');
  g(work, 'commit', '-q', '-am', 'two');
  const main = g(work, 'rev-parse', 'HEAD');
  g(dir, 'clone', '-q', '--bare', 'work', 'origin.git');
  return {dir, repo: join(dir, 'origin.git'), v1, main};
}

async function run(task: Task): Promise<{status: string; msg: string; sent: string[]}> {
  const pb = definePlaybook({name: 'git', plays: [{name: 'git', hosts: 'all_hosts', gatherFacts: false, tasks: [task]}]});
  const r = await runFake(pb);
  const [res] = r.results();
  return {status: res?.status ?? '', msg: res?.msg ?? '', sent: r.transports.get('h1')!.execs.filter((e) => !isProbeBatch(e)).map((e) => e.command)};
}

test.serial('git run: clone at v1, again → ok; update to main; modified → fails; force → discarded', async (t) => {
  const o = origin();
  const dest = join(o.dir, 'co');
  const first = await run(git({repo: o.repo, dest, version: 'v1'}));
  t.is(first.status, 'changed', first.msg);
  t.is(first.msg, `clone ${o.repo} to ${dest} at ${o.v1.slice(0, 12)} (v1)`);
  t.is(g(dest, 'rev-parse', 'HEAD'), o.v1);
  const again = await run(git({repo: o.repo, dest, version: 'v1'}));
  t.deepEqual([again.status, again.msg, again.sent], ['ok', `already at ${o.v1.slice(0, 12)} (v1)`, []]);
  const up = await run(git({repo: o.repo, dest}));
  t.is(up.msg, `update ${dest} ${o.v1.slice(0, 12)} → ${o.main.slice(0, 12)} (HEAD)`);
  t.is(g(dest, 'rev-parse', 'HEAD'), o.main);
  t.is(g(dest, 'rev-parse', '--abbrev-ref', 'HEAD'), 'main', 'on the default branch, not detached');
  writeFileSync(join(dest, 'file'), 'edited\n');
  writeFileSync(join(dest, 'untracked'), 'mine\n');
  const dirty = await run(git({repo: o.repo, dest, version: 'v1'}));
  t.is(dirty.status, 'failed');
  t.regex(dirty.msg, /modified tracked files/);
  t.is(readFileSync(join(dest, 'file'), 'utf8'), 'edited\n', 'nothing touched');
  const forced = await run(git({repo: o.repo, dest, version: 'v1', force: true}));
  t.is(forced.status, 'changed', forced.msg);
  t.is(g(dest, 'rev-parse', 'HEAD'), o.v1);
  t.is(readFileSync(join(dest, 'file'), 'utf8'), 'one\n');
  t.is(readFileSync(join(dest, 'untracked'), 'utf8'), 'mine\n', 'untracked files are kept');
  rmSync(o.dir, {recursive: true});
});

test.serial('git run: a shallow clone of a full commit; a non-empty folder that is not a work tree fails', async (t) => {
  const o = origin();
  const dest = join(o.dir, 'shallow');
  const r = await run(git({repo: o.repo, dest, version: o.main, depth: 1}));
  t.is(r.status, 'changed', r.msg);
  t.is(g(dest, 'rev-parse', 'HEAD'), o.main);
  t.is(g(dest, 'rev-parse', '--is-shallow-repository'), 'true');
  const other = await run(git({repo: o.repo, dest: join(o.dir, 'work', '.git')}));
  t.is(other.status, 'failed');
  rmSync(o.dir, {recursive: true});
});

// ---- check mode: the probe only (the real git reads the real temp origin); a real run's commands recorded

test('git check mode: absent → would clone', async (t) => {
  const o = origin();
  const host = fakeHost('git', {}, {});
  const dest = join(host.dir, 'co');
  await assertCheckMode(t, host, git({repo: o.repo, dest}), {status: 'changed', msg: `would clone ${o.repo} to ${dest} at ${o.main.slice(0, 12)} (HEAD)`, cmds: [`git clone -- ${q(o.repo)} ${q(dest)}`, `git -C ${q(dest)} checkout -B main ${o.main}`]});
  rmSync(o.dir, {recursive: true});
});

test('git check mode: behind → would update a → b; converged → ok', async (t) => {
  const o = origin();
  const dest = join(o.dir, 'co');
  g(o.dir, 'clone', '-q', '--branch', 'v1', o.repo, dest);
  await assertCheckMode(t, fakeHost('git', {}, {}), git({repo: o.repo, dest, version: 'main'}), {status: 'changed', msg: `would update ${dest} ${o.v1.slice(0, 12)} → ${o.main.slice(0, 12)} (main)`, cmds: [`git -C ${q(dest)} fetch -- ${q(o.repo)} refs/heads/main`, `git -C ${q(dest)} checkout -B main ${o.main}`]});
  t.is(g(dest, 'rev-parse', 'HEAD'), o.v1, 'nothing moved');
  await assertCheckMode(t, fakeHost('git', {}, {}), git({repo: o.repo, dest, version: 'v1'}), {status: 'ok', msg: `already at ${o.v1.slice(0, 12)} (v1)`, cmds: []});
  rmSync(o.dir, {recursive: true});
});
