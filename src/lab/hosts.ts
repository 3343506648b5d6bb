/**
 * Lab hosts: an overlayfs layer over the base per host, a per-host identity written into that layer
 * before the first boot, and the host booted with systemd in systemd-nspawn on the lab bridge.
 */
import {randomBytes} from 'node:crypto';
import {appendFileSync, chmodSync, existsSync, lstatSync, symlinkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import {readFile, readdir, readlink} from 'node:fs/promises';
import {join} from 'node:path';
import type {LabConfig, LabHost, LabPaths} from './config.ts';
import {runCmd, sleep, spawnDetached, waitFor} from './run.ts';
import {daemonOf, isAlive, procStartTime, type DaemonState} from './state.ts';
import {deleteLink, linkExists} from './network.ts';
import {sshBanner} from './net-probe.ts';
import {prepareHostCgroups, removeHostCgroups} from './cgroups.ts';

/** SIGRTMIN+4: systemd's "poweroff" signal. SIGRTMIN is 34 on Linux/glibc. */
const SIGRTMIN_PLUS_4 = 38;

export interface HostDirs {
  readonly dir: string;
  readonly upper: string;
  readonly work: string;
  readonly root: string;
  readonly console: string;
}

export function hostDirs(paths: LabPaths, name: string): HostDirs {
  const dir = join(paths.hosts, name);
  return {dir, upper: join(dir, 'upper'), work: join(dir, 'work'), root: join(dir, 'root'), console: join(dir, 'console.log')};
}

/** The veth nspawn creates on the controller side for a host. */
export const vethName = (name: string): string => `vb-${name}`;

/** Mount points from /proc/mounts (octal escapes decoded). */
export function mountPoints(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => !!m)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export const isMounted = (path: string): boolean => mountPoints().includes(path);

/** Unmount everything at or under `path`, deepest first. */
export async function unmountUnder(path: string): Promise<void> {
  const ms = mountPoints()
    .filter((m) => m === path || m.startsWith(`${path}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of ms) {
    const r = await runCmd(['umount', m], {allowFail: true});
    if (r.code !== 0) await runCmd(['umount', '-l', m], {allowFail: true});
  }
}

/** Mount the host's overlay (idempotent). */
export async function mountHost(paths: LabPaths, name: string): Promise<void> {
  const d = hostDirs(paths, name);
  for (const p of [d.upper, d.work, d.root]) mkdirSync(p, {recursive: true});
  if (isMounted(d.root)) return;
  await runCmd(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${paths.base},upperdir=${d.upper},workdir=${d.work}`, d.root]);
}

function put(root: string, path: string, content: string, mode = 0o644): void {
  const p = join(root, path);
  mkdirSync(join(p, '..'), {recursive: true});
  writeFileSync(p, content, {mode});
  chmodSync(p, mode);
}

/** Like existsSync, but true for a dangling symlink too (links inside a host point into the host). */
function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

const IDENTITY_MARKER = 'etc/provision-lab-host';

/** True if the host's layer already carries its identity (a kept host keeps its keys). */
export function hasIdentity(paths: LabPaths, name: string): boolean {
  return existsSync(join(hostDirs(paths, name).upper, IDENTITY_MARKER));
}

/** `/etc/hosts` for every host: each lab name with its address, the site name at the VIP. */
export function etcHosts(cfg: LabConfig): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ''];
  lines.push(`${cfg.bridgeIp}\tcontroller.${cfg.domain} controller`);
  for (const h of cfg.hosts) lines.push(`${h.address}\t${h.name}.${cfg.domain} ${h.name}`);
  if (cfg.vip && cfg.siteDomain) lines.push(`${cfg.vip}\t${cfg.siteDomain}`);
  return `${lines.join('\n')}\n`;
}

