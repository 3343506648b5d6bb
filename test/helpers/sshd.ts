/**
 * A real OpenSSH `sshd` for integration tests: loopback only, a free port, a throwaway ed25519 host
 * key and a throwaway client key authorized for root. It runs in the foreground (`-D -e`) as a child
 * of the test process; `stop()` kills that one process by its PID.
 */
import {spawn, execFile, type ChildProcess} from 'node:child_process';
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {createServer, connect} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';

const execFileP = promisify(execFile);

export const SSHD = '/usr/sbin/sshd';

export interface SshdOptions {
  /** sshd's MaxStartups (concurrent unauthenticated connections); default 100. */
  readonly maxStartups?: number;
  /** sshd's MaxSessions (concurrent commands per connection); default 10, as sshd. */
  readonly maxSessions?: number;
  /**
   * Let root's own login profile run for every shell sshd starts (this machine's ~/.bashrc runs
   * `pyenv init`: a heavy profile, as real servers often have). Default: kept out (`SHLVL=1`).
   */
  readonly loginProfile?: boolean;
  /** Environment variables sshd sets for every session (`SetEnv`), e.g. `BASH_ENV` to count login shells. */
  readonly env?: Readonly<Record<string, string>>;
  /** sshd's ForceCommand: runs instead of each session's command (which it finds in SSH_ORIGINAL_COMMAND). */
  readonly forceCommand?: string;
}

export interface Sshd {
  readonly port: number;
  readonly address: '127.0.0.1';
  /** The listening sshd's PID (its children serve the connections). */
  readonly pid: number;
  /** Private key whose public half is authorized for root. */
  readonly clientKeyPath: string;
  /** A known_hosts file holding the host key as `[127.0.0.1]:port`. */
  readonly knownHostsPath: string;
  /** The host public key line: `ssh-ed25519 AAAA…`. */
  readonly hostPublicKey: string;
  /** The temporary directory holding all of the above; removed by `stop()`. */
  readonly tmp: string;
  /** What sshd wrote to stderr so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** Generate an ed25519 key pair at `path` (and `path.pub`); returns the public key line. */
export async function keygen(path: string): Promise<string> {
  await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'provision-test', '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolve once the port answers with an SSH banner. */
function bannerSeen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')));
    sock.once('error', () => done(false));
  });
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  mkdirSync('/run/sshd', {recursive: true, mode: 0o755});
  const tmp = mkdtempSync(join(tmpdir(), 'provision-sshd-'));
  const hostKey = join(tmp, 'ssh_host_ed25519_key');
  const clientKeyPath = join(tmp, 'id_ed25519');
  const [hostPublicKey, clientPublicKey] = await Promise.all([keygen(hostKey), keygen(clientKeyPath)]);
  writeFileSync(join(tmp, 'authorized_keys'), `${clientPublicKey}\n`, {mode: 0o600});

  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const configPath = join(tmp, 'sshd_config');
    writeFileSync(
      configPath,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKey}`,
        `PidFile ${join(tmp, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(tmp, 'authorized_keys')}`,
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'AllowTcpForwarding yes',
        'PrintMotd no',
        'PrintLastLog no',
        'UseDNS no',
        `MaxStartups ${options.maxStartups ?? 100}`,
        `MaxSessions ${options.maxSessions ?? 10}`,
        'LogLevel ERROR',
        // Bash sources ~/.bashrc for commands run by sshd (only at SHLVL < 2): keep this machine's root
        // dotfiles (e.g. a slow `pyenv init` writing to stderr) out of the tests.
        // (One SetEnv line: sshd keeps the first.)
        ...((env) => (env.length ? [`SetEnv ${env.join(' ')}`] : []))([...(options.loginProfile ? [] : ['SHLVL=1']), ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`)]),
        'Subsystem sftp internal-sftp',
        ...(options.forceCommand ? [`ForceCommand ${options.forceCommand}`] : []),
        '',
      ].join('\n'),
    );
    const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', configPath], {stdio: ['ignore', 'ignore', 'pipe']});
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let exited = false;
    const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exit.then(() => {
      exited = true;
    });

    const deadline = Date.now() + 10_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      if (await bannerSeen(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      if (!exited) child.kill('SIGKILL');
      await exit;
      lastError = stderr.trim() || 'sshd did not answer within 10 s';
      continue; // Most likely the port was taken in between: try another one.
    }

    const knownHostsPath = join(tmp, 'known_hosts');
    writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostPublicKey}\n`, {mode: 0o600});
    let stopping: Promise<void> | undefined;
    return {
      port,
      address: '127.0.0.1',
      pid: child.pid ?? 0,
      clientKeyPath,
      knownHostsPath,
      hostPublicKey,
      tmp,
      log: () => stderr,
      stop() {
        stopping ??= (async () => {
          if (!exited && child.pid !== undefined) {
            process.kill(child.pid, 'SIGTERM');
            const timer = setTimeout(() => {
              if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
            }, 3000);
            await exit;
            clearTimeout(timer);
          }
          rmSync(tmp, {recursive: true, force: true});
        })();
        return stopping;
      },
    };
  }
  rmSync(tmp, {recursive: true, force: true});
  throw new Error(`could not start ${SSHD}: ${lastError}`);
}

/**
 * An inventory under `dir` for hosts behind this sshd: group `targets`, each host's files under
 * `dir/<host>` (var `root`), root login with the test key, and the run lock and audit log in `dir`
 * (tests run as root on the same machine at the same time). `hosts` maps a name to extra host vars
 * (e.g. another `ansible_port`); `allVars` overrides or adds `all` vars.
 */
export function writeLoopbackInventory(sshd: Sshd, dir: string, hosts: Record<string, Record<string, unknown>>, allVars: Record<string, unknown> = {}): string {
  const vars = {
    ansible_user: 'root',
    ansible_ssh_private_key_file: sshd.clientKeyPath,
    ansible_ssh_known_hosts_file: sshd.knownHostsPath,
    provision_lock_file: join(dir, 'provision.lock'),
    provision_audit_log: join(dir, 'audit.log'),
    ...allVars,
  };
  const lines = ['all:', '  vars:', ...Object.entries(vars).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`), '  children:', '    targets:', '      hosts:'];
  for (const [name, extra] of Object.entries(hosts)) {
    lines.push(`        ${name}: ${JSON.stringify({ansible_host: sshd.address, ansible_port: sshd.port, root: join(dir, name), ...extra})}`);
  }
  const path = join(dir, 'inventory.yml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/** SIGKILL every sshd process serving a connection to `sshd` (the listener's children): their connections drop. */
export function killSessions(sshd: Sshd): number {
  let killed = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === sshd.pid) {
        process.kill(Number(name), 'SIGKILL');
        killed++;
      }
    } catch {
      // gone already
    }
  }
  return killed;
}

/** A loopback port nothing listens on (taken, then freed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === 'object' && address ? address.port : 1;
}
