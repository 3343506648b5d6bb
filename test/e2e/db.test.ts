/**
 * Database switchover and failover, end to end, in the lab (issue 16): the site converged from
 * nothing; `db-switchover -e new_primary=db2` under a steady write load through the VIP (a note
 * POSTed every 50 ms) loses no acknowledged write and pauses writes for less than 10 s; the site
 * then converges with the recorded roles and a second run changes nothing; the new primary (db2) is
 * powered off and `db-failover -e new_primary=db1` brings writes back within 30 s; db2 comes back
 * read-only, the app's own account cannot write to it, and the site makes it a replica of db1.
 * Durations are printed (docs/operations.md quotes them). Lab down at the end unless
 * PROVISION_E2E_KEEP_LAB. The file runs first of the e2e files (alphabetical): it brings the lab up
 * itself, and removes the db_roles.yml it made, so the next files find the inventory's roles.
 */
import test from 'ava';
import {spawn} from 'node:child_process';
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {request as httpsRequest} from 'node:https';
import {join} from 'node:path';
import type {LabHost} from '../../src/lab/config.ts';
import {cfg, host, inventory, isRoot, paths, provision, root, run, sleep, ssh, sshArgs, type Out} from '../helpers/lab.ts';
import {pebbleFiles} from '../../src/lab/pebble.ts';
import {compareGtid} from '../../roles/database/topology.ts';

const rolesFile = join(root, 'inventory/group_vars/all/db_roles.yml');
const vars = cfg.vars as {vip: string; site_domain: string};
const vip = vars.vip;
const domain = vars.site_domain;



/** ssh with `input` on the command's stdin (a script too long for a command line). */
function sshIn(h: LabHost, command: string, input: string): Promise<Out> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn('ssh', sshArgs(h, command), {cwd: root});
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({code: code ?? 1, stdout, stderr, ms: Date.now() - t0}));
    p.stdin.end(input);
  });
}

const sql = async (h: string, query: string): Promise<string> => (await ssh(host(h), `mysql -NBe ${JSON.stringify(query)}`)).stdout.trim();
const slaveStatus = async (h: string): Promise<string> => (await ssh(host(h), 'mysql -e "SHOW SLAVE STATUS\\G"')).stdout;

type Recap = Record<string, {ok: number; changed: number; failed: number; skipped: number; unreachable: number}>;
function recapOf(out: string): {hosts: Recap; duration_ms: number} {
  const last = out.trim().split('\n').at(-1) ?? '{}';
  try {
    return JSON.parse(last) as {hosts: Recap; duration_ms: number};
  } catch {
    return {hosts: {}, duration_ms: 0};
  }
}
const failures = (out: string): string => out.split('\n').filter((l) => /"status":"(failed|unreachable)"/.test(l)).join('\n').slice(0, 5000);
const changedLines = (out: string, h: string): string => out.split('\n').filter((l) => l.includes('"status":"changed"') && l.includes(`"host":"${h}"`)).join('\n');

interface Resp {status: number; body: string}

