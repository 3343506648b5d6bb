/** The lab's prerequisites on the controller, named in one message with the apt command. */
import {accessSync, constants} from 'node:fs';
import {delimiter, join} from 'node:path';
import {UserError} from '../core/errors.ts';
import {runCmd} from './run.ts';

/** A program the lab runs and the Debian package that ships it. */
const REQUIRED: readonly {readonly program: string; readonly pkg: string}[] = [
  {program: 'systemd-nspawn', pkg: 'systemd-container'},
  {program: 'debootstrap', pkg: 'debootstrap'},
  {program: 'apt-cacher-ng', pkg: 'apt-cacher-ng'},
  {program: 'pebble', pkg: 'pebble'},
  {program: 'pebble-challtestsrv', pkg: 'pebble'},
  {program: 'ip', pkg: 'iproute2'},
  {program: 'ssh', pkg: 'openssh-client'},
  {program: 'ssh-keygen', pkg: 'openssh-client'},
  {program: 'openssl', pkg: 'openssl'},
];

/** Every apt package the lab needs (for CI scripts and the docs). */
export const LAB_APT_PACKAGES: readonly string[] = [...new Set(REQUIRED.map((r) => r.pkg))];

function onPath(program: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return dirs.some((d) => {
    try {
      accessSync(join(d, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The packages whose programs are missing. */
export function missingPackages(): string[] {
  return [...new Set(REQUIRED.filter((r) => !onPath(r.program)).map((r) => r.pkg))];
}

export function installCommand(pkgs: readonly string[]): string[] {
  return ['apt-get', 'install', '-y', ...pkgs];
}

/** The lab runs only as root on Linux. */
export function assertRootOnLinux(): void {
  if (process.platform !== 'linux') throw new UserError('provision lab needs Linux (systemd-nspawn)');
  if (process.getuid?.() !== 0) throw new UserError('provision lab needs root (run it with sudo)');
}

/**
 * Check prerequisites; with `install`, install the missing ones with apt-get (services are not
 * started by us: the lab runs its own instances). Returns what was installed.
 */
export async function ensurePrerequisites(install: boolean): Promise<string[]> {
  const missing = missingPackages();
  if (missing.length === 0) return [];
  const cmd = installCommand(missing);
  if (!install)
    throw new UserError(`missing prerequisites: ${missing.join(', ')}; install them with \`${cmd.join(' ')}\` or pass --install-deps`);
  await runCmd(cmd, {env: {DEBIAN_FRONTEND: 'noninteractive'}, timeoutMs: 15 * 60_000});
  const still = missingPackages();
  if (still.length) throw new UserError(`still missing after apt-get install: ${still.join(', ')}`);
  return missing;
}
