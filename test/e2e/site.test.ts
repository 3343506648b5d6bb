/**
 * The site playbook, end to end, in the lab, from nothing: lab up (fresh hosts), --check changes
 * nothing, the first run converges, the second changes nothing, then the infrastructure is checked from
 * the controller the way a user would: HTTPS on the VIP with an ACME certificate, both web servers
 * serving, notes written to the primary and read back from the replica, failover of the load balancer
 * and of a web server, the firewall, and Prometheus seeing every target. Lab down at the end.
 */
import test from 'ava';
import {execFile, spawn} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {request as httpRequest} from 'node:http';
import {request as httpsRequest} from 'node:https';
import type {TLSSocket} from 'node:tls';
import {join} from 'node:path';
import {pebbleFiles} from '../../src/lab/pebble.ts';
import {cfg, host, inventory, isRoot, paths, provision, recapOf, root, run, sleep, ssh, tcpOpen, type Out} from '../helpers/lab.ts';

const vars = cfg.vars as {vip: string; site_domain: string}; // inventory/lab.yml sets both
const vip = vars.vip;
const domain = vars.site_domain;




interface Resp {status: number; body: string; headers: Record<string, string | string[] | undefined>; issuer?: string}

function https(path: string, opts: {method?: string; body?: string; address?: string; timeoutMs?: number} = {}): Promise<Resp> {
  const ca = readFileSync(pebbleFiles(paths).roots, 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({host: opts.address ?? vip, servername: domain, port: 443, path, method: opts.method ?? 'GET', ca, agent: false, timeout: opts.timeoutMs ?? 3000,
      headers: {host: domain, ...(opts.body ? {'content-type': 'application/json'} : {})}}, (res) => {
      const cn = (res.socket as TLSSocket).getPeerCertificate?.()?.issuer?.CN;
      const issuer = Array.isArray(cn) ? cn.join(",") : cn;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({status: res.statusCode ?? 0, body, headers: res.headers, issuer}));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

function http(address: string, path: string): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({host: address, port: 80, path, headers: {host: domain}, agent: false, timeout: 3000}, (res) => {
      res.resume();
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: '', headers: res.headers}));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}



async function vipHolder(): Promise<string | undefined> {
  for (const n of ['lb1', 'lb2']) {
    const r = await ssh(host(n), `ip -4 -o addr show | grep -qw ${vip} && echo yes || true`);
    if (r.stdout.trim() === 'yes') return n;
  }
  return undefined;
}

const t = isRoot ? test.serial : test.serial.skip;
if (!isRoot) test.skip('the site e2e tests (skipped: they need root on Linux)', () => undefined);

const figures: string[] = [];
test.after.always(async () => {
  if (figures.length) console.log(`\nsite figures:\n  ${figures.join('\n  ')}`);
  if (isRoot && !process.env.PROVISION_E2E_KEEP_LAB) await provision('lab', 'down', '-i', inventory);
});

/** A fingerprint of what a run could change: installed packages and every file under /etc. */
const fingerprint = 'dpkg-query -W -f="\\${Package} \\${Version} \\${Status}\\n" | sha256sum; find /etc -xdev \\( -type f -o -type l \\) -printf "%p %m %u %s %T@\\n" 2>/dev/null | sort | sha256sum; (ufw status 2>/dev/null || true) | sha256sum';

t('lab up from nothing: fresh hosts', async (tt) => {
  await provision('lab', 'down', '-i', inventory);
  const r = await provision('lab', 'up', '-i', inventory);
  tt.is(r.code, 0, r.stderr + r.stdout);
});

t('--check on a fresh lab reports what it would do and changes nothing', async (tt) => {
  const before = await Promise.all(cfg.hosts.map((h) => ssh(h, fingerprint)));
  const r = await provision('run', 'site', '-i', inventory, '--check', '--json');
  tt.is(r.code, 0, r.stderr + r.stdout.slice(-3000));
  const rc = recapOf(r.stdout);
  figures.push(`site --check on a fresh lab: ${(r.ms / 1000).toFixed(1)} s`);
  for (const h of cfg.hosts) tt.true(rc.hosts[h.name]!.changed > 0, `${h.name} would change something`);
  const after = await Promise.all(cfg.hosts.map((h) => ssh(h, fingerprint)));
  cfg.hosts.forEach((h, i) => tt.is(after[i]!.stdout, before[i]!.stdout, `${h.name}: packages and /etc unchanged by --check`));
});

t('the first run converges', async (tt) => {
  const r = await provision('run', 'site', '-i', inventory, '--json');
  const rc = recapOf(r.stdout);
  const failures = r.stdout.split('\n').filter((l) => l.includes('"status":"failed"') || l.includes('"status":"unreachable"'));
  tt.is(r.code, 0, failures.join('\n').slice(0, 5000) + r.stderr);
  figures.push(`site first run: ${(r.ms / 1000).toFixed(1)} s`);
  for (const h of cfg.hosts) tt.like(rc.hosts[h.name], {failed: 0, unreachable: 0});
});

t('the second run changes nothing on any host', async (tt) => {
  const r = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(r.code, 0, r.stderr);
  const rc = recapOf(r.stdout);
  figures.push(`site no-op re-run: ${(r.ms / 1000).toFixed(2)} s wall (engine ${(rc.duration_ms / 1000).toFixed(2)} s)`);
  const changed = r.stdout.split('\n').filter((l) => l.includes('"status":"changed"'));
  for (const h of cfg.hosts) tt.is(rc.hosts[h.name]?.changed, 0, `${h.name}: ${changed.filter((l) => l.includes(`"host":"${h.name}"`)).join('\n')}`);
});

t('one shell per host (provision_multiplex: true): a hand edit on lb2 is repaired through it, with sudo, the handler reloads HAProxy; the re-run and --check change nothing', async (tt) => {
  await ssh(host('lb2'), "sed -i '0,/^global/s//# edited by hand\\nglobal/' /etc/haproxy/haproxy.cfg");
  const mux = ['-e', 'provision_multiplex=true'];
  const r = await provision('run', 'site', '-i', inventory, '--json', ...mux);
  tt.is(r.code, 0, r.stderr);
  const changed = r.stdout.split('\n').filter((l) => l.includes('"status":"changed"'));
  tt.true(changed.length > 0 && changed.every((l) => l.includes('"host":"lb2"')), changed.join('\n'));
  tt.true(changed.some((l) => /reload haproxy/.test(l)), 'the handler ran');
  tt.false((await ssh(host('lb2'), 'cat /etc/haproxy/haproxy.cfg')).stdout.includes('edited by hand'));
  for (const extra of [[], ['--check']]) {
    const again = await provision('run', 'site', '-i', inventory, '--json', ...mux, ...extra);
    tt.is(again.code, 0, again.stderr);
    const rc = recapOf(again.stdout);
    for (const h of cfg.hosts) tt.is(rc.hosts[h.name]?.changed, 0, `${h.name} ${extra.join(' ')}`);
    if (extra.length === 0) figures.push(`site no-op re-run through one shell per host: ${(again.ms / 1000).toFixed(2)} s wall (engine ${(rc.duration_ms / 1000).toFixed(2)} s)`);
  }
});

t('a rolling app restart under load through the VIP loses no request: each web server is drained in HAProxy during its restart', async (tt) => {
  // Load: 4 clients, a new TLS connection per request, on an app endpoint (nginx proxies it to the app).
  let stop = false;
  const outcomes = {ok: 0, failed: [] as string[]};
  const client = async (): Promise<void> => {
    while (!stop) {
      try {
        const r = await https('/api/whoami', {timeoutMs: 5000});
        if (r.status === 200) outcomes.ok++;
        else outcomes.failed.push(`status ${r.status}`);
      } catch (e) {
        outcomes.failed.push((e as Error).message);
      }
    }
  };
  // What HAProxy says of each web server, on both balancers, while the run goes on.
  const states: Record<string, Set<string>> = {web1: new Set(), web2: new Set()};
  const watch = async (): Promise<void> => {
    while (!stop) {
      for (const lb of ['lb1', 'lb2']) {
        const r = await ssh(host(lb), `echo 'show stat' | socat stdio /run/haproxy/admin.sock | awk -F, '$1=="web" && $2 ~ /^web/ {print $2, $18}'`);
        for (const line of r.stdout.trim().split('\n')) {
          const [server, status] = line.split(' ');
          if (server && status && states[server]) states[server].add(status);
        }
      }
    }
  };
  const load = [client(), client(), client(), client(), watch()];
  await sleep(1500);
  const r = await provision('run', 'site', '-i', inventory, '--json', '-e', 'app_replica_wait_ms=1500');
  await sleep(1500);
  stop = true;
  await Promise.all(load);
  tt.is(r.code, 0, r.stderr + r.stdout.split('\n').filter((l) => l.includes('"status":"failed"')).join('\n'));
  const rc = recapOf(r.stdout);
  tt.true(rc.hosts.web1!.changed > 0 && rc.hosts.web2!.changed > 0, 'the app was restarted on both web servers');
  figures.push(`rolling app restart under load: ${outcomes.ok} requests served, ${outcomes.failed.length} failed, run ${(r.ms / 1000).toFixed(1)} s; HAProxy states seen: web1 ${[...states.web1!].join('/')}, web2 ${[...states.web2!].join('/')}`);
  tt.deepEqual(outcomes.failed, [], `${outcomes.failed.length} of ${outcomes.ok + outcomes.failed.length} requests failed`);
  tt.true(outcomes.ok > 100, `${outcomes.ok} requests`);
  for (const w of ['web1', 'web2']) tt.true([...states[w]!].some((s) => /DRAIN|MAINT/.test(s)), `${w} drained during its restart: ${[...states[w]!].join(', ')}`);
  // Back to the inventory's value (another drained rolling restart), then nothing to change.
  const back = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(back.code, 0, back.stderr);
  const again = await provision('run', 'site', '-i', inventory, '--json');
  for (const h of cfg.hosts) tt.is(recapOf(again.stdout).hosts[h.name]?.changed, 0, h.name);
});

t('provision init --example site, in a project of its own with provision installed from its tarball, converges the lab', async (tt) => {
  // As a user: pack, install into an empty project, scaffold the reference site on the shipped roles.
  const dir = mkdtempSync(join(tmpdir(), 'prov-site-'));
  try {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && !k.startsWith('PROVISION_')));
    const sh = (cmd: string, args: string[], cwd: string): Promise<Out> => new Promise((resolve) => {
      const t0 = Date.now();
      execFile(cmd, args, {cwd, env: {...env, NO_COLOR: '1'}, maxBuffer: 256 << 20, encoding: 'utf8', timeout: 600_000}, (err, stdout, stderr) => {
        resolve({code: err ? (typeof (err as {code?: unknown}).code === 'number' ? (err as {code: number}).code : 1) : 0, stdout, stderr, ms: Date.now() - t0});
      });
    });
    const pack = await sh('npm', ['pack', '--pack-destination', dir], root);
    tt.is(pack.code, 0, pack.stderr);
    const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    const project = join(dir, 'infra');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{"name": "infra", "private": true, "type": "module"}\n');
    const install = await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project);
    tt.is(install.code, 0, install.stderr);
    const init = await sh('npx', ['--no', '--', 'provision', 'init', '--example', 'site'], project);
    tt.is(init.code, 0, init.stderr);
    // The lab's state (keys, known_hosts, the vault passphrase, the ACME CA) is where the lab was
    // brought up: this repository's .lab/, seen from the user's project as its own.
    symlinkSync(paths.lab, join(project, '.lab'));

    // Drift for the scaffolded site to repair: a stopped exporter on web1, a hand edit on lb2.
    await ssh(host('web1'), 'systemctl stop prometheus-node-exporter');
    await ssh(host('lb2'), 'echo "# hand edit" >> /etc/haproxy/haproxy.cfg');
    const site = (): Promise<Out> => sh('npx', ['--no', '--', 'provision', 'run', 'site', '-i', inventory, '--json'], project);
    const first = await site();
    tt.is(first.code, 0, first.stderr + first.stdout.split('\n').filter((l) => l.includes('"status":"failed"')).join('\n'));
    const rc = recapOf(first.stdout).hosts;
    figures.push(`init --example site, installed from the tarball, on the converged lab with 2 drifts: ${(first.ms / 1000).toFixed(1)} s (pack ${(pack.ms / 1000).toFixed(1)} s, install ${(install.ms / 1000).toFixed(1)} s)`);
    for (const h of cfg.hosts) tt.like(rc[h.name], {failed: 0, unreachable: 0});
    tt.true(rc.web1!.changed > 0 && rc.lb2!.changed > 0, JSON.stringify(rc));
    tt.is((await ssh(host('web1'), 'systemctl is-active prometheus-node-exporter')).stdout.trim(), 'active');
    tt.notRegex((await ssh(host('lb2'), 'cat /etc/haproxy/haproxy.cfg')).stdout, /# hand edit/);
    const second = await site();
    tt.is(second.code, 0, second.stderr);
    const rc2 = recapOf(second.stdout).hosts;
    for (const h of cfg.hosts) tt.is(rc2[h.name]?.changed, 0, `${h.name}: the scaffolded site leaves the lab as the repository's site does`);
    // And the repository's own site agrees: nothing to change.
    const ours = await provision('run', 'site', '-i', inventory, '--json');
    for (const h of cfg.hosts) tt.is(recapOf(ours.stdout).hosts[h.name]?.changed, 0, `${h.name}: playbooks/site.ts sees nothing to change`);
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
});

