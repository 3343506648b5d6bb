/**
 * Running local commands for the lab: argv arrays only (never a shell string), with a clear error
 * that names the command and its stderr when it fails.
 */
import {execFile, spawn} from 'node:child_process';
import {openSync, closeSync} from 'node:fs';

/** What a finished command printed and how it ended. */
export interface CmdResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface RunOptions {
  /** Environment added to the current one. */
  readonly env?: Readonly<Record<string, string>>;
  /** Text written to the command's stdin. */
  readonly input?: string;
  /** Do not throw on a non-zero exit: return the code. */
  readonly allowFail?: boolean;
  /** Kill the command after this many milliseconds. */
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/** A local command failed. Carries the argv and what it printed, for one clear line. */
export class CmdError extends Error {
  constructor(readonly argv: readonly string[], readonly result: CmdResult) {
    const err = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' / ');
    super(`${argv.join(' ')} exited ${result.code}${err ? `: ${err}` : ''}`);
    this.name = 'CmdError';
  }
}

/** Run `argv` to completion and collect its output. Throws `CmdError` on failure unless `allowFail`. */
export function runCmd(argv: readonly string[], opts: RunOptions = {}): Promise<CmdResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runCmd: empty argv');
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        env: opts.env ? {...process.env, ...opts.env} : process.env,
        maxBuffer: 64 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 0,
        cwd: opts.cwd,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        let code = 0;
        if (error) {
          const e = error as NodeJS.ErrnoException & {code?: unknown; killed?: boolean};
          if (e.code === 'ENOENT') {
            reject(new CmdError(argv, {stdout, stderr: `${file}: command not found`, code: 127}));
            return;
          }
          code = typeof e.code === 'number' ? e.code : e.killed ? 124 : 1;
        }
        const result = {stdout, stderr, code};
        if (code !== 0 && !opts.allowFail) reject(new CmdError(argv, result));
        else resolve(result);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/**
 * Start `argv` as a daemon that outlives us: its own session, stdin from /dev/null, stdout and
 * stderr appended to `logFile`. Returns its PID (recorded by the caller, the only PIDs the lab kills).
 */
export function spawnDetached(argv: readonly string[], logFile: string, env?: Readonly<Record<string, string>>): number {
  const [file, ...args] = argv;
  if (!file) throw new Error('spawnDetached: empty argv');
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(file, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: env ? {...process.env, ...env} : process.env,
    });
    if (child.pid === undefined) throw new Error(`could not start ${file}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Run a command with the terminal attached (for `lab shell`); resolves with its exit code. */
export function runInteractive(argv: readonly string[]): Promise<number> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runInteractive: empty argv');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {stdio: 'inherit'});
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every `intervalMs` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(intervalMs);
  }
}
