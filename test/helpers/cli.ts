/** Run `bin/provision.js` as a user would (a child process), capturing its exit code and output. */
import {execFile, execFileSync} from 'node:child_process';
import {join, resolve} from 'node:path';

export const projectRoot = resolve(import.meta.dirname, '..', '..');
export const bin = join(projectRoot, 'bin', 'provision.js');

export interface Cli {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall milliseconds. */
  readonly ms: number;
}

export function runCli(args: readonly string[], opts: {cwd?: string; env?: Record<string, string>} = {}): Promise<Cli> {
  const t0 = Date.now();
  return new Promise((res) => {
    execFile(process.execPath, [bin, ...args], {cwd: opts.cwd ?? projectRoot, env: {...process.env, NO_COLOR: '1', ...opts.env}, maxBuffer: 256 << 20}, (err, stdout, stderr) => {
      res({code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, ms: Date.now() - t0});
    });
  });
}

/** The `--json` stream: one event per line. */
export function jsonEvents(out: string): Array<Record<string, unknown>> {
  return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Whether `file args…` runs and exits 0 here (a prerequisite a test skips visibly without). */
export function commandWorks(file: string, args: readonly string[] = []): boolean {
  try {
    execFileSync(file, args, {stdio: 'ignore'});
    return true;
  } catch {
    return false;
  }
}