t('HTTP on the VIP redirects to HTTPS; HTTPS answers with a certificate from the ACME server', async (tt) => {
  const r = await http(vip, '/');
  tt.true([301, 302, 308].includes(r.status), `status ${r.status}`);
  tt.regex(String(r.headers.location), new RegExp(`^https://${domain.replace(/\./g, '\\.')}`));
  const s = await https('/health');
  tt.is(s.status, 200);
  tt.regex(s.issuer ?? '', /pebble/i, 'issued by the lab ACME server');
});

t('20 requests to /api/whoami are served by both web servers', async (tt) => {
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const r = await https('/api/whoami');
    tt.is(r.status, 200);
    seen.add((JSON.parse(r.body) as {host: string}).host);
  }
  tt.deepEqual([...seen].sort(), ['web1', 'web2']);
});

t('a note written through the VIP is readable through the VIP and present on the replica', async (tt) => {
  const text = `note ${Date.now()}`;
  const w = await https('/api/notes', {method: 'POST', body: JSON.stringify({text})});
  tt.true(w.status === 200 || w.status === 201, `${w.status} ${w.body}`);
  const {id} = JSON.parse(w.body) as {id: number};
  tt.true(Number.isInteger(id));
  const r = await https(`/api/notes/${id}`);
  tt.is(r.status, 200, r.body);
  tt.deepEqual(JSON.parse(r.body), {id, text});
  const onReplica = await ssh(host('db2'), `mysql -NBe "SELECT text FROM app.notes WHERE id=${id}"`);
  tt.is(onReplica.stdout.trim(), text);
  const replica = await ssh(host('db2'), `mysql -NBe "SELECT @@global.read_only"; mysql -e "SHOW SLAVE STATUS\\G" | grep -E 'Slave_(IO|SQL)_Running:|Using_Gtid:'`);
  tt.regex(replica.stdout, /^1$/m, 'the replica is read-only');
  tt.regex(replica.stdout, /Slave_IO_Running: Yes/);
  tt.regex(replica.stdout, /Slave_SQL_Running: Yes/);
  tt.regex(replica.stdout, /Using_Gtid: Slave_Pos/);
});

