import test from 'ava';
import {execFileSync, spawn} from 'node:child_process';
import {createHash, createHmac, randomBytes} from 'node:crypto';
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {createServer, type Server} from 'node:net';
import {tmpdir, userInfo} from 'node:os';
import {join} from 'node:path';
import {connectSsh, resolveConnection, type ConnectionSpec} from '../../src/transport/ssh.ts';
import {FileTransferError, HostKeyError, UnreachableError} from '../../src/transport/types.ts';
import {keygen, startSshd, type Sshd, closedPort} from '../helpers/sshd.ts';

let sshd: Sshd;

test.before(async () => {
  sshd = await startSshd();
});

test.after.always(async () => {
  await sshd?.stop();
});

/** The PID of the sshd process serving the connection a command runs on (its nearest sshd ancestor). */
const SSHD_PID = `p=$PPID; while [ "$p" -gt 1 ] && [ "$(ps -o comm= -p "$p")" != sshd ]; do p=$(ps -o ppid= -p "$p" | tr -d ' '); done; echo "$p"`;

function spec(overrides: Partial<ConnectionSpec> = {}): ConnectionSpec {
  return {
    host: 'lab1',
    address: sshd.address,
    port: sshd.port,
    user: 'root',
    privateKeyPath: sshd.clientKeyPath,
    knownHostsFile: sshd.knownHostsPath,
    acceptNewHostKeys: false,
    connectTimeoutMs: 5000,
    ...overrides,
  };
}

function scratch(): string {
  return mkdtempSync(join(sshd.tmp, 'case-'));
}

// ---------------------------------------------------------------------------------------------------
// exec

test('exec returns stdout, stderr and the exit code, untrimmed', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    t.is(ssh.host, 'lab1');
    t.deepEqual(await ssh.exec('echo out; echo err >&2; exit 3'), {code: 3, stdout: 'out\n', stderr: 'err\n'});
    t.deepEqual(await ssh.exec('printf "  a  "'), {code: 0, stdout: '  a  ', stderr: ''});
    t.deepEqual(await ssh.exec('whoami'), {code: 0, stdout: 'root\n', stderr: ''});
  } finally {
    await ssh.close();
  }
});

test('exec runs without a PTY and decodes multi-byte output split across packets', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    t.is((await ssh.exec('test -t 0 || test -t 1; echo $?')).stdout, '1\n');
    const r = await ssh.exec(`yes 'é€😀' | head -n 40000`);
    t.is(r.stdout, 'é€😀\n'.repeat(40000));
  } finally {
    await ssh.close();
  }
});

test('a command killed by a signal reports 128 + the signal, as a shell does (-1 on a channel of its own)', async (t) => {
  const ssh = await connectSsh({...spec(), multiplex: true});
  const own = await connectSsh({...spec(), multiplex: false});
  try {
    t.is((await ssh.exec('kill -9 $$')).code, 137);
    t.is((await own.exec('kill -9 $$')).code, -1);
  } finally {
    await ssh.close();
    await own.close();
  }
});

test('stdin reaches the command, binary-safe (1 MB)', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const data = randomBytes(1024 * 1024);
    const r = await ssh.exec('sha256sum; wc -c < /dev/null', {stdin: data});
    t.is(r.code, 0);
    t.is(r.stdout.split(/\s+/)[0], createHash('sha256').update(data).digest('hex'));
    t.deepEqual(await ssh.exec('cat', {stdin: 'héllo\n'}), {code: 0, stdout: 'héllo\n', stderr: ''});
    // A command that ignores a large stdin still completes.
    t.deepEqual(await ssh.exec('exit 4', {stdin: data}), {code: 4, stdout: '', stderr: ''});
    // Without stdin the command reads EOF at once.
    t.deepEqual(await ssh.exec('cat; echo done'), {code: 0, stdout: 'done\n', stderr: ''});
  } finally {
    await ssh.close();
  }
});

test('many concurrent execs share one connection (more than sshd MaxSessions)', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const n = 60;
    const results = await Promise.all(
      Array.from({length: n}, (_, i) => ssh.exec(`sleep 0.0$((${i} % 5)); echo ${i}; echo e${i} >&2; exit $((${i} % 7))`)),
    );
    results.forEach((r, i) => t.deepEqual(r, {code: i % 7, stdout: `${i}\n`, stderr: `e${i}\n`}));
    // One TCP connection: every command saw the same client address and port.
    const seen = await Promise.all(Array.from({length: 25}, () => ssh.exec('echo "$SSH_CONNECTION"')));
    t.is(new Set(seen.map((r) => r.stdout)).size, 1);
  } finally {
    await ssh.close();
  }
});

