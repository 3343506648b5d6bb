/**
 * `provision lab …`: the local container lab (real Debian hosts booted with systemd in
 * systemd-nspawn). The logic lives in `src/lab/`; this file is argv and wiring only.
 */
import type {Command} from 'commander';
import {UserError} from '../core/errors.ts';
import {CmdError} from '../lab/run.ts';

interface InvFlag {
  inventory?: string;
}

/** The lab's code (listr2 and all), loaded only by `provision lab`: every other command starts faster. */
type LabApi = typeof import('../lab/index.ts');

/** A failing external command in the lab is the machine's state, not a bug: one line, exit 1. */
async function lab<T>(fn: (api: LabApi) => Promise<T>): Promise<T> {
  try {
    return await fn(await import('../lab/index.ts'));
  } catch (e) {
    if (e instanceof CmdError) throw new UserError(`lab: ${e.message}`);
    throw e;
  }
}

const seconds = (t0: number): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

export function registerLab(program: Command, defaultInventory: () => string): void {
  const labCmd = program
    .command('lab')
    .description('a local lab of real Debian 12 hosts (systemd in systemd-nspawn) for the inventory; root, Linux');
  const inv = (f: InvFlag): string => f.inventory ?? defaultInventory();

  labCmd
    .command('up')
    .description('boot every host of the inventory (idempotent: running hosts are kept); builds the base image once')
    .option('-i, --inventory <file>', 'lab inventory (default: inventory/lab.yml)')
    .option('--install-deps', 'install missing prerequisites with apt-get')
    .action(async (f: InvFlag & {installDeps?: boolean}) => {
      const t0 = Date.now();
      await lab((api) => api.labUp({inventory: inv(f), installDeps: f.installDeps}));
      process.stderr.write(`lab up in ${seconds(t0)}\n`);
    });

  labCmd
    .command('down')
    .description('stop and remove every host, the bridge, mounts and the processes the lab started')
    .option('-i, --inventory <file>', 'lab inventory (default: inventory/lab.yml)')
    .option('--purge', 'also delete the cached base image, the apt cache and the lab keys')
    .action(async (f: InvFlag & {purge?: boolean}) => {
      const t0 = Date.now();
      await lab((api) => api.labDown({inventory: inv(f), purge: f.purge}));
      process.stderr.write(`lab down in ${seconds(t0)}\n`);
    });

  labCmd
    .command('status')
    .description('hosts, addresses, state, memory and disk; the bridge and the lab services')
    .option('-i, --inventory <file>', 'lab inventory (default: inventory/lab.yml)')
    .option('--json', 'one JSON object on stdout')
    .action(async (f: InvFlag & {json?: boolean}) => {
      const s = await lab((api) => api.labStatus({inventory: inv(f)}));
      process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : `${(await import('../lab/index.ts')).formatStatus(s)}\n`);
    });

  labCmd
    .command('stop')
    .description('power a host off (cleanly; --hard: a power cut); its disk is kept')
    .argument('<host>', 'lab host name')
    .option('-i, --inventory <file>', 'lab inventory (default: inventory/lab.yml)')
    .option('--hard', 'kill the host\'s PID 1 instead of a clean poweroff')
    .action(async (host: string, f: InvFlag & {hard?: boolean}) => {
      const t0 = Date.now();
      const r = await lab((api) => api.labStop({inventory: inv(f), host, hard: f.hard}));
      process.stderr.write(`${host}: ${r} in ${seconds(t0)}\n`);
    });

  labCmd
    .command('start')
    .description('boot a stopped host and wait until it answers SSH')
    .argument('<host>', 'lab host name')
    .option('-i, --inventory <file>', 'lab inventory (default: inventory/lab.yml)')
    .action(async (host: string, f: InvFlag) => {
      const t0 = Date.now();
      const r = await lab((api) => api.labStart({inventory: inv(f), host}));
      process.stderr.write(`${host}: ${r} in ${seconds(t0)}\n`);
    });

  labCmd
    .command('shell')
    .description('a root shell in a host over SSH (or run a command: provision lab shell web1 -- systemctl is-system-running)')
    .argument('<host>', 'lab host name')
    .argument('[command...]', 'command to run instead of a shell')
    .option('-i, --inventory <file>', 'lab inventory (default: inventory/lab.yml)')
    .option('-u, --user <user>', 'log in as this user', 'root')
    .action(async (host: string, command: string[], f: InvFlag & {user: string}) => {
      process.exitCode = await lab((api) => api.labShell({inventory: inv(f), host, command, user: f.user}));
    });
}