t('failover: HAProxy stopped on the active LB, the VIP answers from the other within 5 s', async (tt) => {
  const active = await vipHolder();
  tt.truthy(active, 'one LB holds the VIP');
  const other = active === 'lb1' ? 'lb2' : 'lb1';
  await ssh(host(active!), 'systemctl stop haproxy');
  const t0 = Date.now();
  let ok = false;
  while (Date.now() - t0 < 15_000) {
    try {
      if ((await https('/health', {timeoutMs: 1000})).status === 200 && (await vipHolder()) === other) { ok = true; break; }
    } catch { /* not yet */ }
    await sleep(200);
  }
  const secs = (Date.now() - t0) / 1000;
  figures.push(`failover (haproxy stopped on ${active}): VIP answering from ${other} after ${secs.toFixed(1)} s`);
  await ssh(host(active!), 'systemctl start haproxy');
  // Let the VIP settle (keepalived preempts back to the higher priority) before the next test.
  const t1 = Date.now();
  while (Date.now() - t1 < 20_000) {
    try {
      if ((await vipHolder()) === active && (await https('/health', {timeoutMs: 1000})).status === 200) break;
    } catch { /* moving */ }
    await sleep(500);
  }
  figures.push(`failback to ${active}: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  tt.true(ok, 'the VIP answered from the other LB');
  tt.true(secs < 5, `failover took ${secs.toFixed(1)} s`);
});

t('failover: Nginx stopped on web1, every request still succeeds', async (tt) => {
  await ssh(host('web1'), 'systemctl stop nginx');
  await sleep(500);
  try {
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((await https('/api/whoami')).status === 200) ok++;
    tt.is(ok, 20);
  } finally {
    await ssh(host('web1'), 'systemctl start nginx');
  }
});

t('firewall: from outside, 3306 and 9100 are closed and the web servers are not reachable directly', async (tt) => {
  tt.false(await tcpOpen(host('db1').address, 3306), 'db1:3306 from the controller');
  tt.false(await tcpOpen(host('db2').address, 3306), 'db2:3306 from the controller');
  tt.false(await tcpOpen(host('web1').address, 9100), 'web1:9100 from the controller');
  tt.false(await tcpOpen(host('lb1').address, 9100), 'lb1:9100 from the controller');
  tt.false(await tcpOpen(host('web1').address, 80), 'web1:80 from the controller');
  tt.false(await tcpOpen(host('web2').address, 80), 'web2:80 from the controller');
  tt.true(await tcpOpen(host('mon1').address, 22), 'SSH stays open to the admin network');
});

t('firewall: from inside, the allowed paths work', async (tt) => {
  const probe = (from: string, to: string, port: number): Promise<Out> => ssh(host(from), `timeout 3 bash -c '</dev/tcp/${host(to).address}/${port}' && echo open || echo closed`);
  tt.is((await probe('web1', 'db1', 3306)).stdout.trim(), 'open', 'web1 → db1:3306');
  tt.is((await probe('db2', 'db1', 3306)).stdout.trim(), 'open', 'db2 → db1:3306');
  tt.is((await probe('mon1', 'web1', 9100)).stdout.trim(), 'open', 'mon1 → web1:9100');
  tt.is((await probe('lb1', 'web2', 80)).stdout.trim(), 'open', 'lb1 → web2:80');
  tt.is((await probe('web1', 'mon1', 9100)).stdout.trim(), 'closed', 'web1 → mon1:9100');
  tt.is((await probe('lb1', 'db1', 3306)).stdout.trim(), 'closed', 'lb1 → db1:3306');
});

t('Prometheus on mon1 reports every target up', async (tt) => {
  const t0 = Date.now();
  let targets: {health: string; scrapeUrl: string}[] = [];
  while (Date.now() - t0 < 90_000) {
    const r = await run('curl', ['-s', '--max-time', '3', `http://${host('mon1').address}:9090/api/v1/targets`]);
    try {
      targets = (JSON.parse(r.stdout) as {data: {activeTargets: {health: string; scrapeUrl: string}[]}}).data.activeTargets;
    } catch { targets = []; }
    if (targets.length > 0 && targets.every((x) => x.health === 'up')) break;
    await sleep(3000);
  }
  tt.true(targets.length >= cfg.hosts.length, `${targets.length} targets`);
  tt.deepEqual(targets.filter((x) => x.health !== 'up').map((x) => x.scrapeUrl), []);
});

