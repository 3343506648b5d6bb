import test from 'ava';
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {assertCheckMode, fakeHost, isProbeBatch} from '../helpers/fakehost.ts';
import {runFake} from '../helpers/engine.ts';
import {definePlaybook} from '../../src/core/task.ts';
import type {Plan, Task} from '../../src/core/types.ts';
import type {FileState} from '../../src/facts/file.ts';
import {downloadScript, getUrl, getUrlModule, sha256Of, type GetUrlArgs} from '../../src/modules/geturl.ts';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const RELEASE = 'release 1.2.3\n'.repeat(1000);
const OTHER = 'something else\n';
const want = `sha256:${sha(RELEASE)}` as const;
const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));

let server: Server;
let base = '';
let requests = 0;

test.before(async () => {
  server = createServer((req, res) => {
    requests += 1;
    if (req.url === '/release.tar') res.writeHead(200).end(RELEASE);
    else if (req.url === '/moved') res.writeHead(302, {location: '/release.tar'}).end();
    else res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(() => new Promise<void>((r) => server.close(() => r())));

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'prov-geturl-'));

async function run(task: Task): Promise<{status: string; msg: string; sent: string[]}> {
  const pb = definePlaybook({name: 'geturl', plays: [{name: 'geturl', hosts: 'all_hosts', gatherFacts: false, tasks: [task]}]});
  const r = await runFake(pb);
  const [res] = r.results();
  return {status: res?.status ?? '', msg: res?.msg ?? '', sent: r.transports.get('h1')!.execs.filter((e) => !isProbeBatch(e)).map((e) => e.command)};
}

const modeOf = (p: string): number => statSync(p).mode & 0o777;
const me = (): {user: string; group: string} => ({user: execFileSync('id', ['-un']).toString().trim(), group: execFileSync('id', ['-gn']).toString().trim()});

// ---- plans: pure

const file = (content: string, mode = 0o644): FileState => ({kind: 'file', size: content.length, sha256: sha(content), mode, owner: 'root', group: 'root'});
const planCases: {title: string; have: FileState; args: Partial<GetUrlArgs>; cmds: string[]; reason?: RegExp; fail?: RegExp; diff?: boolean}[] = [
  {title: 'missing → download', have: {kind: 'missing'}, args: {}, cmds: ['sh -s'], reason: /^download http:\/\/h\/r\.tar to \/opt\/r\.tar$/},
  {title: 'converged → nothing', have: file(RELEASE), args: {}, cmds: [], reason: /^already sha256:[0-9a-f]{12}…, 0644 root:root$/},
  {title: 'drifted content → replace, with a diff', have: file(OTHER), args: {}, cmds: ['sh -s'], reason: /^replace \/opt\/r\.tar \(sha256:[0-9a-f]{12}… → sha256:[0-9a-f]{12}…\) from http:\/\/h\/r\.tar$/, diff: true},
  {title: 'right content, drifted mode and owner → chown, chmod', have: file(RELEASE, 0o600), args: {mode: '0755', owner: 'app'}, cmds: ['chown app -- /opt/r.tar', 'chmod 0755 -- /opt/r.tar'], reason: /owner root:root → app:root, mode 0600 → 0755/},
  {title: 'a directory → fails', have: {kind: 'directory', mode: 0o755, owner: 'root', group: 'root'}, args: {}, cmds: [], fail: /is a directory, not a regular file/},
  {title: 'malformed checksum → fails', have: {kind: 'missing'}, args: {checksum: 'sha256:abc'}, cmds: [], fail: /64 hex digits/},
  {title: 'relative dest → fails', have: {kind: 'missing'}, args: {dest: 'r.tar'}, cmds: [], fail: /absolute path/},
  {title: 'bad mode → fails', have: {kind: 'missing'}, args: {mode: 'rwx'}, cmds: [], fail: /bad mode/},
];
for (const c of planCases) {
  test(`getUrl plan: ${c.title}`, (t) => {
    const plan = getUrlModule.plan(c.have, {url: 'http://h/r.tar', dest: '/opt/r.tar', checksum: want, ...c.args});
    t.deepEqual(cmds(plan), c.cmds);
    if (c.fail) t.regex(plan.fail ?? '', c.fail);
    else t.is(plan.fail, undefined);
    if (c.reason) t.regex(plan.reason ?? '', c.reason);
    t.is(plan.diff !== undefined, c.diff ?? false);
  });
}

test('checksum: sha256 only, any case', (t) => {
  t.is(sha256Of(`sha256:${'AB'.repeat(32)}`), 'ab'.repeat(32));
  t.is(sha256Of(`md5:${'a'.repeat(32)}`), undefined);
  t.notThrows(() => execFileSync('sh', ['-n', '-c', downloadScript({url: "http://h/a'b", dest: "/tmp/it's here", checksum: want, owner: "o'x"})]));
});

// ---- for real: curl from the local shell, temp folders for dest

const realCases: {title: string; setup?: (dest: string) => void; args?: Partial<GetUrlArgs>; path?: string; status: 'ok' | 'changed' | 'failed'; msg: RegExp; sent: number; content: string | undefined; mode?: number}[] = [
  {title: 'missing → downloaded, 0644', status: 'changed', msg: /^download .* to .*; sha256:[0-9a-f]{12}$/, sent: 1, content: RELEASE, mode: 0o644},
  {title: 'missing, with mode and a redirect → downloaded', args: {mode: '0750'}, path: '/moved', status: 'changed', msg: /^download /, sent: 1, content: RELEASE, mode: 0o750},
  {title: 'converged → nothing sent, no request', setup: (d) => writeFileSync(d, RELEASE), status: 'ok', msg: /^already sha256:/, sent: 0, content: RELEASE},
  {title: 'drifted → replaced, keeping its mode', setup: (d) => { writeFileSync(d, OTHER); chmodSync(d, 0o600); }, status: 'changed', msg: /^replace /, sent: 1, content: RELEASE, mode: 0o600},
  {title: 'right content, drifted mode → chmod only', setup: (d) => { writeFileSync(d, RELEASE); chmodSync(d, 0o600); }, args: {mode: '0644'}, status: 'changed', msg: /^mode 0600 → 0644$/, sent: 1, content: RELEASE, mode: 0o644},
  {title: 'checksum mismatch → failed naming both, dest untouched', setup: (d) => writeFileSync(d, OTHER), args: {checksum: `sha256:${sha('expected')}`}, status: 'failed', msg: new RegExp(`checksum mismatch for .*: expected sha256:${sha('expected')}, got sha256:${sha(RELEASE)}; .* left untouched`), sent: 1, content: OTHER},
  {title: 'checksum mismatch, nothing there → failed, still nothing', args: {checksum: `sha256:${sha('expected')}`}, status: 'failed', msg: /checksum mismatch/, sent: 1, content: undefined},
  {title: '404 → failed, dest untouched', setup: (d) => writeFileSync(d, OTHER), path: '/gone', status: 'failed', msg: /download of .*\/gone failed; .* left untouched/, sent: 1, content: OTHER},
];
for (const c of realCases) {
  test.serial(`getUrl run: ${c.title}`, async (t) => {
    const dir = tempDir();
    const dest = join(dir, 'release.tar');
    c.setup?.(dest);
    const before = requests;
    const r = await run(getUrl({url: `${base}${c.path ?? '/release.tar'}`, dest, checksum: want, ...c.args}));
    t.is(r.status, c.status, r.msg);
    t.regex(r.msg, c.msg);
    t.is(r.sent.length, c.sent, r.sent.join('\n'));
    if (c.sent === 0) t.is(requests, before, 'a converged host never downloads');
    if (c.content === undefined) t.throws(() => readFileSync(dest));
    else t.is(readFileSync(dest, 'utf8'), c.content);
    if (c.mode !== undefined) t.is(modeOf(dest), c.mode);
    t.deepEqual(readdirSync(dir).filter((f) => f !== 'release.tar'), [], 'no temp file left behind');
    rmSync(dir, {recursive: true});
  });
}

test.serial('getUrl run: owner and group (our own) are set on the new file; twice → no change', async (t) => {
  const dir = tempDir();
  const dest = join(dir, 'release.tar');
  const {user, group} = me();
  const task = getUrl({url: `${base}/release.tar`, dest, checksum: want, owner: user, group});
  t.is((await run(task)).status, 'changed');
  const again = await run(task);
  t.is(again.status, 'ok', again.msg);
  t.deepEqual(again.sent, []);
  rmSync(dir, {recursive: true});
});

test.serial('getUrl run: dest in a missing directory → failed, clearly', async (t) => {
  const dir = tempDir();
  const r = await run(getUrl({url: `${base}/release.tar`, dest: join(dir, 'nope', 'release.tar'), checksum: want}));
  t.is(r.status, 'failed');
  t.regex(r.msg, /the directory of .*\/nope\/release\.tar does not exist/);
  rmSync(dir, {recursive: true});
});

// ---- check mode: the probe only

const checkCases: {title: string; files: Record<string, string>; status: 'ok' | 'changed'; msg: (dest: string) => string; cmds: string[]}[] = [
  {title: 'missing → would download', files: {}, status: 'changed', msg: (d) => `would download http://127.0.0.1:9/release.tar to ${d}`, cmds: ['sh -s']},
  {title: 'converged → ok, nothing', files: {'release.tar': RELEASE}, status: 'ok', msg: () => '', cmds: []},
  {title: 'drifted → would replace', files: {'release.tar': OTHER}, status: 'changed', msg: (d) => `would replace ${d} (sha256:${sha(OTHER).slice(0, 12)}… → sha256:${sha(RELEASE).slice(0, 12)}…) from http://127.0.0.1:9/release.tar`, cmds: ['sh -s']},
];
for (const c of checkCases) {
  test(`getUrl check mode: ${c.title}`, async (t) => {
    const host = fakeHost('geturl', {}, c.files);
    const dest = join(host.dir, 'release.tar');
    const task = getUrl({url: 'http://127.0.0.1:9/release.tar', dest, checksum: want, mode: statModeOr(dest)});
    const msg = c.msg(dest) || `already sha256:${sha(RELEASE).slice(0, 12)}…, ${statLine(dest)}`;
    await assertCheckMode(t, host, task, {status: c.status, msg, cmds: c.cmds});
  });
}

/** The mode the file has (so converged means converged), or 0644. */
function statModeOr(p: string): string {
  try {
    return '0' + (statSync(p).mode & 0o777).toString(8);
  } catch {
    return '0644';
  }
}

function statLine(p: string): string {
  const {user, group} = me();
  return `${statModeOr(p)} ${user}:${group}`;
}
