/**
 * The transport interface: how the engine reaches a host. A leaf module: imports nothing of ours.
 * Commands arrive as complete shell strings, already quoted by `core/cmd.ts`; privilege escalation
 * (`sudo -n`) is added by the engine, not here.
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

export interface Transport {
  /** The inventory name of the host this transport reaches. */
  readonly host: string;
  /** Run one shell command (via the remote user's shell) and collect its output. Never rejects for a non-zero exit. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Close the connection. Idempotent. */
  close(): Promise<void>;
}

/** The host could not be reached or the connection dropped: the host is reported `unreachable` (exit 4). */
export class UnreachableError extends Error {
  readonly host: string;
  constructor(host: string, message: string) {
    super(message);
    this.name = 'UnreachableError';
    this.host = host;
  }
}

/** The host's key is unknown (and new keys were not accepted) or has changed. Also `unreachable`. */
export class HostKeyError extends UnreachableError {
  constructor(host: string, message: string) {
    super(host, message);
    this.name = 'HostKeyError';
  }
}