// ---- Reliability under faults (issue 7): load through the VIP while the site changes.

interface Load {ok: number; failed: number; errors: string[]}

/** Keep `concurrency` clients requesting through the VIP (a new connection each) while `work` runs; bounded. */
async function underLoad<T>(work: () => Promise<T>, concurrency = 6): Promise<Load & {result: T}> {
  let stop = false;
  const load: Load = {ok: 0, failed: 0, errors: []};
  const deadline = Date.now() + 300_000;
  const worker = async (): Promise<void> => {
    while (!stop && Date.now() < deadline) {
      try {
        const r = await https('/api/whoami', {timeoutMs: 5000});
        if (r.status === 200) load.ok++;
        else { load.failed++; load.errors.push(`HTTP ${r.status}`); }
      } catch (e) {
        load.failed++;
        load.errors.push((e as Error).message);
      }
    }
  };
  const workers = Array.from({length: concurrency}, worker);
  await sleep(1000);
  try {
    const result = await work();
    await sleep(1000);
    return {...load, result};
  } finally {
    stop = true;
    await Promise.all(workers);
  }
}

t('a rolling change to the web tier\'s Nginx config under load loses 0 requests', async (tt) => {
  const r = await underLoad(() => provision('run', 'site', '-i', inventory, '--json', '-e', 'nginx_server_name=site.lab.test'));
  tt.is(r.result.code, 0, r.result.stderr);
  tt.true(recapOf(r.result.stdout).hosts.web1!.changed > 0, 'the change reached web1');
  figures.push(`rolling Nginx change under load: ${r.ok} requests ok, ${r.failed} failed`);
  tt.is(r.failed, 0, r.errors.slice(0, 5).join('; '));
  tt.true(r.ok > 20);
});