function https(path: string, opts: {method?: string; body?: string; timeoutMs?: number} = {}): Promise<Resp> {
  const ca = readFileSync(pebbleFiles(paths).roots, 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({host: vip, servername: domain, port: 443, path, method: opts.method ?? 'GET', ca, agent: false, timeout: opts.timeoutMs ?? 5000,
      headers: {host: domain, ...(opts.body ? {'content-type': 'application/json'} : {})}}, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}


/** One POST of a note through the VIP: sent at `sent`, answered (or not) at `done`. */
interface Write {text: string; sent: number; done: number; status: number; id?: number; error?: string}

/** A note POSTed through the VIP every `everyMs`, each on its own connection, until stopped. */
function writeLoad(tag: string, everyMs = 50): {writes: Write[]; stop(): Promise<void>} {
  const writes: Write[] = [];
  const pending = new Set<Promise<void>>();
  let n = 0;
  const timer = setInterval(() => {
    const w: Write = {text: `${tag}-${n++}`, sent: Date.now(), done: 0, status: 0};
    writes.push(w);
    const p = https('/api/notes', {method: 'POST', body: JSON.stringify({text: w.text})})
      .then((r) => {
        w.status = r.status;
        if (r.status >= 200 && r.status < 300) w.id = (JSON.parse(r.body) as {id: number}).id;
        else w.error = r.body.slice(0, 200);
      })
      .catch((e: unknown) => { w.error = (e as Error).message; })
      .finally(() => { w.done = Date.now(); pending.delete(p); });
    pending.add(p);
  }, everyMs);
  return {writes, async stop() { clearInterval(timer); await Promise.all([...pending]); }};
}

const acked = (ws: readonly Write[]): Write[] => ws.filter((w) => w.status >= 200 && w.status < 300);

/** The longest time between two acknowledged writes (by the time they were sent), within [from, to]. */
function maxGap(ws: readonly Write[], from: number, to: number): {ms: number; after: number} {
  const times = [from, ...acked(ws).map((w) => w.sent).filter((t) => t > from && t < to).sort((a, b) => a - b), to];
  let best = {ms: 0, after: from};
  for (let i = 1; i < times.length; i++) if (times[i]! - times[i - 1]! > best.ms) best = {ms: times[i]! - times[i - 1]!, after: times[i - 1]!};
  return best;
}

async function notesOn(h: string, tag: string): Promise<Set<string>> {
  return new Set((await sql(h, `SELECT text FROM app.notes WHERE text LIKE '${tag}-%'`)).split('\n').filter((l) => l !== ''));
}

async function until(what: () => Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await what().catch(() => false)) return true;
    await sleep(everyMs);
  }
  return false;
}

const t = isRoot ? test.serial : test.serial.skip;
if (!isRoot) test.skip('the database e2e tests (skipped: they need root on Linux)', () => undefined);

const figures: string[] = [];
const savedRoles = existsSync(rolesFile) ? readFileSync(rolesFile) : undefined;
test.after.always(async () => {
  if (figures.length) console.log(`\ndatabase figures:\n  ${figures.join('\n  ')}`);
  if (isRoot && !process.env.PROVISION_E2E_KEEP_LAB) await provision('lab', 'down', '-i', inventory);
  // The next e2e files start from the inventory's roles (db1 primary) on a fresh lab.
  if (isRoot && !process.env.PROVISION_E2E_KEEP_LAB) {
    if (savedRoles) writeFileSync(rolesFile, savedRoles);
    else rmSync(rolesFile, {force: true});
  }
});

t('lab up from nothing, the site converges with db1 the primary', async (tt) => {
  rmSync(rolesFile, {force: true});
  await provision('lab', 'down', '-i', inventory);
  const up = await provision('lab', 'up', '-i', inventory);
  tt.is(up.code, 0, up.stderr + up.stdout);
  const r = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(r.code, 0, failures(r.stdout) + r.stderr);
  figures.push(`lab up ${(up.ms / 1000).toFixed(1)} s, site first run ${(r.ms / 1000).toFixed(1)} s`);
  tt.is(await sql('db1', 'SELECT @@global.read_only'), '0', 'db1 writable');
  tt.is(await sql('db2', 'SELECT @@global.read_only'), '1', 'db2 read-only');
  tt.regex(await slaveStatus('db2'), /Slave_SQL_Running: Yes/);
  // Every server boots read-only: the config of the primary says so too.
  tt.regex((await ssh(host('db1'), 'cat /etc/mysql/mariadb.conf.d/60-provision.cnf')).stdout, /^read_only = ON$/m);
});