/** Everything that makes a host itself, written into its (mounted) layer before its first boot. */
export async function writeIdentity(
  cfg: LabConfig,
  paths: LabPaths,
  host: LabHost,
  clientPubKey: string,
  extraCaCerts: Readonly<Record<string, string>>,
): Promise<void> {
  const root = hostDirs(paths, host.name).root;
  put(root, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  put(root, 'etc/hostname', `${host.name}\n`);
  put(root, 'etc/hosts', etcHosts(cfg));
  put(root, 'etc/resolv.conf', '');
  put(root, 'etc/systemd/network/10-host0.network', [
    '[Match]', 'Name=host0', '', '[Network]', `Address=${host.address}/${cfg.prefixLength}`,
    'LinkLocalAddressing=no', 'IPv6AcceptRA=no', '',
  ].join('\n'));
  put(root, 'etc/apt/apt.conf.d/01provision-lab', [
    `Acquire::http::Proxy "http://${cfg.bridgeIp}:${cfg.aptProxyPort}";`,
    '// Less disk per host: no translations, no source package cache.',
    'Acquire::Languages "none";',
    'Dir::Cache::srcpkgcache "";',
    '// apt-cacher-ng can stall a request when many hosts refresh the same index in the same second',
    '// ("Failure to move file ... File exists" in its log): time out and retry instead of hanging.',
    'Acquire::http::Timeout "20";',
    'Acquire::Retries "5";',
    '',
  ].join('\n'));
  // SSH host key, made here so known_hosts is exact before the first contact.
  const key = join(root, 'etc/ssh/ssh_host_ed25519_key');
  rmSync(key, {force: true});
  rmSync(`${key}.pub`, {force: true});
  await runCmd(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `root@${host.name}`, '-f', key]);
  // root and the sudo user, both with the lab key.
  mkdirSync(join(root, 'root/.ssh'), {recursive: true, mode: 0o700});
  put(root, 'root/.ssh/authorized_keys', clientPubKey, 0o600);
  const u = cfg.user;
  if ((await runCmd(['chroot', root, 'id', '-u', u], {allowFail: true})).code !== 0)
    await runCmd(['chroot', root, 'useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'sudo', u]);
  put(root, `home/${u}/.ssh/authorized_keys`, clientPubKey, 0o600);
  put(root, `etc/sudoers.d/90-provision-lab-${u}`, `${u} ALL=(ALL:ALL) NOPASSWD: ALL\n`, 0o440);
  // Trust the lab CA (pebble's listener) and pebble's root, so certbot and curl work in the host.
  for (const [n, pem] of Object.entries(extraCaCerts)) await trustCa(root, n, pem);
  await runCmd(['chroot', root, 'chown', '-R', `${u}:${u}`, `/home/${u}/.ssh`]);
  chmodSync(join(root, `home/${u}/.ssh`), 0o700);
  put(root, IDENTITY_MARKER, `${host.name}\n`);
}

/**
 * Add a CA to a host's trust store the way `update-ca-certificates` would (the PEM under
 * /usr/local/share/ca-certificates, its link and hash link in /etc/ssl/certs, appended to the bundle),
 * without running it: it costs a second of CPU per host.
 */
async function trustCa(root: string, name: string, pem: string): Promise<void> {
  const crt = `usr/local/share/ca-certificates/${name}.crt`;
  put(root, crt, pem.endsWith('\n') ? pem : `${pem}\n`);
  const certs = join(root, 'etc/ssl/certs');
  mkdirSync(certs, {recursive: true});
  const link = join(certs, `${name}.pem`);
  rmSync(link, {force: true});
  symlinkSync(`/${crt}`, link);
  const hash = (await runCmd(['openssl', 'x509', '-subject_hash', '-noout', '-in', join(root, crt)])).stdout.trim();
  let i = 0;
  while (lexists(join(certs, `${hash}.${i}`))) i++;
  symlinkSync(`${name}.pem`, join(certs, `${hash}.${i}`));
  appendFileSync(join(certs, 'ca-certificates.crt'), pem.endsWith('\n') ? pem : `${pem}\n`);
}

/** The host's SSH public host key (`ssh-ed25519 AAAA...`), from its layer. */
export function hostPublicKey(paths: LabPaths, name: string): string | undefined {
  const p = join(hostDirs(paths, name).upper, 'etc/ssh/ssh_host_ed25519_key.pub');
  if (!existsSync(p)) return undefined;
  const [type, key] = readFileSync(p, 'utf8').trim().split(/\s+/);
  return type && key ? `${type} ${key}` : undefined;
}

/** The container's PID 1 as seen from the controller: the child of nspawn, itself the supervisor's child. */
export async function leaderPid(host: DaemonState): Promise<number | undefined> {
  if (!(await isAlive(host))) return undefined;
  let pid = host.pid;
  // The supervisor shell (supervisorScript) → nspawn → the host's init. A record from before the
  // supervisor (nspawn itself) has one level less.
  for (let depth = 0; depth < 2; depth++) {
    const kid = await firstChild(pid);
    if (kid === undefined) return undefined;
    const comm = await readFile(`/proc/${kid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() !== 'systemd-nspawn') return kid;
    pid = kid;
  }
  return undefined;
}

async function firstChild(pid: number): Promise<number | undefined> {
  try {
    for (const t of await readdir(`/proc/${pid}/task`)) {
      const kids = (await readFile(`/proc/${pid}/task/${t}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
      if (kids[0]) return Number(kids[0]);
    }
  } catch {
    /* gone */
  }
  return undefined;
}

/** PIDs of every process in the same PID namespace as `leader` (the host's processes). */
export async function containerPids(leader: number): Promise<number[]> {
  let ns: string;
  try {
    ns = await readlink(`/proc/${leader}/ns/pid`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if ((await readlink(`/proc/${e}/ns/pid`)) === ns) out.push(Number(e));
    } catch {
      /* raced */
    }
  }
  return out;
}

/** Memory of a running host: the sum of its processes' PSS, in KiB. */
export async function hostMemoryKiB(leader: number): Promise<number> {
  let total = 0;
  for (const pid of await containerPids(leader)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m?.[1]) total += Number(m[1]);
    } catch {
      /* raced */
    }
  }
  return total;
}

