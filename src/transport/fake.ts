/**
 * A transport for tests: records every command, and answers either from a handler or by running the
 * command with the local `sh` (so file modules can be tested against a temp directory, fast).
 *
 * `start` always runs its command with the local `sh`, stdin open, also when a handler answers
 * `exec`: the engine's control session (run lock and audit log, a POSIX sh script using flock) then
 * really runs, against this machine. `put` and `get` act on this machine's files too, whatever the
 * handler. Each is recorded in `log` like an `exec`, with its `kind`.
 */
import {spawn} from 'node:child_process';
import {chmodSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs';
import {basename, dirname, join} from 'node:path';
import {StringDecoder} from 'node:string_decoder';
import type {ExecOptions, ExecResult, PutOptions, RunningCommand, Transport} from './types.ts';
import {FileTransferError, UnreachableError} from './types.ts';

/** One call the fake transport received. */
export interface Recorded {
  /** `exec` (the default, absent), a `start`ed command, or a file `put` or `get` (`command` is the path). */
  readonly kind?: 'start' | 'put' | 'get';
  readonly command: string;
  /** What the command read on stdin (for `put`: the content, as UTF-8). */
  readonly stdin?: string;
}

export type Handler = (command: string, stdin: string | undefined) => ExecResult | Promise<ExecResult>;

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
interface LocalRunning extends RunningCommand {
  lose(why: string): void;
}

/**
 * Start a command with the local shell, its stdin open until `end()` (as `Transport.start`). `done`
 * never rejects: a shell that cannot be spawned ends with code -1 and the reason on stderr.
 */
export function localStart(command: string, onStdout: (chunk: string) => void): RunningCommand {
  return startLocal(command, onStdout);
}

function startLocal(command: string, onStdout: (chunk: string) => void): LocalRunning {
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

export class FakeTransport implements Transport {
  readonly log: Recorded[] = [];
  closed = false;
  #down = false;
  readonly #running = new Set<LocalRunning>();

  constructor(readonly host: string, private readonly handler: Handler = (c, s) => localExec(c, {stdin: s})) {}

  /** The `exec` calls of `log` only (a probe batch, a step), without `start`, `put` and `get`. */
  get execs(): Recorded[] {
    return this.log.filter((r) => r.kind === undefined);
  }

  /** Set to make every later call fail as if the host went away; `start`ed commands are cut off (stdin at end of file, code -1). */
  get down(): boolean {
    return this.#down;
  }

  set down(value: boolean) {
    this.#down = value;
    if (value) this.#cutOff(this.#lost());
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.#reachable();
    const stdin = options.stdin === undefined ? undefined : options.stdin.toString();
    this.log.push({command, ...(stdin === undefined ? {} : {stdin})});
    return this.handler(command, stdin);
  }

  /** Runs `command` with the local `sh` (never through the handler); see the file's comment. */
  async start(command: string, onStdout: (chunk: string) => void): Promise<RunningCommand> {
    this.#reachable();
    this.log.push({kind: 'start', command});
    const running = startLocal(command, onStdout);
    this.#running.add(running);
    void running.done.then(() => this.#running.delete(running));
    return running;
  }

  /** Writes the local file `path` atomically (a temp file beside it, renamed), as the SSH transport does. */
  async put(path: string, content: Buffer | string, options: PutOptions = {}): Promise<void> {
    this.#reachable();
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    this.log.push({kind: 'put', command: path, stdin: data.toString('utf8')});
    const temp = join(dirname(path), `.${basename(path)}.provision.${process.pid}.${Math.random().toString(36).slice(2, 8)}`);
    try {
      writeFileSync(temp, data, {flag: 'wx', mode: options.mode ?? 0o666});
      if (options.mode !== undefined) chmodSync(temp, options.mode);
      renameSync(temp, path);
    } catch (err) {
      rmSync(temp, {force: true});
      throw new FileTransferError(this.host, path, `cannot write ${path} on ${this.host}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Reads the local file `path`. */
  async get(path: string): Promise<Buffer> {
    this.#reachable();
    this.log.push({kind: 'get', command: path});
    try {
      return readFileSync(path);
    } catch (err) {
      throw new FileTransferError(this.host, path, `cannot read ${path} on ${this.host}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Also cuts off the `start`ed commands still running (stdin at end of file, code -1), as a closed connection would. */
  async close(): Promise<void> {
    this.closed = true;
    this.#cutOff(`connection to ${this.host} was closed`);
  }

  #cutOff(why: string): void {
    for (const r of this.#running) r.lose(why);
    this.#running.clear();
  }

  #reachable(): void {
    if (this.#down) throw new UnreachableError(this.host, this.#lost());
  }

  #lost(): string {
    return `${this.host}: connection lost`;
  }
}
