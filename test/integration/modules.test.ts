/**
 * The modules that are safe to apply on this machine, each over a real sshd on loopback through the
 * CLI (test/fixtures/project/playbooks/modules.ts, one play per module, selected with `--tags`):
 * the first run converges, the second changes nothing, and `--check` after the desired state moved
 * (`-e`) reports the change but leaves the host byte-identical (files and modes, the crontab, the
 * debconf answers, the requests an HTTP server received).
 *
 * Only throwaway state is touched: files under a temp folder, the crontab of `nobody` (restored
 * afterwards), a made-up debconf package `provision-test` (purged afterwards), an HTTP server this
 * test starts on 127.0.0.1. A missing tool (crontab, curl, debconf) fails its test, never skips it.
 */
import test, {type ExecutionContext} from 'ava';
import {execFileSync} from 'node:child_process';
import {createHash, randomBytes} from 'node:crypto';
import {chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {closedPort, keygen, startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';
import {jsonEvents, projectRoot, runCli, type Cli} from '../helpers/cli.ts';
import pLimit from 'p-limit';

const playbook = join(projectRoot, 'test', 'fixtures', 'project', 'playbooks', 'modules.ts');
const DEBCONF_PACKAGE = 'provision-test';
const CRON_USER = 'nobody';

interface Request {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const files: Record<string, string> = {'/files/a.txt': 'alpha\n', '/files/b.txt': 'bravo\n'};
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let sshd: Sshd;
let http: Server;
let httpBase = '';
const requests: Request[] = [];
const dirs: string[] = [];
/** `crontab -u nobody -l` before the tests (undefined: none), put back afterwards. */
let savedCrontab: string | undefined;

/** Whether `cmd` is on the PATH. */
const have = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], {stdio: 'ignore'});
    return true;
  } catch {
    return false;
  }
};

