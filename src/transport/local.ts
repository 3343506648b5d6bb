/**
 * The controller itself as a host (`delegateTo: 'localhost'`): commands run with the local `sh`, files
 * are read and written on this machine, no SSH. Also what the fake transport (fake.ts) runs with.
 */
import {spawn} from 'node:child_process';
import {chmodSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {basename, dirname, join} from 'node:path';
import {StringDecoder} from 'node:string_decoder';
import type {ExecOptions, ExecResult, PutOptions, RunningCommand, Transport} from './types.ts';
import {FileTransferError} from './types.ts';

/** Run a command with the local shell. */
export function localExec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']});
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')}));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}

/** A command started with the local shell, stdin open; `lose()` acts out a dropped connection. */
export interface LocalRunning extends RunningCommand {
  lose(why: string): void;
}

/**
 * Start a command with the local shell, its stdin open until `end()` (as `Transport.start`). `done`
 * never rejects: a shell that cannot be spawned ends with code -1 and the reason on stderr.
 */
export function localStart(command: string, onStdout: (chunk: string) => void): RunningCommand {
  return startLocal(command, onStdout);
}

export function startLocal(command: string, onStdout: (chunk: string) => void): LocalRunning {
  const child = spawn('sh', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']});
  const decoder = new StringDecoder('utf8');
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let ended = false;
  let settle: (r: ExecResult) => void = () => undefined;
  const done = new Promise<ExecResult>((resolve) => {
    settle = (r) => {
      if (ended) return;
      ended = true;
      resolve(r);
    };
  });
  const result = (code: number, prefix = ''): ExecResult => ({
    code,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: prefix + Buffer.concat(err).toString('utf8'),
  });
  child.stdout.on('data', (d: Buffer) => {
    out.push(d);
    const text = decoder.write(d);
    try {
      if (text !== '') onStdout(text);
    } catch {
      // A listener's mistake must not break the command.
    }
  });
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.on('error', (e) => settle(result(-1, `${e.message}\n`)));
  child.on('close', (code) => settle(result(code ?? -1)));
  child.stdin.on('error', () => undefined);
  return {
    write: (data) => {
      if (!ended) child.stdin.write(data);
    },
    end: () => {
      if (!ended) child.stdin.end();
    },
    done,
    // As over SSH: the command's stdin reaches end of file and `done` settles at once with code -1;
    // the command itself winds down on its own.
    lose: (why) => {
      child.stdin.end();
      settle(result(-1, `${why}\n`));
    },
  };
}

/** Write the local file `path` atomically: a temp file beside it, renamed over it. */
export function localPut(host: string, path: string, data: Buffer, options: PutOptions = {}): void {
  const temp = join(dirname(path), `.${basename(path)}.provision.${process.pid}.${Math.random().toString(36).slice(2, 8)}`);
  try {
    writeFileSync(temp, data, {flag: 'wx', mode: options.mode ?? 0o666});
    if (options.mode !== undefined) chmodSync(temp, options.mode);
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, {force: true});
    throw new FileTransferError(host, path, `cannot write ${path} on ${host}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Read the local file `path`. */
export function localGet(host: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new FileTransferError(host, path, `cannot read ${path} on ${host}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** This machine as a transport. */
export class LocalTransport implements Transport {
  readonly #running = new Set<LocalRunning>();
  constructor(readonly host = 'localhost') {}

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return localExec(command, options);
  }

  async start(command: string, onStdout: (chunk: string) => void): Promise<RunningCommand> {
    const running = startLocal(command, onStdout);
    this.#running.add(running);
    void running.done.then(() => this.#running.delete(running));
    return running;
  }

  async put(path: string, content: Buffer | string, options: PutOptions = {}): Promise<void> {
    localPut(this.host, path, typeof content === 'string' ? Buffer.from(content, 'utf8') : content, options);
  }

  async get(path: string): Promise<Buffer> {
    return localGet(this.host, path);
  }

  /** Ends the started commands' stdin (as a closed connection would). */
  async close(): Promise<void> {
    for (const r of this.#running) r.end();
    this.#running.clear();
  }
}
