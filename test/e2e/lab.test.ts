/**
 * The lab end to end, as root on Linux: `lab up` from whatever is cached (from nothing on a fresh
 * clone), every host answers SSH with systemd running, sudo works for the non-root user, apt works
 * through the cache, hosts reach each other and the bridge, `stop`/`start` power a host off and on,
 * `up` is idempotent, and `down` leaves no container, link, mount or process behind.
 */
import test from 'ava';
import {execFile} from 'node:child_process';
import {existsSync, readFileSync, readdirSync} from 'node:fs';
import {join} from 'node:path';
import {labPaths, loadLabConfig, type LabHost} from '../../src/lab/config.ts';
import type {LabStatus} from '../../src/lab/index.ts';

const paths = labPaths();
const root = paths.root;
const inventory = join(root, 'inventory/lab.yml');
const cfg = loadLabConfig(inventory);
const hosts = cfg.hosts;
const byName = (n: string): LabHost => hosts.find((h) => h.name === n)!;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(file: string, args: readonly string[], timeoutMs = 600_000): Promise<Out> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(file, args, {cwd: root, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8'}, (err, stdout, stderr) => {
      const code = err ? (typeof (err as {code?: unknown}).code === 'number' ? ((err as {code: number}).code) : 1) : 0;
      resolve({code, stdout, stderr, ms: Date.now() - t0});
    });
  });
}

/** `provision lab …` through the real CLI entry (bin/provision.js → src/cli/main.ts → registerLab). */
const lab = (...args: string[]): Promise<Out> => run(process.execPath, [join(root, 'bin/provision.js'), 'lab', ...args, '-i', inventory]);

/** The system ssh with the lab key and exact known_hosts (strict). */
const ssh = (h: LabHost, command: string, user = cfg.user, connectTimeout = 5): Promise<Out> =>
  run('ssh', [
    '-i', paths.clientKey, '-o', `UserKnownHostsFile=${paths.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${connectTimeout}`, '-o', 'LogLevel=ERROR',
    `${user}@${h.address}`, command,
  ], 300_000);

const status = async (): Promise<LabStatus> => {
  const r = await lab('status', '--json');
  if (r.code !== 0) throw new Error(`lab status: ${r.stderr}`);
  return JSON.parse(r.stdout) as LabStatus;
};

const isRoot = process.getuid?.() === 0 && process.platform === 'linux';
const t = isRoot ? test.serial : test.serial.skip;
if (!isRoot) test.skip('the lab e2e tests (skipped: they need root on Linux)', () => undefined);

const figures: string[] = [];
test.after.always(() => {
  if (figures.length) console.log(`\nlab figures:\n  ${figures.join('\n  ')}`);
});

t('a clean start: down first (keeps the cached base and apt cache)', async (tt) => {
  const r = await lab('down');
  tt.is(r.code, 0, r.stderr + r.stdout);
});

t('up boots every host of the inventory', async (tt) => {
  const cached = existsSync(paths.baseMarker);
  const r = await lab('up');
  tt.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  figures.push(`up (${cached ? 'cached base' : 'from nothing'}): ${(r.ms / 1000).toFixed(1)}s for ${hosts.length} hosts`);
  tt.true(existsSync(paths.clientKey));
  tt.is(readFileSync(paths.clientKey).length > 0 && (await import('node:fs')).statSync(paths.clientKey).mode & 0o777, 0o600);
});

t('every host answers SSH as the sudo user and as root, with its own identity and systemd running', async (tt) => {
  const results = await Promise.all(
    hosts.map(async (h) => ({
      h,
      user: await ssh(h, 'hostname; systemctl is-system-running; sudo -n true && echo sudo-ok; cat /etc/machine-id; systemd-detect-virt; ip -4 -o addr show dev host0'),
      root: await ssh(h, 'id -u', 'root'),
    })),
  );
  const machineIds = new Set<string>();
  for (const {h, user, root: r} of results) {
    tt.is(user.code, 0, `${h.name}: ${user.stderr}`);
    const [hostname, running, sudo, machineId, virt, addr] = user.stdout.trim().split('\n');
    tt.is(hostname, h.name);
    tt.is(running, 'running', `${h.name}: systemctl is-system-running`);
    tt.is(sudo, 'sudo-ok');
    tt.regex(machineId ?? '', /^[0-9a-f]{32}$/);
    machineIds.add(machineId ?? '');
    tt.is(virt, 'systemd-nspawn');
    tt.true(addr?.includes(` ${h.address}/`), `${h.name}: ${addr}`);
    tt.is(r.stdout.trim(), '0', `${h.name} as root: ${r.stderr}`);
  }
  tt.is(machineIds.size, hosts.length, 'machine-ids differ');
  const known = readFileSync(paths.knownHosts, 'utf8').trim().split('\n');
  tt.is(known.length, hosts.length);
  tt.is(new Set(known.map((l) => l.split(' ')[2])).size, hosts.length, 'host keys differ');
});