/** `crontab -u nobody -l`; undefined when the user has none. */
function crontabOf(user: string): string | undefined {
  try {
    return execFileSync('crontab', ['-u', user, '-l'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
  } catch (e) {
    if (/no crontab for/.test(String((e as {stderr?: unknown}).stderr))) return undefined;
    throw e;
  }
}

const purgeDebconf = (): void => {
  if (have('debconf-communicate')) execFileSync('debconf-communicate', [DEBCONF_PACKAGE], {input: 'PURGE\n', stdio: ['pipe', 'ignore', 'ignore']});
};

test.before(async () => {
  sshd = await startSshd();
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      requests.push({method: req.method ?? '', url: req.url ?? '', headers: req.headers, body});
      const file = files[req.url ?? ''];
      if (req.method === 'GET' && file !== undefined) res.writeHead(200, {'Content-Type': 'text/plain'}).end(file);
      else if (req.method === 'GET' && req.url === '/health') res.writeHead(200).end('status: healthy\n');
      else if (req.method === 'POST' && req.url === '/hook') res.writeHead(201).end('created\n');
      else res.writeHead(404).end('not found\n');
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const address = http.address();
  httpBase = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  if (have('crontab')) {
    // Without the entries of an earlier run of this file that died before its cleanup.
    const found = crontabOf(CRON_USER);
    const text = found?.replace(/^#provision: provision-test [0-9a-f]+\n.*\n/gm, '');
    savedCrontab = text === '' ? undefined : text;
    if (text !== found) execFileSync('crontab', ['-u', CRON_USER, ...(savedCrontab === undefined ? ['-r'] : ['-'])], {input: savedCrontab ?? ''});
  }
  purgeDebconf();
});

test.after.always(async () => {
  await sshd?.stop();
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  if (have('crontab')) {
    if (savedCrontab === undefined) {
      if (crontabOf(CRON_USER) !== undefined) execFileSync('crontab', ['-u', CRON_USER, '-r']);
    } else {
      execFileSync('crontab', ['-u', CRON_USER, '-'], {input: savedCrontab});
    }
  }
  purgeDebconf();
  for (const d of dirs) rmSync(d, {recursive: true, force: true});
});

interface Host {
  /** The temp folder (inventory, lock, retry files). */
  readonly dir: string;
  /** The host's `root` var: where its files go. */
  readonly root: string;
  readonly inventory: string;
}

/** A temp folder with an inventory of one host `t1` (its `root` created) and these `all` vars. */
function host(name: string, vars: Record<string, unknown> = {}): Host {
  const dir = mkdtempSync(join(tmpdir(), `prov-mod-${name}-`));
  dirs.push(dir);
  const inventory = writeLoopbackInventory(sshd, dir, {t1: {}}, {http_base: httpBase, ...vars});
  const root = join(dir, 't1');
  mkdirSync(root);
  return {dir, root, inventory};
}

interface Run {
  readonly cli: Cli;
  readonly counts: {ok: number; changed: number; failed: number; skipped: number; unreachable: number};
  /** Result events of t1, by task name. */
  readonly results: Record<string, {status: string; msg: string}>;
}

/** CLI runs at once: the tests run concurrently, each CLI is a node process compiling the playbook. */
const limit = pLimit(3);

/**
 * `provision run modules.ts --tags <tag> --json` on the host, plus `args`. `--no-typecheck`: the
 * playbook's types are `tsc --noEmit`'s job; the CLI's check is cached by content and costs seconds
 * per run whenever a source file changed in between.
 */
async function run(h: Host, tag: string, args: readonly string[] = []): Promise<Run> {
  const cli = await limit(() => runCli(['run', playbook, '-i', h.inventory, '--tags', tag, '--json', '--no-typecheck', ...args], {env: {PROVISION_RETRY_DIR: h.dir}}));
  let events: Array<Record<string, unknown>> = [];
  try {
    events = jsonEvents(cli.stdout);
  } catch {
    throw new Error(`not a JSON event stream (exit ${cli.code}):\n${cli.stdout}\n${cli.stderr}`);
  }
  const recap = events.find((e) => e.type === 'recap');
  const counts = (recap?.hosts as Record<string, Run['counts']> | undefined)?.t1;
  if (!counts) throw new Error(`no recap for t1 (exit ${cli.code}):\n${cli.stdout}\n${cli.stderr}`);
  const results = Object.fromEntries(events.filter((e) => e.type === 'result' && e.host === 't1').map((e) => [String(e.task), {status: String(e.status), msg: String(e.msg)}]));
  return {cli, counts, results};
}

/** What `run` printed, for a failed assertion. */
const out = (r: Run): string => `exit ${r.cli.code}\n${r.cli.stdout}${r.cli.stderr}`;

/** Every path under `dir` with its type, mode and content (or link target), sorted: equal means byte-identical. */
function tree(dir: string): string {
  const lines: string[] = [];
  for (const rel of readdirSync(dir, {recursive: true}).map(String).sort()) {
    const p = join(dir, rel);
    const s = lstatSync(p);
    const mode = (s.mode & 0o7777).toString(8).padStart(4, '0');
    const what = s.isSymbolicLink() ? `link ${readlinkSync(p)}` : s.isDirectory() ? 'dir' : `file ${createHash('sha256').update(readFileSync(p)).digest('hex')} ${s.size}`;
    lines.push(`${rel} ${mode} ${s.uid}:${s.gid} ${what}`);
  }
  return lines.join('\n');
}

/** Whether a `sleep 1` runs under the sshd `pid` (the waiting loop of `waitFor`, on the host): its process tree only. */
function sleepingUnder(pid: number): boolean {
  const todo = [String(pid)];
  for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'latin1') === 'sleep\u00001\u0000') return true;
      for (const task of readdirSync(`/proc/${p}/task`)) todo.push(...readFileSync(`/proc/${p}/task/${task}/children`, 'latin1').split(' ').filter(Boolean));
    } catch {
      // gone in between
    }
  }
  return false;
}