t('db-switchover without new_primary, or naming a web server, fails in one line and touches nothing', async (tt) => {
  for (const [args, msg] of [[[], /give the new primary: -e new_primary=NAME \(one of db1, db2\)/], [['-e', 'new_primary=web1'], /new_primary 'web1' is not a database host/]] as const) {
    const r = await provision('run', 'db-switchover', '-i', inventory, '--json', ...args);
    tt.is(r.code, 2, r.stderr);
    tt.regex(r.stdout, msg);
    tt.is(recapOf(r.stdout).hosts.db1?.changed, 0);
  }
  tt.false(existsSync(rolesFile), 'no roles recorded');
  tt.is(await sql('db1', 'SELECT @@global.read_only'), '0', 'db1 still the writable primary');
  const f = await provision('run', 'db-failover', '-i', inventory, '--json', '-e', 'new_primary=mon1');
  tt.is(f.code, 2, f.stderr);
  tt.regex(f.stdout, /new_primary 'mon1' is not a database host/);
});

t('switchover to db2 under a write every 50 ms: no acknowledged write lost, writes paused < 10 s', async (tt) => {
  const tag = `sw${Date.now()}`;
  const load = writeLoad(tag);
  await sleep(2000);
  const t0 = Date.now();
  const r = await provision('run', 'db-switchover', '-i', inventory, '--json', '-e', 'new_primary=db2');
  const t1 = Date.now();
  await sleep(2000);
  await load.stop();
  tt.is(r.code, 0, failures(r.stdout) + r.stderr);
  const ok = acked(load.writes);
  const gap = maxGap(load.writes, t0, t1);
  const failed = load.writes.filter((w) => !(w.status >= 200 && w.status < 300));
  figures.push(`switchover db1 → db2: playbook ${(r.ms / 1000).toFixed(1)} s; writes ${load.writes.length} sent, ${ok.length} acknowledged, ${failed.length} refused; longest pause in acknowledged writes ${(gap.ms / 1000).toFixed(1)} s (from ${((gap.after - t0) / 1000).toFixed(1)} s into the run)`);
  tt.log(`refused writes (first 5): ${failed.slice(0, 5).map((w) => `${w.status} ${w.error ?? ''}`).join('; ')}`);
  // Every acknowledged note is on the new primary.
  const onDb2 = await notesOn('db2', tag);
  const lost = ok.filter((w) => !onDb2.has(w.text));
  tt.deepEqual(lost.map((w) => w.text), [], `${lost.length} acknowledged notes missing on db2`);
  tt.true(ok.length > 50, `${ok.length} acknowledged`);
  tt.true(gap.ms < 10_000, `writes paused ${(gap.ms / 1000).toFixed(1)} s`);
  // The roles swapped.
  tt.is(await sql('db2', 'SELECT @@global.read_only'), '0', 'db2 writable');
  tt.is((await slaveStatus('db2')).trim(), '', 'db2 is no longer a replica');
  tt.is(await sql('db1', 'SELECT @@global.read_only'), '1', 'db1 read-only');
  tt.true(await until(async () => /Slave_IO_Running: Yes/.test(await slaveStatus('db1')), 20_000), 'db1 IO thread running');
  const s1 = await slaveStatus('db1');
  tt.regex(s1, /Slave_SQL_Running: Yes/);
  tt.regex(s1, new RegExp(`Master_Host: ${host('db2').address.replace(/\./g, '\\.')}`));
  tt.regex(s1, /Using_Gtid: Slave_Pos/);
  tt.regex(readFileSync(rolesFile, 'utf8'), /^db_primary_host_name: db2$/m);
  // A note written now reaches db1 by replication.
  const w = await https('/api/notes', {method: 'POST', body: JSON.stringify({text: `${tag}-after`})});
  tt.is(w.status, 201, w.body);
  tt.true(await until(async () => (await notesOn('db1', tag)).has(`${tag}-after`), 10_000), 'replicated to db1');
  // Running it again changes nothing.
  const again = await provision('run', 'db-switchover', '-i', inventory, '--json', '-e', 'new_primary=db2');
  tt.is(again.code, 0, failures(again.stdout));
  for (const h of ['db1', 'db2', 'web1', 'web2']) tt.is(recapOf(again.stdout).hosts[h]?.changed, 0, `${h}: ${changedLines(again.stdout, h)}`);
});

