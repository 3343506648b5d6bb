/**
 * unarchive through the real CLI over a real sshd on loopback: a tar.gz and a zip made here, on the
 * "host" (this machine, as root): the first run extracts, the second changes nothing; a file changed in
 * dest is drift: --check says so and leaves the disk as it is, a real run repairs it.
 */
import test from 'ava';
import {execFileSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';
import {jsonEvents, projectRoot, runCli} from '../helpers/cli.ts';

const playbook = join(projectRoot, 'test', 'fixtures', 'project', 'playbooks', 'unarchive.ts');
const missing = ['tar', 'gzip', 'zip', 'unzip'].filter((tool) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
    return false;
  } catch {
    return true;
  }
});

let sshd: Sshd | undefined;
test.before(async () => {
  if (missing.length === 0) sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});

/** Every file under `dir` with its mode, size, mtime and content: what "untouched" means. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, {recursive: true}).map(String).sort().map((p) => {
    const s = statSync(join(dir, p));
    return `${p} ${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid} ${s.size} ${s.mtimeMs} ${s.isFile() ? readFileSync(join(dir, p), 'utf8') : ''}`;
  });
}

const statuses = (out: string): Record<string, string> =>
  Object.fromEntries(jsonEvents(out).filter((e) => e.type === 'result').map((e) => [String(e.task), String(e.status)]));

const title = 'unarchive tar.gz and zip over SSH: extracts, then 0 changed; drift is seen, --check leaves it, a run repairs it';
test.serial(title, async (t) => {
  if (missing.length > 0) return t.fail(`needs ${missing.join(', ')} (scripts/install-deps.sh installs them: apt-get install ${missing.join(' ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'prov-unarchive-'));
  const home = join(dir, 'h1');
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'sub'), {recursive: true});
  writeFileSync(join(tree, 'a.txt'), 'alpha\n', {mode: 0o644});
  writeFileSync(join(tree, 'sub', 'b.txt'), 'bravo\n', {mode: 0o644});
  mkdirSync(home);
  execFileSync('tar', ['-C', tree, '-czf', join(home, 'app.tar.gz'), 'a.txt', 'sub']);
  execFileSync('zip', ['-qr', join(home, 'app.zip'), 'a.txt', 'sub'], {cwd: tree});
  const inv = writeLoopbackInventory(sshd!, dir, {h1: {}});
  const times: string[] = [];
  let last = '';
  const run = async (...extra: string[]): Promise<Record<string, string>> => {
    const r = await runCli(['run', playbook, '-i', inv, '--json', '--no-typecheck', ...extra]);
    t.is(r.code, 0, r.stderr + r.stdout);
    const tasks = jsonEvents(r.stdout).filter((e) => e.type === 'result').map((e) => `${String(e.task)} ${String(e.duration_ms)} ms`);
    const engine = jsonEvents(r.stdout).find((e) => e.type === 'recap')?.duration_ms;
    times.push(`${r.ms} ms (run ${String(engine)} ms: ${tasks.join(', ')})`);
    last = r.stdout;
    return statuses(r.stdout);
  };
  const tgz = join(home, 'tgz');
  const zip = join(home, 'zip');

  t.deepEqual(await run(), {'tar.gz': 'changed', 'zip': 'changed'}, 'the first run extracts both');
  t.is(readFileSync(join(tgz, 'sub', 'b.txt'), 'utf8'), 'bravo\n');
  t.is(readFileSync(join(zip, 'a.txt'), 'utf8'), 'alpha\n');
  t.is(statSync(join(zip, 'a.txt')).mode & 0o777, 0o640, 'zip: mode on files');
  t.is(statSync(join(zip, 'sub')).mode & 0o777, 0o750, 'zip: directories get the search bit');
  t.is(statSync(join(tgz, 'a.txt')).mode & 0o777, 0o644, 'tar: the archive\'s mode');

  t.deepEqual(await run(), {'tar.gz': 'ok', 'zip': 'ok'}, 'the second run changes nothing');

  // Drift: other content, same size (the zip side compares content, not only sizes), and a mode.
  writeFileSync(join(tgz, 'a.txt'), 'ALPHA, changed\n');
  writeFileSync(join(zip, 'sub', 'b.txt'), 'BRAVO\n');
  const before = [...snapshot(tgz), ...snapshot(zip)];
  t.deepEqual(await run('--check'), {'tar.gz': 'changed', 'zip': 'changed'}, '--check sees the drift');
  t.deepEqual([...snapshot(tgz), ...snapshot(zip)], before, '--check left the disk untouched');

  const msgs = jsonEvents(last).filter((e) => e.type === 'result').map((e) => String(e.msg));
  t.regex(msgs[0] ?? '', /^would extract .*app\.tar\.gz into .*tgz: 1 of 3 entries differ \(a\.txt: /);
  t.regex(msgs[1] ?? '', /^would extract .*app\.zip into .*zip: 1 of 3 entries differ \(sub\/b\.txt: contents\)/);

  t.deepEqual(await run(), {'tar.gz': 'changed', 'zip': 'changed'}, 'a real run repairs');
  t.is(readFileSync(join(tgz, 'a.txt'), 'utf8'), 'alpha\n');
  t.is(readFileSync(join(zip, 'sub', 'b.txt'), 'utf8'), 'bravo\n');
  t.is(statSync(join(zip, 'sub', 'b.txt')).mode & 0o777, 0o640, 'attributes set again after the extraction');
  t.deepEqual(await run(), {'tar.gz': 'ok', 'zip': 'ok'}, 'and then converged');
  t.log(`CLI runs: ${times.join('; ')}`);
  rmSync(dir, {recursive: true, force: true});
});