const modeOf = (p: string): string => (lstatSync(p).mode & 0o7777).toString(8).padStart(4, '0');

/**
 * The common contract: the first run changes `changed` tasks (exit 0), the second none; then `--check`
 * with `moved` (extra vars) reports `predicted` changes and `state()` is the same before and after.
 */
async function contract(t: ExecutionContext, h: Host, tag: string, o: {changed: number; moved: readonly string[]; predicted: number; state: () => string; afterFirst?: (r: Run) => void}): Promise<{first: Run; second: Run; check: Run}> {
  const first = await run(h, tag);
  t.is(first.cli.code, 0, out(first));
  t.like(first.counts, {changed: o.changed, failed: 0}, out(first));
  o.afterFirst?.(first);

  const converged = o.state();
  const second = await run(h, tag);
  t.is(second.cli.code, 0, out(second));
  t.like(second.counts, {changed: 0, failed: 0}, `second run: ${out(second)}`);
  t.is(o.state(), converged, 'the second run left the state as it was');

  const check = await run(h, tag, ['--check', ...o.moved.flatMap((e) => ['-e', e])]);
  t.is(check.cli.code, 0, out(check));
  t.like(check.counts, {changed: o.predicted, failed: 0}, `--check ${o.moved.join(' ')}: ${out(check)}`);
  t.is(o.state(), converged, '--check left the state byte-identical');
  return {first, second, check};
}

test('blockinfile: inserts the block before the anchor, keeps other lines; --check with another block touches nothing', async (t) => {
  const h = host('blockinfile');
  const path = join(h.root, 'block.conf');
  writeFileSync(path, 'keep=1\n# tail\n', {mode: 0o644});
  const {check} = await contract(t, h, 'blockinfile', {
    changed: 1, moved: ['block_value=two'], predicted: 1, state: () => tree(h.root),
    afterFirst: () => {
      t.is(readFileSync(path, 'utf8'), 'keep=1\n# BEGIN provision test\nvalue=one\nsecond line\n# END provision test\n# tail\n');
      t.is(modeOf(path), '0640');
    },
  });
  t.is(check.results.block?.status, 'changed');
  const real = await run(h, 'blockinfile', ['-e', 'block_value=two']);
  t.like(real.counts, {changed: 1, failed: 0}, out(real));
  t.is(readFileSync(path, 'utf8'), 'keep=1\n# BEGIN provision test\nvalue=two\nsecond line\n# END provision test\n# tail\n', 'replaced in place');
});

test('replace: every match after the section marker, Python group syntax; --check with another port touches nothing', async (t) => {
  const h = host('replace');
  const path = join(h.root, 'replace.conf');
  writeFileSync(path, 'port=1\n[server]\nport = 80\nname=x\nport=81\n', {mode: 0o600});
  await contract(t, h, 'replace', {
    changed: 1, moved: ['port=9090'], predicted: 1, state: () => tree(h.root),
    afterFirst: (r) => {
      t.is(readFileSync(path, 'utf8'), 'port=1\n[server]\nport=8080\nname=x\nport=8080\n', 'the line before [server] is kept');
      t.is(modeOf(path), '0600', 'the mode is kept');
      t.regex(r.results.ports?.msg ?? '', /replace 2 matches/);
    },
  });
});