t('apt works in the hosts through the lab cache, which serves a package downloaded once', async (tt) => {
  const [a, b] = [byName('web1'), byName('web2')];
  const install = 'DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello >/dev/null && hello';
  const r1 = await ssh(a, `sudo -n sh -c '${install}'`);
  tt.is(r1.code, 0, r1.stderr);
  tt.is(r1.stdout.trim(), 'Hello, world!');
  const pool = join(paths.aptCache, 'debrep/pool/main/h/hello');
  tt.true(existsSync(pool) && readdirSync(pool).some((f) => f.endsWith('.deb')), 'the package is in the cache');
  const r2 = await ssh(b, `sudo -n sh -c '${install}'`);
  tt.is(r2.code, 0, r2.stderr);
  const log = readFileSync(join(paths.acng, 'log/apt-cacher.log'), 'utf8').split('\n').filter((l) => l.includes('/hello_'));
  tt.true(log.some((l) => l.includes(`|O|`) && l.includes(`|${a.address}|`)), 'served to web1');
  tt.true(log.some((l) => l.includes(`|O|`) && l.includes(`|${b.address}|`)), 'served to web2');
  tt.true(log.filter((l) => l.includes('|I|')).length <= 1, 'downloaded from the mirror at most once');
});

t('hosts reach each other and the bridge (ICMP and TCP)', async (tt) => {
  const results = await Promise.all(
    hosts.map((h, i) => {
      const next = hosts[(i + 1) % hosts.length]!;
      return ssh(h, [
        `ping -c1 -W2 ${next.address} >/dev/null && echo ping-peer`,
        `ping -c1 -W2 ${cfg.bridgeIp} >/dev/null && echo ping-bridge`,
        `timeout 3 bash -c '</dev/tcp/${next.address}/22' && echo tcp-peer`,
        `timeout 3 bash -c '</dev/tcp/${cfg.bridgeIp}/${cfg.aptProxyPort}' && echo tcp-bridge`,
        `getent hosts ${next.name} | grep -q ${next.address} && echo name-peer`,
      ].join('; '));
    }),
  );
  for (const [i, r] of results.entries()) tt.deepEqual(r.stdout.trim().split('\n'), ['ping-peer', 'ping-bridge', 'tcp-peer', 'tcp-bridge', 'name-peer'], `${hosts[i]!.name}: ${r.stderr}`);
});

