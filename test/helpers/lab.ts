/** What the lab's end-to-end tests share: the lab's paths and inventory, the CLI, ssh to its hosts. */
import {execFile} from 'node:child_process';
import {Socket} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {labPaths, loadLabConfig, type LabHost} from '../../src/lab/config.ts';

export const paths = labPaths();
export const root = paths.root;
export const inventory = join(root, 'inventory/lab.yml');
export const cfg = loadLabConfig(inventory);

/** A host of the lab inventory, by name (a test's typo fails loudly). */
export function host(name: string): LabHost {
  const h = cfg.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no lab host ${name}`);
  return h;
}

export interface Out {code: number; stdout: string; stderr: string; ms: number}

/** A command in the project root to its end (never rejects): exit code, output, how long it took. Retry files go to the temp folder, not the project. */
export function run(file: string, args: readonly string[], timeoutMs = 1_200_000): Promise<Out> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(file, args, {cwd: root, timeout: timeoutMs, maxBuffer: 256 << 20, encoding: 'utf8', env: {...process.env, NO_COLOR: '1', PROVISION_RETRY_DIR: process.env.PROVISION_RETRY_DIR ?? tmpdir()}}, (err, stdout, stderr) => {
      const code = err ? (typeof (err as {code?: unknown}).code === 'number' ? (err as {code: number}).code : 1) : 0;
      resolve({code, stdout, stderr, ms: Date.now() - t0});
    });
  });
}

/** The real CLI: bin/provision.js. */
export const provision = (...args: string[]): Promise<Out> => run(process.execPath, [join(root, 'bin/provision.js'), ...args]);

/** The system ssh's arguments for `command` as root on `h`, with the lab's key and exact known_hosts. */
export const sshArgs = (h: LabHost, command: string): string[] => ['-i', paths.clientKey, '-o', `UserKnownHostsFile=${paths.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
  '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR', `root@${h.address}`, command];

export const ssh = (h: LabHost, command: string): Promise<Out> => run('ssh', sshArgs(h, command), 120_000);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type Recap = Record<string, {ok: number; changed: number; failed: number; skipped: number; unreachable: number}>;

/** The recap of a `--json` run: its last line. */
export function recapOf(out: string): {hosts: Recap; duration_ms: number} {
  const last = out.trim().split('\n').at(-1) ?? '{}';
  return JSON.parse(last) as {hosts: Recap; duration_ms: number};
}

export const isRoot = process.getuid?.() === 0 && process.platform === 'linux';

/** Can the controller open a TCP connection? false on timeout or refusal. */
export function tcpOpen(address: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, address, () => done(true));
  });
}