test('close is idempotent and exec afterwards is an UnreachableError', async (t) => {
  const ssh = await connectSsh(spec());
  await ssh.close();
  await ssh.close();
  await t.throwsAsync(ssh.exec('true'), {instanceOf: UnreachableError});
});

test('a dropped connection rejects running and later execs with UnreachableError', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    // The sshd process serving this connection: killing it drops the connection.
    const running = ssh.exec('sleep 30');
    const err = await t.throwsAsync(ssh.exec(`kill -9 $(${SSHD_PID}); sleep 5`), {instanceOf: UnreachableError});
    t.regex(err!.message, /connection to lab1 .* lost/);
    await t.throwsAsync(running, {instanceOf: UnreachableError});
    await t.throwsAsync(ssh.exec('true'), {instanceOf: UnreachableError});
  } finally {
    await ssh.close();
  }
});

// ---------------------------------------------------------------------------------------------------
// start

test('start: stdin stays open, output arrives as it comes (multi-byte characters intact), end() finishes it', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const chunks: string[] = [];
    let sawFirst: () => void = () => undefined;
    const first = new Promise<void>((r) => (sawFirst = r));
    const running = await ssh.start('echo ready; while IFS= read -r l; do printf "got %s\\n" "$l"; done; echo bye >&2', (c) => {
      chunks.push(c);
      sawFirst();
    });
    await first;
    t.is(chunks.join(''), 'ready\n', 'output before stdin ends');
    running.write('é€😀\n');
    running.write('two\n');
    running.end();
    const r = await running.done;
    t.deepEqual(r, {code: 0, stdout: 'ready\ngot é€😀\ngot two\n', stderr: 'bye\n'});
    t.is(chunks.join(''), r.stdout);
    running.write('ignored after the end\n');
  } finally {
    await ssh.close();
  }
});

test('start: a dropped connection ends the command with code -1 and says why', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const running = await ssh.start('cat', () => undefined);
    await t.throwsAsync(ssh.exec(`kill -9 $(${SSHD_PID}); sleep 5`), {instanceOf: UnreachableError});
    const r = await running.done;
    t.is(r.code, -1);
    t.regex(r.stderr, /^connection to lab1 .* lost/);
    await t.throwsAsync(ssh.start('true', () => undefined), {instanceOf: UnreachableError});
  } finally {
    await ssh.close();
  }
});

// ---------------------------------------------------------------------------------------------------
// put and get

/** Every byte value, then random bytes: content no text decoding survives. */
function binary(size: number): Buffer {
  return Buffer.concat([Buffer.from(Array.from({length: 256}, (_, i) => i)), randomBytes(size)]);
}

const tempsBeside = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes('.provision.'));

test('put and get: binary content round-trips unchanged; strings are written as UTF-8', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const dir = scratch();
    const path = join(dir, `bin 'quoted' $x.dat`);
    const data = binary(3 * 1024 * 1024);
    await ssh.put(path, data);
    t.true(readFileSync(path).equals(data), 'the bytes on the host');
    t.true((await ssh.get(path)).equals(data), 'the bytes read back');
    await ssh.put(path, 'héllo\n');
    t.is(readFileSync(path, 'utf8'), 'héllo\n');
    t.deepEqual(await ssh.get(path), Buffer.from('héllo\n'));
    await ssh.put(path, '');
    t.is((await ssh.get(path)).length, 0);
    t.deepEqual(tempsBeside(dir), [], 'no temp file left');
  } finally {
    await ssh.close();
  }
});

test('put: mode when given, else a new file\'s (0666 less the umask)', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const dir = scratch();
    const path = join(dir, 'f');
    await ssh.put(path, 'x', {mode: 0o640});
    t.is(statSync(path).mode & 0o7777, 0o640);
    await ssh.put(path, 'y', {mode: 0o4755});
    t.is(statSync(path).mode & 0o7777, 0o4755);
    const umask = parseInt((await ssh.exec('umask')).stdout.trim(), 8);
    await ssh.put(path, 'z');
    t.is(statSync(path).mode & 0o7777, 0o666 & ~umask);
  } finally {
    await ssh.close();
  }
});