t('an HAProxy reload under load loses 0 requests', async (tt) => {
  const r = await underLoad(() => provision('run', 'site', '-i', inventory, '--json', '-e', 'nginx_server_name=site.lab.test', '-e', 'haproxy_timeout_client=61s'));
  tt.is(r.result.code, 0, r.result.stderr);
  tt.true(recapOf(r.result.stdout).hosts.lb1!.changed > 0, 'haproxy.cfg changed and reloaded');
  figures.push(`HAProxy reload under load: ${r.ok} requests ok, ${r.failed} failed`);
  tt.is(r.failed, 0, r.errors.slice(0, 5).join('; '));
});

t('a broken Nginx config is refused by validation and the site keeps serving', async (tt) => {
  const before = await ssh(host('web1'), 'sha256sum /etc/nginx/conf.d/site.conf');
  const r = await underLoad(() => provision('run', 'site', '-i', inventory, '--json', '-e', 'nginx_app_address=no-such-upstream-host'));
  tt.is(r.result.code, 2, 'the run fails on the web play');
  const failed = r.result.stdout.split('\n').filter((l) => l.includes('"status":"failed"'));
  tt.true(failed.some((l) => l.includes('"host":"web1"')), failed.join('\n'));
  tt.false(failed.some((l) => l.includes('"host":"web2"')), 'serial: 1 stopped at the first web server');
  tt.is((await ssh(host('web1'), 'sha256sum /etc/nginx/conf.d/site.conf')).stdout, before.stdout, 'the live config is untouched');
  figures.push(`broken Nginx config pushed under load: ${r.ok} requests ok, ${r.failed} failed`);
  tt.is(r.failed, 0, r.errors.slice(0, 5).join('; '));
  // Back to the converged site (and its defaults).
  const back = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(back.code, 0, back.stderr);
});