t('after the switchover the site converges with the recorded roles, and a second run changes nothing', async (tt) => {
  const first = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(first.code, 0, failures(first.stdout) + first.stderr);
  const changed = Object.entries(recapOf(first.stdout).hosts).filter(([, c]) => c.changed > 0).map(([h, c]) => `${h} ${c.changed}`);
  figures.push(`site after the switchover: ${(first.ms / 1000).toFixed(1)} s, changed: ${changed.join(', ') || 'nothing'}`);
  const second = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(second.code, 0, failures(second.stdout));
  for (const h of cfg.hosts) tt.is(recapOf(second.stdout).hosts[h.name]?.changed, 0, `${h.name}: ${changedLines(second.stdout, h.name)}`);
  tt.is(await sql('db2', 'SELECT @@global.read_only'), '0', 'db2 still the primary');
  tt.is(await sql('db1', 'SELECT @@global.read_only'), '1');
  tt.regex(await slaveStatus('db1'), /Slave_SQL_Running: Yes/);
});

t('failover: db2 (the primary) powered off, db-failover -e new_primary=db1 brings writes back within 30 s', async (tt) => {
  const tag = `fo${Date.now()}`;
  const load = writeLoad(tag);
  await sleep(2000);
  const tStop = Date.now();
  const off = await provision('lab', 'stop', 'db2', '-i', inventory);
  tt.is(off.code, 0, off.stderr);
  const t0 = Date.now();
  const r = await provision('run', 'db-failover', '-i', inventory, '--json', '-e', 'new_primary=db1');
  const t1 = Date.now();
  await sleep(3000);
  await load.stop();
  tt.is(r.code, 0, failures(r.stdout) + r.stderr);
  const firstBack = acked(load.writes).map((w) => w.done).filter((d) => d > t0).sort((a, b) => a - b)[0];
  const back = firstBack === undefined ? Infinity : (firstBack - t0) / 1000;
  const lastBefore = acked(load.writes).map((w) => w.done).filter((d) => d <= t0).sort((a, b) => b - a)[0] ?? tStop;
  figures.push(`failover to db1: lab stop db2 ${(off.ms / 1000).toFixed(1)} s; playbook ${(r.ms / 1000).toFixed(1)} s (ended ${((t1 - t0) / 1000).toFixed(1)} s after its start); first acknowledged write ${back.toFixed(1)} s after the playbook started; writes refused for ${(((firstBack ?? t1) - lastBefore) / 1000).toFixed(1)} s in all`);
  tt.true(back < 30, `writes back after ${back.toFixed(1)} s`);
  tt.is(await sql('db1', 'SELECT @@global.read_only'), '0', 'db1 writable');
  tt.is((await slaveStatus('db1')).trim(), '', 'db1 no longer a replica');
  tt.regex(readFileSync(rolesFile, 'utf8'), /^db_primary_host_name: db1$/m);
  const onDb1 = await notesOn('db1', tag);
  const after = acked(load.writes).filter((w) => w.sent > t0);
  tt.deepEqual(after.filter((w) => !onDb1.has(w.text)).map((w) => w.text), [], 'writes acknowledged after the failover are on db1');
});