test('put and get: failures are FileTransferErrors naming the path; the target is left as it was', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const dir = scratch();
    const missing = join(dir, 'no', 'such', 'dir', 'f');
    const err = await t.throwsAsync(ssh.put(missing, 'x'), {instanceOf: FileTransferError});
    t.is(err!.path, missing);
    t.is(err!.host, 'lab1');
    t.regex(err!.message, new RegExp(`^cannot write ${missing} on lab1: .+`));

    // A directory of that name: refused (mv would move the file into it), the directory untouched.
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    writeFileSync(join(sub, 'keep'), 'kept');
    const dirErr = await t.throwsAsync(ssh.put(sub, 'x'), {instanceOf: FileTransferError});
    t.is(dirErr!.message, `cannot write ${sub} on lab1: ${sub} is a directory`);
    t.deepEqual(readdirSync(sub), ['keep']);
    t.deepEqual(tempsBeside(dir), []);

    const getErr = await t.throwsAsync(ssh.get(join(dir, 'absent')), {instanceOf: FileTransferError});
    t.regex(getErr!.message, new RegExp(`^cannot read ${join(dir, 'absent')} on lab1: .*No such file or directory$`));
    await t.throwsAsync(ssh.get(sub), {instanceOf: FileTransferError, message: /Is a directory$/});
  } finally {
    await ssh.close();
  }
});