test('stat: registered data (type, mode, size, owner, sha256, link target, missing) checked by assert; read-only in every mode', async (t) => {
  const content = 'hello stat\n';
  const h = host('stat', {stat_mode: '0640', stat_size: content.length, stat_sha256: sha(content)});
  writeFileSync(join(h.root, 'stat.txt'), content);
  chmodSync(join(h.root, 'stat.txt'), 0o640);
  symlinkSync('stat.txt', join(h.root, 'stat-link'));
  const before = tree(h.root);
  // Read-only: nothing to change on the first run either; the assert task is what can fail.
  const {first, check} = await contract(t, h, 'stat', {changed: 0, moved: [], predicted: 0, state: () => tree(h.root)});
  t.like(first.counts, {ok: 4});
  t.is(first.results['stat data']?.status, 'ok', out(first));
  t.regex(first.results['stat file']?.msg ?? '', /stat\.txt: file/);
  t.is(tree(h.root), before);
  t.is(check.results['stat data']?.status, 'ok', 'stat and assert run under --check too');

  const wrong = await run(h, 'stat', ['-e', 'stat_mode=0600']);
  t.is(wrong.cli.code, 2, out(wrong));
  t.is(wrong.results['stat data']?.status, 'failed');
  t.regex(wrong.results['stat data']?.msg ?? '', /stat saw .*"mode":"0640"/);
});

test('cron: an entry in nobody\'s crontab, named by its marker; --check with another minute leaves the crontab as it was', async (t) => {
  t.true(have('crontab'), 'crontab is not installed (Debian package cron)');
  if (!have('crontab')) return;
  const name = `provision-test ${randomBytes(4).toString('hex')}`;
  const h = host('cron', {cron_name: name, cron_user: CRON_USER});
  const others = savedCrontab ?? '';
  await contract(t, h, 'cron', {
    changed: 1, moved: ['cron_minute=10'], predicted: 1, state: () => crontabOf(CRON_USER) ?? '(none)',
    afterFirst: () => t.is(crontabOf(CRON_USER), `${others}#provision: ${name}\n5 4 * * mon-fri /bin/true provision-test\n`),
  });
});

test('authorizedKey: creates the folder 0700 and the file 0600 at `path`; --check with another key touches nothing', async (t) => {
  const keys = mkdtempSync(join(tmpdir(), 'prov-mod-keys-'));
  dirs.push(keys);
  const [k1, k2] = await Promise.all([keygen(join(keys, 'k1')), keygen(join(keys, 'k2'))]);
  const h = host('authorizedKey', {ak_key1: `${k1} provision-test-1`, ak_key2: `${k2} provision-test-2`});
  const file = join(h.root, 'ssh', 'authorized_keys');
  await contract(t, h, 'authorizedKey', {
    changed: 1, moved: ['ak_which=ak_key2'], predicted: 1, state: () => tree(h.root),
    afterFirst: () => {
      t.is(readFileSync(file, 'utf8'), `${k1} provision-test-1\n`);
      t.is(modeOf(join(h.root, 'ssh')), '0700');
      t.is(modeOf(file), '0600');
    },
  });
});

test('knownHosts: the sshd\'s host key under [127.0.0.1]:port; --check with a replaced key touches nothing', async (t) => {
  const keys = mkdtempSync(join(tmpdir(), 'prov-mod-hostkeys-'));
  dirs.push(keys);
  const other = await keygen(join(keys, 'other'));
  const name = `[127.0.0.1]:${sshd.port}`;
  const h = host('knownHosts', {kh_name: name, kh_key1: sshd.hostPublicKey, kh_key2: other});
  const file = join(h.root, 'kh', 'known_hosts');
  const {check} = await contract(t, h, 'knownHosts', {
    changed: 1, moved: ['kh_which=kh_key2'], predicted: 1, state: () => tree(h.root),
    afterFirst: () => {
      t.is(readFileSync(file, 'utf8'), `${name} ${sshd.hostPublicKey}\n`);
      t.is(modeOf(file), '0644');
      t.is(modeOf(join(h.root, 'kh')), '0700');
    },
  });
  t.regex(check.results['host key']?.msg ?? '', /replace the ssh-ed25519 key/);
  // The file is a real known_hosts: ssh-keygen finds the host in it.
  t.regex(execFileSync('ssh-keygen', ['-F', name, '-f', file], {encoding: 'utf8'}), /ssh-ed25519/);
});