t('the old primary comes back read-only: the app\'s own account cannot write to it, the app keeps writing to db1', async (tt) => {
  const t0 = Date.now();
  const on = await provision('lab', 'start', 'db2', '-i', inventory);
  tt.is(on.code, 0, on.stderr);
  tt.true(await until(async () => (await ssh(host('db2'), 'systemctl is-active mariadb')).stdout.trim() === 'active', 60_000), 'mariadb active on db2');
  figures.push(`db2 back (lab start to mariadb active): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  tt.is(await sql('db2', 'SELECT @@global.read_only'), '1', 'db2 boots read-only');
  tt.is((await slaveStatus('db2')).trim(), '', 'and replicates from nobody until the site says so');
  // A write with the app's credentials, from a web server (the account's host), straight to db2.
  const {build} = await import('esbuild');
  const bundle = await build({
    stdin: {
      // CommonJS, as the app's own bundle (roles/app/build.mjs): mysql2 require()s Node's built-ins.
      contents: `const mysql = require('mysql2/promise');
(async () => {
  const c = await mysql.createConnection({host: process.env.T_HOST, port: Number(process.env.DB_PORT || 3306), user: process.env.DB_USER, password: process.env.DB_PASSWORD, database: process.env.DB_NAME});
  try { await c.execute('INSERT INTO notes (text) VALUES (?)', ['fence-test']); console.log('WROTE'); } catch (e) { console.log('ERR ' + e.errno + ' ' + e.message); }
  await c.end();
})().catch((e) => { console.log('CONNECT ' + e.message); });`,
      resolveDir: root, loader: 'js',
    },
    bundle: true, platform: 'node', format: 'cjs', write: false, logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.text;
  const w = await sshIn(host('web1'), `set -a; . /etc/app/app.env; set +a; T_HOST=${host('db2').address} node -`, script);
  tt.regex(w.stdout, /^ERR 1290 .*read-only/m, w.stdout + w.stderr);
  tt.regex((await sshIn(host('web1'), `set -a; . /etc/app/app.env; set +a; T_HOST=${host('db1').address} node -`, script)).stdout, /^WROTE$/m, 'the same script writes to db1');
  const n = await https('/api/notes', {method: 'POST', body: JSON.stringify({text: 'after-return'})});
  tt.is(n.status, 201, n.body);
  const {id} = JSON.parse(n.body) as {id: number};
  tt.is(await sql('db1', `SELECT text FROM app.notes WHERE id = ${id}`), 'after-return');
  tt.is(await sql('db2', "SELECT COUNT(*) FROM app.notes WHERE text = 'after-return'"), '0', 'not on db2');
});

t('the site makes the old primary a replica of db1; a second run changes nothing', async (tt) => {
  // db1's gtid_slave_pos is where it stood in db2's stream when it was promoted (RESET SLAVE ALL keeps it).
  const p1 = await sql('db1', 'SELECT @@global.gtid_slave_pos');
  const p2 = await sql('db2', 'SELECT @@global.gtid_binlog_pos');
  const cmp = compareGtid(p2, p1);
  figures.push(`after the failover: db2's last transaction ${p2}, db1 promoted at ${p1} (db2 ${cmp})`);
  tt.true(cmp === 'behind' || cmp === 'equal', `db2 holds transactions db1 never received (lost in the failover): db2 ${p2}, db1 promoted at ${p1}: it must be rebuilt, the site cannot attach it`);
  const first = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(first.code, 0, failures(first.stdout) + first.stderr);
  tt.true(await until(async () => /Slave_IO_Running: Yes/.test(await slaveStatus('db2')), 20_000), 'db2 IO thread running');
  const s2 = await slaveStatus('db2');
  tt.regex(s2, /Slave_SQL_Running: Yes/);
  tt.regex(s2, new RegExp(`Master_Host: ${host('db1').address.replace(/\./g, '\\.')}`));
  tt.is(await sql('db2', 'SELECT @@global.read_only'), '1');
  tt.is(await sql('db2', "SELECT text FROM app.notes WHERE text = 'after-return'"), 'after-return', 'db2 caught up from db1');
  const second = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(second.code, 0, failures(second.stdout));
  for (const h of cfg.hosts) tt.is(recapOf(second.stdout).hosts[h.name]?.changed, 0, `${h.name}: ${changedLines(second.stdout, h.name)}`);
});