test('put: the connection dropped mid-upload leaves the old content and no temp file', async (t) => {
  const ssh = await connectSsh(spec());
  const dir = scratch();
  const path = join(dir, 'big');
  const old = Buffer.from('the old content\n');
  writeFileSync(path, old);
  try {
    // The sshd process serving this connection.
    const sshdPid = Number((await ssh.exec(SSHD_PID)).stdout.trim());
    t.true(sshdPid > 1);
    const putting = ssh.put(path, binary(48 * 1024 * 1024));
    const outcome = putting.then(() => 'done', (e: unknown) => e);
    // The temp file appears (mktemp) before the first byte is copied: drop the connection then.
    const deadline = Date.now() + 20_000;
    while (tempsBeside(dir).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    t.true(tempsBeside(dir).length > 0, 'the upload started');
    process.kill(sshdPid, 'SIGKILL');
    const result = await outcome;
    t.true(result instanceof UnreachableError, `put rejects with UnreachableError (got ${String(result)})`);
    t.true(readFileSync(path).equals(old), 'the old content, untouched');
    // The remote shell sees end of file (or a signal) and its trap removes the temp file.
    for (let i = 0; i < 500 && tempsBeside(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    t.deepEqual(tempsBeside(dir), [], 'no temp file left');
  } finally {
    await ssh.close();
  }
});

test('put: a temp file left by a writer killed outright is removed by the next put', async (t) => {
  const ssh = await connectSsh(spec());
  try {
    const dir = scratch();
    writeFileSync(join(dir, '.f.provision.abc123'), 'stale');
    writeFileSync(join(dir, '.other.provision.abc123'), 'not ours');
    await ssh.put(join(dir, 'f'), 'new');
    t.deepEqual(readdirSync(dir).sort(), ['.other.provision.abc123', 'f']);
  } finally {
    await ssh.close();
  }
});

// ---------------------------------------------------------------------------------------------------
// Host keys

test('an unknown host key is refused with HostKeyError and a clear message', async (t) => {
  const dir = scratch();
  const knownHostsFile = join(dir, 'known_hosts');
  writeFileSync(knownHostsFile, `# nothing here\n[127.0.0.1]:1 ${sshd.hostPublicKey}\n`);
  const err = await t.throwsAsync(connectSsh(spec({knownHostsFile})), {instanceOf: HostKeyError});
  t.is(err!.host, 'lab1');
  t.regex(err!.message, new RegExp(`^host key for lab1 \\(127\\.0\\.0\\.1:${sshd.port}\\) is not in ${knownHostsFile} `));
  t.regex(err!.message, /ssh-ed25519 SHA256:\S+\); connect once with --accept-new-host-keys to trust it$/);
  // A missing file is the same: unknown.
  await t.throwsAsync(connectSsh(spec({knownHostsFile: join(dir, 'missing')})), {instanceOf: HostKeyError});
});

test('an unknown host key is recorded with acceptNewHostKeys (file 0600 in a new 0700 dir)', async (t) => {
  const dir = join(scratch(), 'new', '.ssh');
  const knownHostsFile = join(dir, 'known_hosts');
  const ssh = await connectSsh(spec({knownHostsFile, acceptNewHostKeys: true}));
  t.is((await ssh.exec('echo ok')).stdout, 'ok\n');
  await ssh.close();
  t.is(readFileSync(knownHostsFile, 'utf8'), `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
  t.is(statSync(knownHostsFile).mode & 0o777, 0o600);
  t.is(statSync(dir).mode & 0o777, 0o700);
  // Now known: accepted without the flag, and not written twice.
  const again = await connectSsh(spec({knownHostsFile}));
  await again.close();
  t.is(readFileSync(knownHostsFile, 'utf8').split('\n').filter(Boolean).length, 1);
});

test('acceptNewHostKeys appends to an existing file without a trailing newline', async (t) => {
  const knownHostsFile = join(scratch(), 'known_hosts');
  writeFileSync(knownHostsFile, 'other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake');
  const ssh = await connectSsh(spec({knownHostsFile, acceptNewHostKeys: true}));
  await ssh.close();
  const lines = readFileSync(knownHostsFile, 'utf8').split('\n');
  t.is(lines[1], `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}`);
});

test('hashed known_hosts entries and the inventory name match', async (t) => {
  const dir = scratch();
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(`[127.0.0.1]:${sshd.port}`).digest('base64');
  const hashed = join(dir, 'hashed');
  writeFileSync(hashed, `|1|${salt.toString('base64')}|${hash} ${sshd.hostPublicKey}\n`);
  await (await connectSsh(spec({knownHostsFile: hashed}))).close();

  const byName = join(dir, 'by-name');
  writeFileSync(byName, `other,[lab1]:${sshd.port} ${sshd.hostPublicKey}\n`);
  await (await connectSsh(spec({knownHostsFile: byName}))).close();

  const wildcard = join(dir, 'wildcard');
  writeFileSync(wildcard, `[127.0.0.*]:${sshd.port} ${sshd.hostPublicKey}\n`);
  await (await connectSsh(spec({knownHostsFile: wildcard}))).close();

  const negated = join(dir, 'negated');
  writeFileSync(negated, `[127.0.0.*]:${sshd.port},![127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
  await t.throwsAsync(connectSsh(spec({knownHostsFile: negated, host: 'x'})), {instanceOf: HostKeyError});
});

test('a changed host key is always refused, even with acceptNewHostKeys', async (t) => {
  const dir = scratch();
  const otherKey = await keygen(join(dir, 'other_host_key'));
  const knownHostsFile = join(dir, 'known_hosts');
  const content = `# header\n[127.0.0.1]:${sshd.port} ${otherKey}\n`;
  writeFileSync(knownHostsFile, content);
  for (const acceptNewHostKeys of [false, true]) {
    const err = await t.throwsAsync(connectSsh(spec({knownHostsFile, acceptNewHostKeys})), {instanceOf: HostKeyError});
    t.regex(err!.message, new RegExp(`^host key for lab1 \\(127\\.0\\.0\\.1:${sshd.port}\\) has CHANGED`));
    t.true(err!.message.includes(`${knownHostsFile}:2`));
  }
  t.is(readFileSync(knownHostsFile, 'utf8'), content);
});

test('a @revoked host key is refused', async (t) => {
  const knownHostsFile = join(scratch(), 'known_hosts');
  writeFileSync(knownHostsFile, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n@revoked * ${sshd.hostPublicKey}\n`);
  const err = await t.throwsAsync(connectSsh(spec({knownHostsFile, acceptNewHostKeys: true})), {instanceOf: HostKeyError});
  t.regex(err!.message, /@revoked/);
});

// ---------------------------------------------------------------------------------------------------
// Connect failures


test('a closed port is an UnreachableError, quickly', async (t) => {
  const port = await closedPort();
  const started = Date.now();
  const err = await t.throwsAsync(connectSsh(spec({port})), {instanceOf: UnreachableError});
  t.false(err instanceof HostKeyError);
  t.is(err!.message, `cannot connect to lab1 (127.0.0.1:${port}): connection refused`);
  t.true(Date.now() - started < 1000);
});

test('a server that never answers times out after connectTimeoutMs', async (t) => {
  const silent: Server = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const address = silent.address();
  const port = typeof address === 'object' && address ? address.port : 1;
  try {
    const started = Date.now();
    const err = await t.throwsAsync(connectSsh(spec({port, connectTimeoutMs: 400})), {instanceOf: UnreachableError});
    t.is(err!.message, `cannot connect to lab1 (127.0.0.1:${port}): timed out after 0.4 s`);
    t.true(Date.now() - started < 3000);
  } finally {
    silent.close();
  }
});

test('a key the server does not accept is an authentication failure', async (t) => {
  const dir = scratch();
  const wrongKey = join(dir, 'id_wrong');
  await keygen(wrongKey);
  const err = await t.throwsAsync(connectSsh(spec({privateKeyPath: wrongKey})), {instanceOf: UnreachableError});
  t.is(err!.message, `authentication failed for root@lab1 (127.0.0.1:${sshd.port}) (tried: key ${wrongKey})`);
});

test('a second key is tried after the first fails', async (t) => {
  const dir = scratch();
  const wrongKey = join(dir, 'id_wrong');
  await keygen(wrongKey);
  const ssh = await connectSsh(spec({privateKeyPath: wrongKey, extraPrivateKeyPaths: [sshd.clientKeyPath]}));
  t.is((await ssh.exec('echo ok')).stdout, 'ok\n');
  await ssh.close();
});

test('a missing named key file is an UnreachableError naming the file', async (t) => {
  const missing = join(scratch(), 'nope');
  const err = await t.throwsAsync(connectSsh(spec({privateKeyPath: missing})), {instanceOf: UnreachableError});
  t.regex(err!.message, new RegExp(`^cannot read private key ${missing} for lab1: `));
});

test('an encrypted key is skipped with a hint', async (t) => {
  const dir = scratch();
  const key = join(dir, 'id_enc');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', key]);
  const err = await t.throwsAsync(connectSsh(spec({privateKeyPath: key})), {instanceOf: UnreachableError});
  t.regex(err!.message, /encrypted: passphrases are not supported, load it into ssh-agent/);
});

test('keys from an ssh-agent', async (t) => {
  const dir = scratch();
  const socket = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], {stdio: 'ignore'});
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
    execFileSync('ssh-add', ['-q', sshd.clientKeyPath], {env: {...process.env, SSH_AUTH_SOCK: socket}, stdio: 'ignore'});
    const ssh = await connectSsh(spec({privateKeyPath: undefined, agent: socket}));
    t.is((await ssh.exec('echo ok')).stdout, 'ok\n');
    await ssh.close();
  } finally {
    if (agent.pid !== undefined) process.kill(agent.pid, 'SIGTERM');
  }
});

// ---------------------------------------------------------------------------------------------------
// ProxyJump

test('ProxyJump: reach the target through a jump host (the same sshd, to itself)', async (t) => {
  const jump = spec({host: 'bastion'});
  const ssh = await connectSsh(spec({proxyJump: jump}));
  try {
    const r = await ssh.exec('echo "$SSH_CONNECTION"');
    // Through the jump host the target sees a connection from 127.0.0.1 (sshd forwarding to itself).
    t.regex(r.stdout, new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${sshd.port}\\n$`));
    t.is((await ssh.exec('cat', {stdin: 'via jump'})).stdout, 'via jump');
  } finally {
    await ssh.close();
  }
});

test('ProxyJump: two hops', async (t) => {
  const first = spec({host: 'hop1'});
  const second = spec({host: 'hop2', proxyJump: first});
  const ssh = await connectSsh(spec({proxyJump: second}));
  t.is((await ssh.exec('echo ok')).stdout, 'ok\n');
  await ssh.close();
});

test('ProxyJump: the jump host key is checked too', async (t) => {
  const jump = spec({host: 'bastion', knownHostsFile: join(scratch(), 'empty')});
  const err = await t.throwsAsync(connectSsh(spec({proxyJump: jump})), {instanceOf: HostKeyError});
  t.is(err!.host, 'bastion');
});

test('ProxyJump: a closed target port behind the jump host is an UnreachableError', async (t) => {
  const port = await closedPort();
  const err = await t.throwsAsync(connectSsh(spec({port, proxyJump: spec({host: 'bastion'})})), {instanceOf: UnreachableError});
  t.regex(err!.message, new RegExp(`^cannot connect to lab1 \\(127\\.0\\.0\\.1:${port}\\) through jump host bastion: `));
});

// ---------------------------------------------------------------------------------------------------
// resolveConnection

function fakeHome(): {home: string; sshConfig: string; write(path: string): string} {
  const home = mkdtempSync(join(tmpdir(), 'provision-home-'));
  mkdirSync(join(home, '.ssh'));
  const write = (p: string) => {
    writeFileSync(p, 'key');
    return p;
  };
  return {home, sshConfig: join(home, '.ssh', 'config'), write};
}

const SSH_CONFIG = `
Host web1
  HostName 10.0.0.5
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web_key
  ProxyJump jumper@bastion.example:2200

Host db*
  hostname %h.internal
  port 2022
  IdentityFile ~/.ssh/missing_key
  StrictHostKeyChecking accept-new
  ConnectTimeout 3
  UserKnownHostsFile ~/.ssh/known_hosts_db

Host bastion.example
  HostName 192.0.2.1
  IdentityFile ~/.ssh/bastion_key

Host multi
  ProxyJump a@h1,h2:2201

Host *
  User fallback
`;

test('resolveConnection: defaults when nothing is configured', (t) => {
  const {home, write} = fakeHome();
  try {
    write(join(home, '.ssh', 'id_rsa'));
    write(join(home, '.ssh', 'id_ed25519'));
    const s = resolveConnection('app1', {}, {env: {HOME: home}});
    t.deepEqual(s, {
      host: 'app1',
      address: 'app1',
      port: 22,
      user: userInfo().username,
      privateKeyPath: join(home, '.ssh', 'id_ed25519'),
      extraPrivateKeyPaths: [join(home, '.ssh', 'id_rsa')],
      knownHostsFile: join(home, '.ssh', 'known_hosts'),
      acceptNewHostKeys: false,
      connectTimeoutMs: 10_000,
      pacing: {maxStartups: 8},
    });
    const withAgent = resolveConnection('app1', {}, {env: {HOME: home, SSH_AUTH_SOCK: '/tmp/agent.sock'}});
    t.is(withAgent.agent, '/tmp/agent.sock');
  } finally {
    rmSync(home, {recursive: true, force: true});
  }
});

test('resolveConnection: the ssh config fills in HostName, User, Port, IdentityFile and ProxyJump', (t) => {
  const {home, sshConfig, write} = fakeHome();
  try {
    writeFileSync(sshConfig, SSH_CONFIG);
    const webKey = write(join(home, '.ssh', 'web_key'));
    const bastionKey = write(join(home, '.ssh', 'bastion_key'));
    const defaultKey = write(join(home, '.ssh', 'id_ed25519'));
    const s = resolveConnection('web1', {}, {env: {HOME: home}});
    t.like(s, {host: 'web1', address: '10.0.0.5', port: 2222, user: 'deploy', privateKeyPath: webKey});
    t.is(s.extraPrivateKeyPaths, undefined);
    t.deepEqual(s.proxyJump, {
      host: 'bastion.example',
      address: '192.0.2.1',
      port: 2200,
      user: 'jumper',
      privateKeyPath: bastionKey,
      knownHostsFile: join(home, '.ssh', 'known_hosts'),
      acceptNewHostKeys: false,
      connectTimeoutMs: 10_000,
    });

    // %h, lower-case keywords, a missing IdentityFile (skipped, no default keys either), host key and timeout options.
    const db = resolveConnection('db3', {}, {env: {HOME: home}});
    t.like(db, {address: 'db3.internal', port: 2022, user: 'fallback', acceptNewHostKeys: true, connectTimeoutMs: 3000});
    t.is(db.knownHostsFile, join(home, '.ssh', 'known_hosts_db'));
    t.is(db.privateKeyPath, undefined);

    // Several hops: the target goes through h2, which goes through a@h1.
    const multi = resolveConnection('multi', {}, {env: {HOME: home}});
    t.like(multi.proxyJump, {host: 'h2', port: 2201, user: 'fallback', privateKeyPath: defaultKey});
    t.like(multi.proxyJump?.proxyJump, {host: 'h1', port: 22, user: 'a'});
    t.is(multi.proxyJump?.proxyJump?.proxyJump, undefined);
  } finally {
    rmSync(home, {recursive: true, force: true});
  }
});

test('resolveConnection: inventory variables beat the ssh config', (t) => {
  const {home, sshConfig, write} = fakeHome();
  try {
    writeFileSync(sshConfig, SSH_CONFIG);
    write(join(home, '.ssh', 'web_key'));
    const s = resolveConnection(
      'web1',
      {
        ansible_port: 2200,
        ansible_user: 'admin',
        ansible_ssh_private_key_file: '~/keys/admin',
        ansible_ssh_pass: {reveal: () => 's3cret'},
        provision_known_hosts_file: '~/inventory/known_hosts',
        ansible_timeout: '7',
      },
      {env: {HOME: home}, knownHostsFile: '/cli/known_hosts', connectTimeoutMs: 1000},
    );
    t.like(s, {
      address: '10.0.0.5',
      port: 2200,
      user: 'admin',
      privateKeyPath: join(home, 'keys', 'admin'),
      password: 's3cret',
      knownHostsFile: join(home, 'inventory', 'known_hosts'),
      connectTimeoutMs: 7000,
    });
    t.is(s.extraPrivateKeyPaths, undefined);

    // ansible_host is what the ssh config is looked up by, as `ssh` would.
    const byAddress = resolveConnection('frontend', {ansible_host: 'web1'}, {env: {HOME: home}});
    t.like(byAddress, {host: 'frontend', address: '10.0.0.5', user: 'deploy', port: 2222});
    const plain = resolveConnection('web1', {ansible_host: '10.9.9.9', ansible_ssh_known_hosts_file: '/inv/kh'}, {env: {HOME: home}});
    t.like(plain, {address: '10.9.9.9', user: 'fallback', port: 22, knownHostsFile: '/inv/kh'});
    t.is(plain.proxyJump, undefined);

    // Command-line options apply when the inventory is silent.
    const cli = resolveConnection('x', {}, {env: {HOME: home}, knownHostsFile: '/cli/kh', acceptNewHostKeys: true, connectTimeoutMs: 1500});
    t.like(cli, {knownHostsFile: '/cli/kh', acceptNewHostKeys: true, connectTimeoutMs: 1500});

    // ProxyJump from ansible_ssh_common_args beats the ssh config's.
    const jumped = resolveConnection('web1', {ansible_ssh_common_args: "-o ProxyJump='ops@gw:2022'"}, {env: {HOME: home}});
    t.like(jumped.proxyJump, {host: 'gw', user: 'ops', port: 2022});
    const dashJ = resolveConnection('x', {ansible_ssh_common_args: '-J [2001:db8::1]:2200 -o ServerAliveInterval=5'}, {env: {HOME: home}});
    t.like(dashJ.proxyJump, {host: '2001:db8::1', address: '2001:db8::1', port: 2200});

    t.throws(() => resolveConnection('x', {ansible_port: 'ssh'}, {env: {HOME: home}}), {
      instanceOf: UnreachableError,
      message: 'x: ansible_port is not a port number: "ssh"',
    });
  } finally {
    rmSync(home, {recursive: true, force: true});
  }
});

test('resolveConnection: an explicit sshConfigPath, and a missing config file is fine', (t) => {
  const {home} = fakeHome();
  try {
    const other = join(home, 'other_config');
    writeFileSync(other, 'Host app\n  User viaother\n');
    t.is(resolveConnection('app', {}, {env: {HOME: home}, sshConfigPath: other}).user, 'viaother');
    t.is(resolveConnection('app', {}, {env: {HOME: home}, sshConfigPath: join(home, 'none')}).user, userInfo().username);
  } finally {
    rmSync(home, {recursive: true, force: true});
  }
});

test('resolveConnection + connectSsh against the test sshd through an ssh config', async (t) => {
  const {home, sshConfig} = fakeHome();
  try {
    writeFileSync(
      sshConfig,
      `Host lab\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User root\n  IdentityFile ${sshd.clientKeyPath}\n` +
        `Host labjump\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User root\n  IdentityFile ${sshd.clientKeyPath}\n  ProxyJump lab\n`,
    );
    for (const name of ['lab', 'labjump']) {
      const s = resolveConnection(name, {}, {env: {HOME: home}, knownHostsFile: sshd.knownHostsPath});
      const ssh = await connectSsh(s);
      t.is((await ssh.exec('echo ok')).stdout, 'ok\n');
      await ssh.close();
    }
  } finally {
    rmSync(home, {recursive: true, force: true});
  }
});

// ---------------------------------------------------------------------------------------------------
// One shell per host

test('one login shell per connection: a profile runs once, however many commands (a channel each: once per command)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'provision-profile-'));
  const count = join(dir, 'count');
  // bash sources BASH_ENV for each command sshd starts through it, as a login profile (.bashrc) would.
  writeFileSync(join(dir, 'profile.sh'), `echo shell >>${count}\n`);
  const counting = await startSshd({env: {BASH_ENV: join(dir, 'profile.sh')}});
  const at = (multiplex: boolean): ConnectionSpec => ({...spec(), port: counting.port, knownHostsFile: counting.knownHostsPath, privateKeyPath: counting.clientKeyPath, multiplex});
  const shells = (): number => (existsSync(count) ? readFileSync(count, 'utf8').split('\n').filter(Boolean).length : 0);
  try {
    const ssh = await connectSsh(at(true));
    const outs = await Promise.all(Array.from({length: 30}, (_, i) => ssh.exec(`echo ${i}`)));
    const control = await ssh.start('cat', () => undefined);
    await ssh.put(join(dir, 'f'), 'x');
    t.is((await ssh.get(join(dir, 'f'))).toString(), 'x');
    control.end();
    await control.done;
    await ssh.close();
    t.deepEqual(outs.map((r) => r.stdout), Array.from({length: 30}, (_, i) => `${i}\n`));
    t.is(shells(), 1, 'one login shell for 30 execs, a started command, a put and a get');

    const own = await connectSsh(at(false));
    for (let i = 0; i < 5; i++) await own.exec('true');
    await own.close();
    t.is(shells(), 1 + 5, 'without the mux: a login shell per command');
  } finally {
    await counting.stop();
    rmSync(dir, {recursive: true, force: true});
  }
});

