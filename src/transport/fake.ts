/**
 * A transport for tests: records every command, and answers either from a handler or by running the
 * command with the local `sh` (so file modules can be tested against a temp directory, fast).
 */
import {spawn} from 'node:child_process';
import type {ExecOptions, ExecResult, Transport} from './types.ts';
import {UnreachableError} from './types.ts';

export interface Recorded {
  readonly command: string;
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

export class FakeTransport implements Transport {
  readonly log: Recorded[] = [];
  closed = false;
  /** Set to make every later exec fail as if the host went away. */
  down = false;
  constructor(readonly host: string, private readonly handler: Handler = (c, s) => localExec(c, {stdin: s})) {}

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (this.down) throw new UnreachableError(this.host, `${this.host}: connection lost`);
    const stdin = options.stdin === undefined ? undefined : options.stdin.toString();
    this.log.push({command, ...(stdin === undefined ? {} : {stdin})});
    return this.handler(command, stdin);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
