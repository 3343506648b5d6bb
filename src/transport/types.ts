/**
 * The transport interface: how the engine reaches a host. A leaf module: imports nothing of ours.
 * Commands arrive as complete shell strings, already quoted by `core/cmd.ts`; privilege escalation
 * (sudo or su, a password framed on stdin: `core/become.ts`) is added by the engine, not here.
 *
 * Five members, as pyinfra's connectors (connect, disconnect, run, put, get): connecting is the
 * factory's job (`connectSsh`, `new FakeTransport`), the rest is here: `exec` and `start` (run),
 * `put`, `get` and `close` (disconnect).
 */

export interface ExecResult {
  /** Exit status of the remote command; -1 if it was killed by a signal. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Bytes written to the command's standard input, then closed. */
  readonly stdin?: string | Buffer;
}

export interface PutOptions {
  /** Permission bits of the file written (`0o644`); default: a new file's, 0666 less the remote umask. */
  readonly mode?: number;
}

/** A command left running with its stdin open (`Transport.start`): a control channel to the host. */
export interface RunningCommand {
  /** Send bytes to the command's stdin. Ignored once the command has ended. */
  write(data: string): void;
  /** Close the command's stdin: it sees end of file. */
  end(): void;
  /** Settles when the command exits or the connection drops (then `code` is -1); never rejects. */
  readonly done: Promise<ExecResult>;
}

export interface Transport {
  /** The inventory name of the host this transport reaches. */
  readonly host: string;
  /** Run one shell command (via the remote user's shell) and collect its output. Never rejects for a non-zero exit. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /**
   * Start a long-lived command whose stdin stays open until `end()`; `onStdout` sees its output as it
   * arrives. If the connection drops (or the controller dies), the command's stdin reaches end of
   * file. The engine's control session (run lock, audit log) is such a command.
   */
  start(command: string, onStdout: (chunk: string) => void): Promise<RunningCommand>;
  /**
   * Write `content` to the file `path` on the host, atomically: the file holds either its old content
   * or all of the new, never a part (written beside it, then renamed over it). As the login user;
   * rejects with `FileTransferError` when the file cannot be written.
   */
  put(path: string, content: Buffer | string, options?: PutOptions): Promise<void>;
  /** The bytes of the file `path` on the host, unchanged. Rejects with `FileTransferError` when it cannot be read. */
  get(path: string): Promise<Buffer>;
  /** Close the connection. Idempotent. */
  close(): Promise<void>;
}

/** The host could not be reached or the connection dropped: the host is reported `unreachable` (exit 4). */
export class UnreachableError extends Error {
  readonly host: string;
  /** A failure that may go away by itself (refused, timed out, no route, reset): connecting again may help. */
  readonly transient: boolean;
  constructor(host: string, message: string, options: {transient?: boolean} = {}) {
    super(message);
    this.name = 'UnreachableError';
    this.host = host;
    this.transient = options.transient ?? false;
  }
}

/** The host's key is unknown (and new keys were not accepted) or has changed. Also `unreachable`. */
export class HostKeyError extends UnreachableError {
  constructor(host: string, message: string) {
    super(host, message);
    this.name = 'HostKeyError';
  }
}

/** `put` or `get` failed on a reachable host (no such file, permission denied, disk full, cut short). */
export class FileTransferError extends Error {
  readonly host: string;
  readonly path: string;
  constructor(host: string, path: string, message: string) {
    super(message);
    this.name = 'FileTransferError';
    this.host = host;
    this.path = path;
  }
}