test('provision_multiplex: true always, false never, auto (the default) when the login shell is slow', (t) => {
  t.is(resolveConnection('h', {provision_multiplex: false}).multiplex, false);
  t.is(resolveConnection('h', {provision_multiplex: 'no'}).multiplex, false);
  t.is(resolveConnection('h', {provision_multiplex: 'yes'}).multiplex, true);
  t.is(resolveConnection('h', {provision_multiplex: true}).multiplex, true);
  t.is(resolveConnection('h', {}).multiplex, undefined);
  t.is(resolveConnection('h', {provision_multiplex: 'auto'}).multiplex, undefined);
});

test('auto: a login profile that burns CPU gets one shell for every command; a quick one a channel per command', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'provision-profile-'));
  const count = join(dir, 'count');
  const profile = join(dir, 'profile.sh');
  const shells = (): number => (existsSync(count) ? readFileSync(count, 'utf8').split('\n').filter(Boolean).length : 0);
  const counting = await startSshd({env: {BASH_ENV: profile}});
  const at: ConnectionSpec = {...spec(), port: counting.port, knownHostsFile: counting.knownHostsPath, privateKeyPath: counting.clientKeyPath};
  try {
    // About 100 ms of CPU, as `pyenv init` or a conda hook.
    writeFileSync(profile, `echo shell >>${count}\ni=0; while [ $i -lt 60000 ]; do i=$((i+1)); done\n`);
    const slow = await connectSsh(at);
    for (let i = 0; i < 5; i++) t.is((await slow.exec(`echo ${i}`)).stdout, `${i}\n`);
    await slow.close();
    t.is(shells(), 1, 'a slow login shell: started once');

    writeFileSync(profile, `echo shell >>${count}\n`);
    const quick = await connectSsh(at);
    for (let i = 0; i < 5; i++) await quick.exec('true');
    await quick.close();
    t.is(shells(), 1 + 1 + 5, 'a quick one: the driver\'s (which saw it was quick), then a channel per command');
  } finally {
    await counting.stop();
    rmSync(dir, {recursive: true, force: true});
  }
});