/** On machines whose PID 1 is not systemd, nspawn wants a tmpfs at /run/systemd/nspawn (LAB.md). */
export async function ensureNspawnRuntimeDir(): Promise<boolean> {
  const pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
  const dir = '/run/systemd/nspawn';
  if (pid1 === 'systemd' || isMounted(dir)) return false;
  mkdirSync(dir, {recursive: true});
  await runCmd(['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dir]);
  return true;
}

/**
 * The shell a host's nspawn runs under: `sh -c script sh VETH CGROUP_PROCS… -- NSPAWN ARGV…`. It joins
 * the cgroups, then runs nspawn until it exits with anything but 133 (a reboot), removing a veth the
 * last boot left. Its PID is the host's process record (see `leaderPid`).
 */
export const supervisorScript = [
  'veth=$1; shift; pid=$$',
  'while [ "$1" != -- ]; do echo "$pid" > "$1" || exit 97; shift; done; shift',
  'stop=0; child=',
  'trap \'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null\' TERM INT',
  'while :; do',
  '  "$@" & child=$!',
  '  while :; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done',
  '  [ "$rc" -eq 133 ] && [ "$stop" -eq 0 ] || exit "$rc"',
  '  echo "--- $(date -u +%FT%TZ) rebooted: nspawn again"',
  '  ip link del "$veth" 2>/dev/null',
  'done',
].join('\n');

/** Boot a host (its overlay mounted and identity written). Returns the nspawn process record. */
export async function startHost(cfg: LabConfig, paths: LabPaths, host: LabHost): Promise<DaemonState> {
  const d = hostDirs(paths, host.name);
  // A veth left by a host that died uncleanly makes nspawn fail with "File exists".
  if (linkExists(vethName(host.name))) await deleteLink(vethName(host.name));
  const argv = [
    'systemd-nspawn', '--quiet', '--boot', '--register=no', '--keep-unit',
    '-D', d.root, '-M', host.name, `--network-bridge=${cfg.bridge}`,
    '--resolv-conf=off', '--timezone=off', '--link-journal=no', '--console=passive',
  ];
  writeFileSync(d.console, `--- ${new Date().toISOString()} ${argv.join(' ')}\n`, {flag: 'a'});
  // Join the host's own cgroups (see cgroups.ts), then run nspawn again each time the host reboots
  // (nspawn exits 133 then, as systemd-nspawn@.service's RestartForceExitStatus), as a machine would.
  // A TERM to this shell goes to nspawn (which halts the host cleanly) and ends the loop.
  const procs = prepareHostCgroups(host.name);
  const pid = spawnDetached(['sh', '-c', supervisorScript, 'sh', vethName(host.name), ...procs, '--', ...argv], d.console, nspawnEnv());
  const daemon = await daemonOf(pid);
  await sleep(50);
  if (!daemon.startTime || !(await isAlive(daemon))) {
    const tail = readFileSync(d.console, 'utf8').trim().split('\n').slice(-2).join(' / ');
    throw new Error(`systemd-nspawn for ${host.name} exited at once: ${tail}`);
  }
  return daemon;
}

/** Wait until the host's sshd greets on its address. */
export async function waitForSsh(host: LabHost, nspawn: DaemonState, paths: LabPaths, timeoutMs = 60_000): Promise<void> {
  let died = false;
  const ok = await waitFor(async () => {
    if (!(await isAlive(nspawn))) {
      died = true;
      return true;
    }
    return sshBanner(host.address, 1000);
  }, timeoutMs, 100);
  const tail = (): string => readFileSync(hostDirs(paths, host.name).console, 'utf8').trim().split('\n').slice(-3).join(' / ');
  if (died) throw new Error(`${host.name} stopped while booting: ${tail()}`);
  if (!ok) throw new Error(`${host.name} (${host.address}) did not answer SSH within ${timeoutMs / 1000}s: ${tail()}`);
}

async function waitGone(d: DaemonState, ms: number): Promise<boolean> {
  return waitFor(async () => !(await isAlive(d)), ms, 50);
}

/**
 * Power a host off. Clean: SIGRTMIN+4 to its systemd (poweroff) and wait; `hard`: SIGKILL its PID 1
 * (a power cut). Either way, escalate to SIGKILL if it does not go, and wait for nspawn to exit.
 */
export async function stopHost(nspawn: DaemonState, hard = false, timeoutMs = 30_000): Promise<void> {
  if (!(await isAlive(nspawn))) return;
  const leader = await leaderPid(nspawn);
  const signal = (pid: number, sig: NodeJS.Signals | number): void => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  if (leader !== undefined) signal(leader, hard ? 'SIGKILL' : SIGRTMIN_PLUS_4);
  else signal(nspawn.pid, 'SIGTERM');
  if (await waitGone(nspawn, timeoutMs)) return;
  // Last resort: kill every process of the container, then nspawn.
  if (leader !== undefined) for (const p of await containerPids(leader)) signal(p, 'SIGKILL');
  signal(nspawn.pid, 'SIGTERM');
  if (await waitGone(nspawn, 5000)) return;
  signal(nspawn.pid, 'SIGKILL');
  if (!(await waitGone(nspawn, 5000))) throw new Error(`systemd-nspawn ${nspawn.pid} does not exit`);
}

/** Unmount and delete a (stopped) host's files. */
export async function removeHostFiles(paths: LabPaths, name: string): Promise<void> {
  const d = hostDirs(paths, name);
  await unmountUnder(d.root);
  removeHostCgroups(name);
  rmSync(d.dir, {recursive: true, force: true});
}

/** Host directories present under `.lab/hosts/` (including ones no longer in the inventory). */
export function hostDirNames(paths: LabPaths): string[] {
  return existsSync(paths.hosts) ? readdirSync(paths.hosts) : [];
}

/** Disk used by a host's layer, in KiB. */
export async function hostDiskKiB(paths: LabPaths, name: string): Promise<number> {
  const r = await runCmd(['du', '-skx', hostDirs(paths, name).upper], {allowFail: true});
  return Number(r.stdout.split(/\s+/)[0] ?? 0) || 0;
}

export {procStartTime};

/**
 * Environment for systemd-nspawn. `PROVISION_LAB_CGROUP=unified|legacy|auto` picks the container's
 * cgroup layout (`SYSTEMD_NSPAWN_UNIFIED_HIERARCHY`); the default is nspawn's own choice.
 */
export function nspawnEnv(): Record<string, string> {
  const mode = process.env.PROVISION_LAB_CGROUP ?? 'auto';
  if (mode === 'unified') return {SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1'};
  if (mode === 'legacy') return {SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '0'};
  return {};
}
