/**
 * The base image: Debian built once with debootstrap through the lab's apt cache, configured once for
 * booting in a container, and cached in `.lab/base/`. Hosts are overlays over it; it is never
 * modified while an overlay is mounted.
 */
import {existsSync, mkdirSync, readFileSync, readdirSync, rmSync, renameSync, writeFileSync, symlinkSync, unlinkSync, lstatSync} from 'node:fs';
import {join} from 'node:path';
import type {LabPaths} from './config.ts';
import {clientUrl, type Mirrors} from './aptcache.ts';
import {runCmd} from './run.ts';

/** Bump when the base's content or configuration changes: an older cached base is rebuilt. */
export const BASE_VERSION = 1;

export const BASE_PACKAGES: readonly string[] = [
  'systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'iproute2', 'sudo', 'python3',
  'ca-certificates', 'curl', 'iputils-ping', 'procps',
];

/** Units that fail or only add noise in a container; masked in the base. */
export const MASKED_UNITS: readonly string[] = [
  'apt-daily.timer', 'apt-daily-upgrade.timer', 'apt-daily.service', 'apt-daily-upgrade.service',
  'e2scrub_all.timer', 'e2scrub_reap.service', 'fstrim.timer',
  'nvmf-autoconnect.service', 'openipmi.service',
  'systemd-networkd-wait-online.service',
];

interface BaseMarker {
  readonly version: number;
  readonly suite: string;
  readonly packages: readonly string[];
  readonly mirror: string;
  readonly built: string;
}

export function readBaseMarker(paths: LabPaths): BaseMarker | undefined {
  try {
    return JSON.parse(readFileSync(paths.baseMarker, 'utf8')) as BaseMarker;
  } catch {
    return undefined;
  }
}

/** True if a complete base for `suite` of the current version is cached. */
export function baseIsCurrent(paths: LabPaths, suite: string): boolean {
  const m = readBaseMarker(paths);
  return !!m && m.version === BASE_VERSION && m.suite === suite && BASE_PACKAGES.every((p) => m.packages.includes(p));
}

function writeFile(root: string, path: string, content: string, mode = 0o644): void {
  const p = join(root, path);
  mkdirSync(join(p, '..'), {recursive: true});
  writeFileSync(p, content, {mode});
}

/** Configure a fresh debootstrap tree once: sources, apt, units, no identity (hosts get their own). */
export async function configureBase(root: string, suite: string, mirrors: Mirrors): Promise<void> {
  const deb = clientUrl(mirrors.debian);
  const sec = clientUrl(mirrors.security);
  writeFile(root, 'etc/apt/sources.list', `deb ${deb} ${suite} main\ndeb ${deb} ${suite}-updates main\ndeb ${sec} ${suite}-security main\n`);
  writeFile(root, 'etc/apt/apt.conf.d/90provision-lab', [
    '// provision lab: the mirror snapshot may be older than its Valid-Until date.',
    'Acquire::Check-Valid-Until "false";',
    'APT::Periodic::Enable "0";',
    '',
  ].join('\n'));
  // No identity in the base: every host gets its own machine-id, hostname and SSH host key.
  for (const f of readdirSync(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(join(root, 'etc/ssh', f));
  writeFile(root, 'etc/ssh/sshd_config.d/provision-lab.conf', 'HostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\n');
  writeFileSync(join(root, 'etc/machine-id'), '');
  rmSync(join(root, 'var/lib/dbus/machine-id'), {force: true});
  rmSync(join(root, 'etc/hostname'), {force: true});
  writeFileSync(join(root, 'etc/resolv.conf'), '');
  // Units: networkd and ssh on, the container misfits masked.
  await runCmd(['chroot', root, 'systemctl', 'enable', 'systemd-networkd.service', 'ssh.service']);
  for (const unit of MASKED_UNITS) {
    const link = join(root, 'etc/systemd/system', unit);
    try {
      lstatSync(link);
      unlinkSync(link);
    } catch {
      /* not there */
    }
    symlinkSync('/dev/null', link);
  }
  await runCmd(['chroot', root, 'apt-get', 'clean']);
  rmSync(join(root, 'var/lib/apt/lists'), {recursive: true, force: true});
  mkdirSync(join(root, 'var/lib/apt/lists/partial'), {recursive: true});
}

/**
 * Build the base with debootstrap through the apt cache at `proxy` (http://IP:PORT), into a
 * temporary directory renamed into place only when complete.
 */
export async function buildBase(paths: LabPaths, suite: string, mirrors: Mirrors, proxy: string, log: (line: string) => void): Promise<void> {
  const tmp = `${paths.base}.tmp`;
  rmSync(tmp, {recursive: true, force: true});
  if (existsSync(paths.base)) rmSync(paths.base, {recursive: true, force: true});
  mkdirSync(tmp, {recursive: true});
  log(`debootstrap ${suite} from ${mirrors.debian} through ${proxy}`);
  await runCmd(
    ['debootstrap', '--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, '--components=main', suite, tmp, clientUrl(mirrors.debian)],
    {env: {http_proxy: proxy, DEBIAN_FRONTEND: 'noninteractive'}, timeoutMs: 30 * 60_000},
  );
  log('configuring the base');
  await configureBase(tmp, suite, mirrors);
  const marker: BaseMarker = {version: BASE_VERSION, suite, packages: BASE_PACKAGES, mirror: mirrors.debian, built: new Date().toISOString()};
  writeFileSync(join(tmp, '.provision-lab-base'), `${JSON.stringify(marker, null, 2)}\n`);
  renameSync(tmp, paths.base);
}