test('getUrl: downloads once, verified; converged and --check runs send no request; a wrong checksum leaves dest untouched', async (t) => {
  t.true(have('curl'), 'curl is not installed');
  const h = host('getUrl', {sha_a: sha(files['/files/a.txt'] ?? ''), sha_b: sha(files['/files/b.txt'] ?? '')});
  const dest = join(h.root, 'download.txt');
  const mine = (): Request[] => requests.filter((r) => r.url.startsWith('/files/') && r.headers['x-provision-test'] === undefined);
  const seen = mine().length;
  await contract(t, h, 'getUrl', {
    changed: 1, moved: ['get_which=b'], predicted: 1, state: () => `${tree(h.root)}\nrequests ${mine().length}`,
    afterFirst: () => {
      t.is(readFileSync(dest, 'utf8'), 'alpha\n');
      t.is(modeOf(dest), '0640');
      t.deepEqual(mine().slice(seen).map((r) => `${r.method} ${r.url}`), ['GET /files/a.txt']);
    },
  });
  t.deepEqual(readdirSync(h.root), ['download.txt'], 'no temp file left');

  const bad = await run(h, 'getUrl', ['-e', 'get_which=b', '-e', `sha_b=${sha('not bravo\n')}`]);
  t.is(bad.cli.code, 2, out(bad));
  t.regex(bad.results.download?.msg ?? '', /checksum mismatch/);
  t.is(readFileSync(dest, 'utf8'), 'alpha\n', 'dest left untouched');
  t.deepEqual(readdirSync(h.root), ['download.txt'], 'the temp file was removed');
});

test('uri: a GET health gate is ok every run, the POST handler runs once per version; --check sends no request', async (t) => {
  t.true(have('curl'), 'curl is not installed');
  const token = randomBytes(6).toString('hex');
  const h = host('uri', {uri_token: token});
  // Only this test sends /health with its token, and only it POSTs to /hook.
  const mine = (): string[] => requests.filter((r) => (r.url === '/health' && r.headers['x-provision-test'] === token) || r.url === '/hook').map((r) => `${r.method} ${r.url} ${r.body}`);
  // The state: the files and the POSTs (a GET is a read, sent by every real run: counted at the end).
  const state = (): string => `${tree(h.root)}\n${mine().filter((r) => r.startsWith('POST')).join('\n')}`;
  const {first, second, check} = await contract(t, h, 'uri', {
    changed: 2, moved: ['uri_version=2'], predicted: 2, state,
    afterFirst: () => {
      t.deepEqual(mine(), ['GET /health ', 'POST /hook {"version":"1"}']);
      t.is(requests.find((r) => r.url === '/hook')?.headers['content-type'], 'application/json');
    },
  });
  t.is(first.results.health?.status, 'ok', 'a GET is not a change');
  t.is(first.results.announce?.status, 'changed');
  t.is(second.results.announce, undefined, 'the handler did not run again');
  t.is(check.results.health?.status, 'ok');
  t.regex(check.results.health?.msg ?? '', /^would GET /);
  t.regex(check.results.announce?.msg ?? '', /^would POST /);
  // One GET per real run; --check sent no request at all.
  t.deepEqual(mine(), ['GET /health ', 'POST /hook {"version":"1"}', 'GET /health ']);
});