/** `provision watch …` as a child process: its JSON lines as they come, and its metrics URL. */
function watcher(args: readonly string[]): {lines: Array<Record<string, unknown>>; url: Promise<string>; stop(): Promise<number | null>} {
  const child = spawn(process.execPath, [join(root, 'bin/provision.js'), 'watch', ...args], {cwd: root, env: {...process.env, NO_COLOR: '1'}});
  const lines: Array<Record<string, unknown>> = [];
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  let err = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /serving (http:\/\/\S+)/.exec(err);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`watch exited ${code}: ${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {lines, url, stop: async () => {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    return exited;
  }};
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

t('drift: provision watch sees a hand edit of HAProxy on lb2 and a stopped node_exporter on web1 within one interval, Prometheus on mon1 fires ProvisionDrift; --only-drifted repairs exactly those; nothing else is touched', async (tt) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-watch-'));
  const state = join(dir, 'drift.json');
  // The watcher on the controller's bridge address; mon1's Prometheus scrapes it (for this test only:
  // the same -e for the watcher, so its checks of mon1 agree with the run that set it).
  const bridge = String(cfg.vars.lab_bridge_address).split('/')[0];
  const target = ['-e', JSON.stringify({prometheus_watch_targets: [`${bridge}:9469`]})];
  const point = await provision('run', 'site', '-i', inventory, '--limit', 'mon1', '--json', ...target);
  tt.is(point.code, 0, point.stderr);
  const w = watcher(['site', '-i', inventory, '--every', '15s', '--listen', `${bridge}:9469`, '--state', state, '--textfile', dir, '--json', ...target]);
  const checks = (): Array<Record<string, unknown>> => w.lines.filter((l) => l.type === 'check');
  const others = cfg.hosts.filter((h) => h.name !== 'lb2' && h.name !== 'web1');
  let beforeOthers: string[] = [];
  try {
    const url = await w.url;
    const first = await until('the first check', () => checks()[0], 120_000);
    tt.is(first.drifted_hosts, 0, JSON.stringify(w.lines));
    figures.push(`watch: one check of the site in the lab: ${(Number(first.duration_ms) / 1000).toFixed(2)} s`);

    beforeOthers = (await Promise.all(others.map((h) => ssh(h, fingerprint)))).map((r) => r.stdout);
    const edited = Date.now();
    await ssh(host('lb2'), "sed -i '0,/^global/s//# edited by hand\\nglobal/' /etc/haproxy/haproxy.cfg");
    await ssh(host('web1'), 'systemctl stop prometheus-node-exporter');
    const n = checks().length;
    const seen = await until('a check that sees both drifts', () => checks().slice(n).find((c) => Number(c.drifted_hosts) === 2), 60_000);
    figures.push(`watch: drift seen ${((Date.now() - edited) / 1000).toFixed(1)} s after the edit (interval 15 s)`);
    tt.truthy(seen);
    const drift = w.lines.filter((l) => l.type === 'drift' && l.state === 'drifted');
    tt.deepEqual([...new Set(drift.map((d) => d.host))].sort(), ['lb2', 'web1'], JSON.stringify(drift));
    tt.true(drift.some((d) => d.host === 'lb2' && /haproxy/i.test(String(d.task))), JSON.stringify(drift));
    tt.true(drift.some((d) => d.host === 'web1' && /node.exporter/i.test(String(d.task))), JSON.stringify(drift));
    const metrics = await new Promise<string>((resolve, reject) => httpRequest(url, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve(b));
    }).on('error', reject).end());
    tt.regex(metrics, /^provision_drift_hosts 2$/m);
    tt.regex(metrics, /^provision_drift_tasks\{[^}]*host="lb2"[^}]*\} 1$/m);
    tt.regex(metrics, /^provision_drift_tasks\{[^}]*host="web1"[^}]*\} 1$/m);
    tt.regex(readFileSync(join(dir, 'provision_drift.prom'), 'utf8'), /^provision_drift_hosts 2$/m, 'the textfile says the same');
    // Prometheus scrapes the watcher: ProvisionDrift fires for both (prometheus_drift_for is 15s in the lab).
    const t0 = Date.now();
    let hosts: string[] = [];
    while (Date.now() - t0 < 120_000) {
      const r = await run('curl', ['-s', '--max-time', '5', `http://${host('mon1').address}:9090/api/v1/alerts`], 30_000);
      const alerts = (JSON.parse(r.stdout || '{}') as {data?: {alerts?: {labels: Record<string, string>; state: string}[]}}).data?.alerts ?? [];
      hosts = [...new Set(alerts.filter((a) => a.labels.alertname === 'ProvisionDrift' && a.state === 'firing').map((a) => a.labels.host ?? ''))].sort();
      if (hosts.length === 2) break;
      await sleep(2000);
    }
    tt.deepEqual(hosts, ['lb2', 'web1'], 'ProvisionDrift firing in Prometheus');
    figures.push(`watch → Prometheus on mon1: ProvisionDrift firing ${((Date.now() - edited) / 1000).toFixed(1)} s after the edit`);
  } finally {
    tt.is(await w.stop(), 0, 'watch ends cleanly on SIGTERM');
  }

  const repair = await provision('run', 'site', '-i', inventory, '--only-drifted', '--state', state, '--json');
  tt.is(repair.code, 0, repair.stderr + repair.stdout.slice(-2000));
  const results = repair.stdout.split('\n').filter((l) => l.includes('"type":"result"')).map((l) => JSON.parse(l) as {host: string; task: string; status: string});
  tt.deepEqual([...new Set(results.map((r) => r.host))].sort(), ['lb2', 'web1'], 'only the drifted hosts');
  const changed = results.filter((r) => r.status === 'changed');
  tt.true(changed.some((r) => r.host === 'lb2' && /haproxy/i.test(r.task)), JSON.stringify(changed));
  tt.true(changed.some((r) => r.host === 'web1' && /node.exporter/i.test(r.task)), JSON.stringify(changed));
  figures.push(`--only-drifted repair: ${results.length} task results (${changed.map((r) => `${r.host}: ${r.task}`).join('; ')}) in ${(repair.ms / 1000).toFixed(1)} s`);
  tt.is((await ssh(host('web1'), 'systemctl is-active prometheus-node-exporter')).stdout.trim(), 'active');
  tt.notRegex((await ssh(host('lb2'), 'cat /etc/haproxy/haproxy.cfg')).stdout, /edited by hand/);

  const again = await provision('watch', 'site', '-i', inventory, '--once', '--state', state, '--json', ...target);
  tt.is(again.code, 0, again.stderr);
  const cleared = again.stdout.split('\n').filter((l) => l.includes('"type":"drift"')).map((l) => JSON.parse(l) as {host: string; state: string});
  tt.true(cleared.length >= 2 && cleared.every((c) => c.state === 'cleared'), again.stdout);
  tt.regex(again.stdout, /"type":"check".*"drifted_hosts":0/);
  const after = await Promise.all(others.map((h) => ssh(h, fingerprint)));
  // The other hosts: not one package or /etc file changed. (web1's and lb2's own files were repaired.)
  after.forEach((a, i) => tt.is(a.stdout, beforeOthers[i] ?? '', `${others[i]?.name}: untouched`));
  rmSync(dir, {recursive: true, force: true});
  const unpoint = await provision('run', 'site', '-i', inventory, '--limit', 'mon1', '--json');
  tt.is(unpoint.code, 0, unpoint.stderr);
});

