/**
 * A transport for tests: records every command, and answers either from a handler or by running the
 * command with the local `sh` (so file modules can be tested against a temp directory, fast).
 *
 * `start` always runs its command with the local `sh`, stdin open, also when a handler answers
 * `exec`: the engine's control session (run lock and audit log, a POSIX sh script using flock) then
 * really runs, against this machine. `put` and `get` act on this machine's files too, whatever the
 * handler. Each is recorded in `log` like an `exec`, with its `kind`.
 */
import type {ExecOptions, ExecResult, PutOptions, RunningCommand, Transport} from './types.ts';
import {UnreachableError} from './types.ts';
import {localExec, localGet, localPut, startLocal, type LocalRunning} from './local.ts';

export {localExec, localStart} from './local.ts';

/** One call the fake transport received. */
export interface Recorded {
  /** `exec` (the default, absent), a `start`ed command, or a file `put` or `get` (`command` is the path). */
  readonly kind?: 'start' | 'put' | 'get';
  readonly command: string;
  /** What the command read on stdin (for `put`: the content, as UTF-8). */
  readonly stdin?: string;
}

export type Handler = (command: string, stdin: string | undefined) => ExecResult | Promise<ExecResult>;

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
    localPut(this.host, path, data, options);
  }

  /** Reads the local file `path`. */
  async get(path: string): Promise<Buffer> {
    this.#reachable();
    this.log.push({kind: 'get', command: path});
    return localGet(this.host, path);
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