test('waitFor: waits for a line to appear, a port to answer and another to be closed; never a change; --check does not wait; a timeout fails', async (t) => {
  const port = Number(new URL(httpBase).port);
  const h = host('waitFor', {open_port: port, closed_port: await closedPort()});
  const ready = join(h.root, 'ready');
  writeFileSync(ready, 'state=starting\n');
  // The run waits for `state=ready`, written once the host is seen waiting (its loop's `sleep 1`).
  let waited = false;
  const writer = (async () => {
    for (let i = 0; i < 600 && !waited; i++) {
      if (sleepingUnder(sshd.pid)) {
        waited = true;
        writeFileSync(ready, 'state=starting\nstate=ready\n');
      } else {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  const {first, second, check} = await contract(t, h, 'waitFor', {changed: 0, moved: ['wait_file=never'], predicted: 0, state: () => tree(h.root)});
  waited = true;
  await writer;
  t.like(first.counts, {ok: 4});
  t.regex(first.results['ready file']?.msg ?? '', /waited \d+ s/, out(first));
  t.regex(second.results['ready file']?.msg ?? '', /matches/);
  t.regex(second.results['open port']?.msg ?? '', /answers/);
  t.regex(second.results['closed port']?.msg ?? '', /is closed/);
  t.regex(check.results['ready file']?.msg ?? '', /would wait/, out(check));
  t.true(check.cli.ms < 10_000, '--check did not wait');

  const late = await run(h, 'waitFor', ['-e', 'wait_file=never', '-e', 'wait_timeout=1']);
  t.is(late.cli.code, 2, out(late));
  t.regex(late.results['ready file']?.msg ?? '', /timed out after 1 s waiting for .*never to match/);
  t.false(existsSync(join(h.root, 'never')));
});

test('fetch: the host\'s file lands on the controller (tree per host, flat), then 0 changed; a changed file is reported by --check, which writes nothing; a real run updates it', async (t) => {
  const h = host('fetch');
  const remote = join(h.root, 'remote', 'app.conf');
  mkdirSync(join(h.root, 'remote'));
  writeFileSync(remote, 'port=1\n', {mode: 0o600});
  const tree1 = join(h.root, 'backups', 't1', remote);
  const flat = join(h.root, 'flat', 't1.conf');
  const copies = (): string => [tree1, flat].map((p) => `${p} ${readFileSync(p, 'utf8')} ${modeOf(p)}`).join('\n');
  await contract(t, h, 'fetch', {
    changed: 2, moved: [], predicted: 0, state: copies,
    afterFirst: (r) => {
      t.is(readFileSync(tree1, 'utf8'), 'port=1\n');
      t.is(readFileSync(flat, 'utf8'), 'port=1\n');
      t.is(r.results.missing?.status, 'ok', 'failOnMissing: false');
    },
  });
  writeFileSync(remote, 'port=2\n');
  const before = copies();
  const check = await run(h, 'fetch', ['--check']);
  t.like(check.counts, {changed: 2, failed: 0}, out(check));
  t.regex(check.results.tree?.msg ?? '', /^would update .*app\.conf \(7 bytes from /);
  t.is(copies(), before, '--check wrote nothing on the controller');
  const real = await run(h, 'fetch');
  t.like(real.counts, {changed: 2, failed: 0}, out(real));
  t.is(readFileSync(tree1, 'utf8'), 'port=2\n');
  t.is(readFileSync(flat, 'utf8'), 'port=2\n');
});

test('debconf: string, multiselect and boolean answers of a made-up package; --check with another answer leaves the database as it was', async (t) => {
  t.true(have('debconf-set-selections') && have('debconf-show') && have('debconf-communicate'), 'debconf is not installed');
  const h = host('debconf', {dc_package: DEBCONF_PACKAGE});
  // debconf-show lists the questions in no fixed order.
  const show = (): string => execFileSync('debconf-show', [DEBCONF_PACKAGE], {encoding: 'utf8'}).split('\n').sort().join('\n');
  await contract(t, h, 'debconf', {
    changed: 3, moved: ['dc_value=changed'], predicted: 1, state: show,
    afterFirst: () => {
      const s = show();
      t.regex(s, /^\* provision-test\/question: hello world$/m);
      t.regex(s, /^\* provision-test\/flags: alpha, zeta$/m, 'multiselect stored sorted');
      t.regex(s, /^\* provision-test\/enabled: true$/m);
    },
  });
});