/** One value of a PromQL query on mon1's Prometheus (undefined: no series). */
async function promValue(query: string): Promise<number | undefined> {
  const r = await run('curl', ['-s', '--max-time', '5', '--get', '--data-urlencode', `query=${query}`, `http://${host('mon1').address}:9090/api/v1/query`], 30_000);
  const v = (JSON.parse(r.stdout || '{}') as {data?: {result?: {value: [number, string]}[]}}).data?.result?.[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

async function promUntil(what: string, query: string, ok: (v: number | undefined) => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const v = await promValue(query);
    if (ok(v)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what} (${query} = ${v})`);
    await sleep(1000);
  }
}

t('drift watcher as a service on mon1 (provision_watch_enabled): its own key, its checks scraped by Prometheus, a stopped node_exporter on web1 seen, ProvisionDrift firing, then cleared; revoked, its key no longer opens any host', async (tt) => {
  const on = ['-e', 'provision_watch_enabled=true', '-e', 'provision_watch_every=5s'];
  const watchKey = '/var/lib/provision-watch/.ssh/id_ed25519';
  const asWatcher = (target: string): string =>
    `sudo -u provision-watch ssh -i ${watchKey} -o UserKnownHostsFile=/var/lib/provision-watch/known_hosts -o BatchMode=yes -o ConnectTimeout=5 provision@${target} 'sudo -n true && echo opened'`;
  const job = 'instance="127.0.0.1:9469"';

  const deploy = await provision('run', 'site', '-i', inventory, '--json', ...on);
  tt.is(deploy.code, 0, deploy.stderr + deploy.stdout.slice(-2000));
  figures.push(`watcher on mon1: deployed (release of the project, its packages and Node.js, ${cfg.hosts.length} hosts authorized) in ${(deploy.ms / 1000).toFixed(1)} s`);
  const check = await provision('run', 'site', '-i', inventory, '--check', '--json', ...on);
  tt.is(check.code, 0, check.stderr);
  for (const h of cfg.hosts) tt.is(recapOf(check.stdout).hosts[h.name]?.changed, 0, `${h.name}: --check after the deploy sees nothing to change`);
  const started = Date.now() / 1000;

  // Its own key, limited to mon1's address, opens every host from mon1 (and sudo works there).
  for (const h of cfg.hosts) {
    const keys = await ssh(h, 'cat /home/provision/.ssh/authorized_keys');
    tt.regex(keys.stdout, new RegExp(`^from="${host('mon1').address}",no-agent-forwarding,no-port-forwarding,no-X11-forwarding,no-pty ssh-ed25519 \\S+ provision-watch@mon1$`, 'm'), h.name);
  }
  tt.regex((await ssh(host('mon1'), asWatcher(host('web1').address))).stdout, /opened/);
  tt.regex((await ssh(host('mon1'), 'ls -l /opt/provision-watch/current; systemctl is-active provision-watch')).stdout, /releases\/[0-9a-f]{16}\n.*active/s);

  // Its checks reach Prometheus: a success after the deploy, no drift.
  const firstMs = await promUntil('a check of the watcher on mon1 scraped', `provision_check_last_success_timestamp{${job}}`, (v) => v !== undefined && v > started, 120_000);
  tt.is(await promValue(`provision_drift_hosts{${job}}`), 0, 'the converged site (the watcher itself included) has no drift');
  tt.is(await promValue(`sum(provision_unreachable{${job}})`), 0);
  const duration = await promValue(`provision_check_duration_seconds{${job}}`);
  figures.push(`watcher on mon1: a check scraped ${(firstMs / 1000).toFixed(1)} s after the deploy and its --check; one check takes ${duration?.toFixed(2)} s`);

  const stopped = Date.now();
  await ssh(host('web1'), 'systemctl stop prometheus-node-exporter');
  await promUntil('drift of web1 in Prometheus', `provision_drift_tasks{${job},host="web1"} == 1`, (v) => v === 1, 90_000);
  figures.push(`watcher on mon1: node_exporter stopped on web1, drift in Prometheus ${((Date.now() - stopped) / 1000).toFixed(1)} s later (interval 5 s, scrape 5 s)`);
  tt.is(await promValue(`provision_drift_hosts{${job}}`), 1);
  // The site's rule fires on it (prometheus_drift_for is 15s in the lab).
  const firing = await promUntil('ProvisionDrift firing for web1 from the watcher on mon1', `ALERTS{alertname="ProvisionDrift",alertstate="firing",host="web1",${job}}`, (v) => v === 1, 120_000);
  figures.push(`watcher on mon1: ProvisionDrift firing for web1 ${((Date.now() - stopped) / 1000).toFixed(1)} s after node_exporter stopped (${(firing / 1000).toFixed(1)} s after the drift was scraped)`);
  const repair = await provision('run', 'site', '-i', inventory, '--limit', 'web1', '--json', ...on);
  tt.is(repair.code, 0, repair.stderr);
  await promUntil('drift cleared in Prometheus', `provision_drift_hosts{${job}}`, (v) => v === 0, 90_000);

  // Revoked: the service stops and goes, and its key leaves every host.
  const revoke = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(revoke.code, 0, revoke.stderr);
  for (const h of cfg.hosts) tt.notRegex((await ssh(h, 'cat /home/provision/.ssh/authorized_keys')).stdout, /provision-watch@/, `${h.name}: key removed`);
  tt.regex((await ssh(host('mon1'), 'systemctl is-active provision-watch; for f in /etc/systemd/system/provision-watch.service /opt/provision-watch /etc/provision-watch; do test -e $f && echo "$f left"; done; true')).stdout, /^inactive\n$/);
  const refused = await ssh(host('mon1'), `${asWatcher(host('web1').address)}; echo rc=$?`);
  tt.regex(refused.stdout, /rc=255/, 'the watcher\'s key opens nothing any more');
  tt.notRegex(refused.stdout, /opened/);
  const after = await provision('run', 'site', '-i', inventory, '--check', '--json');
  for (const h of cfg.hosts) tt.is(recapOf(after.stdout).hosts[h.name]?.changed, 0, `${h.name}: converged without the watcher`);
});

t('a host powered off in the middle of a run: the others complete, exit 4; the re-run converges', async (tt) => {
  const run = provision('run', 'site', '-i', inventory, '--json', '-e', 'nginx_server_name=power.lab.test');
  await sleep(400);
  const off = await provision('lab', 'stop', 'web2', '--hard', '-i', inventory);
  tt.is(off.code, 0, off.stderr);
  const r = await run;
  tt.is(r.code, 4, r.stderr);
  const rc = recapOf(r.stdout).hosts;
  tt.is(rc.web2?.unreachable, 1);
  for (const h of cfg.hosts.filter((x) => x.name !== 'web2')) tt.like(rc[h.name], {failed: 0, unreachable: 0}, h.name);
  tt.true(rc.web1!.changed > 0);
  const on = await provision('lab', 'start', 'web2', '-i', inventory);
  tt.is(on.code, 0, on.stderr);
  const again = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(again.code, 0, again.stderr);
  const last = await provision('run', 'site', '-i', inventory, '--json');
  for (const h of cfg.hosts) tt.is(recapOf(last.stdout).hosts[h.name]?.changed, 0, `${h.name} converged`);
  figures.push(`power cut of web2 mid-run: exit ${r.code}, others finished; re-run converged`);
});

t('secrets never appear in --diff -v --json, plain -vv --diff, the live UI, or the audit logs', async (tt) => {
  const view = await run(process.execPath, [join(root, 'bin/provision.js'), 'vault', 'view', join(root, 'inventory/group_vars/all/vault.yml'), '--vault-password-file', join(root, '.lab/vault-pass')], 60_000);
  tt.is(view.code, 0, view.stderr);
  const {parse} = await import('yaml');
  const secrets = Object.values(parse(view.stdout) as Record<string, string>).map(String).filter((s) => s.length >= 8);
  tt.true(secrets.length >= 4);
  const dropSecretFiles = (): Promise<Out[]> => Promise.all([
    ssh(host('web1'), 'rm -f /etc/app/app.env'),
    ssh(host('db1'), 'rm -f /etc/prometheus/mysqld-exporter.cnf'),
    ssh(host('lb1'), 'rm -f /etc/haproxy/haproxy.cfg'),
  ]);
  await dropSecretFiles();
  const json = await provision('run', 'site', '-i', inventory, '--diff', '-v', '--json');
  tt.is(json.code, 0, json.stderr);
  await dropSecretFiles();
  const plain = await provision('run', 'site', '-i', inventory, '--diff', '-vv', '--no-tui');
  tt.is(plain.code, 0, plain.stderr);
  // The live UI, in a real terminal.
  await dropSecretFiles();
  const session = `leak${process.pid}`;
  await run('tmux', ['new-session', '-d', '-s', session, '-x', '200', '-y', '60', `cd ${root} && env -u CI -u CONTINUOUS_INTEGRATION TERM=xterm-256color node bin/provision.js run site -i ${inventory} --diff -v; echo "EXIT=$?"; sleep 60`]);
  let screen = '';
  const t0 = Date.now();
  while (Date.now() - t0 < 180_000) {
    screen = (await run('tmux', ['capture-pane', '-p', '-t', session, '-S', '-5000'])).stdout;
    if (/EXIT=\d+/.test(screen)) break;
    await sleep(1000);
  }
  await run('tmux', ['kill-session', '-t', session]);
  tt.regex(screen, /EXIT=0/, 'the live UI run finished');
  const audit = await Promise.all(cfg.hosts.map((h) => ssh(h, 'cat /var/log/provision.log')));
  tt.true(audit.some((a) => a.stdout.includes('app.env')), 'the audit log recorded the changes');
  const outputs = {json: json.stdout + json.stderr, plain: plain.stdout + plain.stderr, tui: screen, audit: audit.map((a) => a.stdout).join('\n')};
  for (const [where, text] of Object.entries(outputs)) {
    for (const s of secrets) tt.false(text.includes(s), `a vault value appears in the ${where} output`);
  }
  tt.true(outputs.json.includes('***') || outputs.plain.includes('***'), 'secrets are shown masked');
});