t('the ACME server answers on the bridge and hosts trust it', async (tt) => {
  const r = await ssh(byName('web1'), `curl -sS -o /dev/null -w '%{http_code}' ${String(cfg.vars.acme_server)}`);
  tt.is(r.stdout.trim(), '200', r.stderr);
  tt.true(readFileSync(join(paths.pebble, 'roots.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
});

t('status --json lists every host running, with memory and disk', async (tt) => {
  const s = await status();
  tt.true(s.bridge.up);
  tt.true(s.services.apt_cacher_ng.running && s.services.pebble.running && s.services.challtestsrv.running);
  tt.deepEqual(s.hosts.map((h) => h.name), hosts.map((h) => h.name));
  for (const h of s.hosts) {
    tt.is(h.state, 'running', h.name);
    tt.is(h.address, byName(h.name).address);
    tt.true((h.memory_mib ?? 0) > 0 && (h.disk_mib ?? 0) > 0);
  }
  const mem = s.hosts.map((h) => h.memory_mib ?? 0);
  const cg = s.hosts.map((h) => h.cgroup_memory_mib ?? 0);
  const disk = s.hosts.map((h) => h.disk_mib ?? 0);
  figures.push(`memory per running host: PSS ${Math.min(...mem)}–${Math.max(...mem)} MiB, cgroup ${Math.min(...cg)}–${Math.max(...cg)} MiB; disk per host (upper layer): ${Math.min(...disk)}–${Math.max(...disk)} MiB (web1/web2 after apt-get update + install)`);
});

t('up again keeps the running hosts', async (tt) => {
  const before = await status();
  const r = await lab('up');
  tt.is(r.code, 0, r.stderr);
  const after = await status();
  tt.deepEqual(after.hosts.map((h) => h.pid), before.hosts.map((h) => h.pid));
  figures.push(`up with every host running: ${(r.ms / 1000).toFixed(1)}s`);
});

t('stop powers a host off, start brings it back with its disk', async (tt) => {
  const web2 = byName('web2');
  const id = (await ssh(web2, 'cat /etc/machine-id')).stdout.trim();
  const stop = await lab('stop', 'web2');
  tt.is(stop.code, 0, stop.stderr);
  const down = await ssh(web2, 'true', cfg.user, 2);
  tt.not(down.code, 0, 'web2 is unreachable after stop');
  tt.is((await status()).hosts.find((h) => h.name === 'web2')?.state, 'stopped');
  const others = await ssh(byName('web1'), `ping -c1 -W1 ${web2.address} >/dev/null && echo up || echo down`);
  tt.is(others.stdout.trim(), 'down');
  const start = await lab('start', 'web2');
  tt.is(start.code, 0, start.stderr);
  const back = await ssh(web2, 'cat /etc/machine-id; systemctl is-system-running --wait; which hello');
  tt.is(back.code, 0, back.stderr);
  tt.deepEqual(back.stdout.trim().split('\n'), [id, 'running', '/usr/bin/hello']);
  figures.push(`stop web2: ${(stop.ms / 1000).toFixed(1)}s, start web2 (to SSH): ${(start.ms / 1000).toFixed(1)}s`);
  // A power cut (SIGKILL of the host's PID 1) too.
  const cut = await lab('stop', 'web2', '--hard');
  tt.is(cut.code, 0, cut.stderr);
  tt.not((await ssh(web2, 'true', cfg.user, 2)).code, 0);
  tt.is((await lab('start', 'web2')).code, 0);
  tt.is((await ssh(web2, 'hostname')).stdout.trim(), 'web2');
});

t('unknown host names are one clear error', async (tt) => {
  const r = await lab('stop', 'nosuchhost');
  tt.is(r.code, 1);
  tt.regex(r.stderr, /no lab host named nosuchhost/);
});

t('down removes every host, the bridge, mounts and processes', async (tt) => {
  const s = await status();
  const pids = [
    ...s.hosts.flatMap((h) => [h.pid, h.leader_pid]),
    s.services.apt_cacher_ng.pid, s.services.pebble.pid, s.services.challtestsrv.pid,
  ].filter((p): p is number => p !== null);
  const r = await lab('down');
  tt.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  figures.push(`down: ${(r.ms / 1000).toFixed(1)}s`);
  // No link, no mount.
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
  tt.false(links.includes(`${cfg.bridge}:`) || links.includes(`${cfg.bridge}@`), 'bridge removed');
  for (const h of hosts) tt.false(links.includes(`vb-${h.name}`), `veth of ${h.name} removed`);
  const mounts = readFileSync('/proc/mounts', 'utf8');
  tt.false(mounts.includes(paths.lab), 'no mounts under .lab');
  // No live process we started (zombies waiting for PID 1 to reap them are gone already).
  const live = (pid: number): boolean => {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  };
  tt.deepEqual(pids.filter(live), [], 'every recorded process is gone');
  const ours = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && live(Number(p))).filter((p) => {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmd.includes(`${paths.lab}/`) || cmd.startsWith('systemd-nspawn');
    } catch {
      return false;
    }
  });
  tt.deepEqual(ours, [], 'no nspawn, apt-cacher-ng or pebble process left');
  tt.false(existsSync(paths.hosts), 'host layers removed');
  tt.false(existsSync(paths.state), 'state removed');
  tt.true(existsSync(paths.baseMarker), 'the cached base stays');
});
