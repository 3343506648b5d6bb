/**
 * The SSH transport: one connection per host (node-ssh opens it, ssh2 runs it), reused for every
 * command, `put` and `get`.
 *
 * - `resolveConnection` (config.ts) turns an inventory host and its variables (plus ~/.ssh/config)
 *   into a plain `ConnectionSpec`.
 * - `connectSsh` opens the connection (connect.ts: jump hosts, authentication, the host key checked
 *   against known_hosts by knownhosts.ts) and returns a `Transport`. Every failure to reach the host
 *   is an `UnreachableError` with one clear line; host key problems are its subclass `HostKeyError`.
 * - `SshTransport` runs every command through one long-lived shell on the host (mux.ts) when the
 *   host's login shell is slow (a heavy profile, paid once per host instead of once per command), or
 *   `provision_multiplex: true`. Otherwise (a quick login shell, no `flock` or GNU `dd` on the host,
 *   or `provision_multiplex: false`) each command gets a session channel of its own, at most sshd's
 *   MaxSessions at once.
 *
 * A leaf module: it imports only the transport's own files and src/shared.
 */
import {StringDecoder} from 'node:string_decoder';
import type {ClientChannel} from 'ssh2';
import {q} from '../shared/quote.ts';
import {uploadScript} from '../shared/upload.ts';
import type {ConnectionSpec} from './config.ts';
import {closeConnected, connectChain, errorText, type Connected} from './connect.ts';
import {driverCommand, Mux, MuxLost} from './mux.ts';
import {FileTransferError, UnreachableError, type ExecOptions, type ExecResult, type PutOptions, type RunningCommand, type Transport} from './types.ts';

export {resolveConnection, type ConnectionSpec, type ResolveOptions} from './config.ts';
export {isTransient} from './connect.ts';

/**
 * Connect to a host (through its jump hosts, if any) and return a transport that runs every command
 * over this one connection. Rejects with `UnreachableError` (or `HostKeyError`) and a one-line message.
 */
export async function connectSsh(spec: ConnectionSpec): Promise<Transport> {
  return new SshTransport(spec, await connectChain(spec));
}

const DEFAULT_MAX_SESSIONS = 10;
/**
 * `auto`: the command shell is kept when the login shell took at least this much CPU (1/100 s): a
 * profile that costs 30 ms or more, paid again by every channel. Below it a channel per command costs
 * the host less than the driver's own processes (bench/run.ts measures both).
 */
const SLOW_LOGIN_TICKS = 3;
const MAX_OPEN_RETRIES = 8;

/** The server refused to open a session channel (internal: retried by `#session`). */
class ChannelRefused extends Error {}

/** How a command's channel ended, its output as bytes. */
interface Outcome {
  /** The exit status; null when there was none (killed by a signal, or the connection dropped). */
  readonly code: number | null;
  /** The signal that killed the command, if one did. */
  readonly signal: string | undefined;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** A command's open channel, and the outcome that settles (never rejects) once it has ended. */
interface Session {
  readonly channel: ClientChannel;
  readonly outcome: Promise<Outcome>;
}

/** A command's result with its output as bytes (`get` needs them unchanged). */
interface RawResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

class SshTransport implements Transport {
  readonly host: string;
  readonly #conn: Connected;
  #maxSessions: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  /** The `finish` of every open channel: a dropped connection may never close a channel itself. */
  readonly #open = new Set<() => void>();
  /** Why the connection is gone (undefined while it is up). */
  #down: string | undefined;
  #closing: Promise<void> | undefined;
  /** Commands go through one shell on the host: always, never, or when its login shell is slow (`auto`). */
  #multiplex: 'auto' | boolean;
  /** That shell, once started (undefined until the first command, and again after it ended). */
  #mux: Promise<Mux | undefined> | undefined;

  constructor(spec: ConnectionSpec, conn: Connected) {
    this.host = spec.host;
    this.#conn = conn;
    this.#multiplex = spec.multiplex ?? 'auto';
    this.#maxSessions = Math.max(1, spec.maxSessions ?? DEFAULT_MAX_SESSIONS);
    const lost = () => {
      if (this.#down !== undefined) return;
      const why = conn.lastError ? `: ${conn.lastError}` : '';
      this.#down = `connection to ${spec.host} (${spec.address}:${spec.port}) lost${why}`;
      this.#wakeAll();
    };
    conn.client.on('end', lost);
    conn.client.on('close', () => {
      lost();
      for (const finish of [...this.#open]) finish();
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.#execRaw(command, options.stdin);
    return {code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8')};
  }

  async start(command: string, onStdout: (chunk: string) => void): Promise<RunningCommand> {
    const running = (await this.#shell())?.start(command, onStdout);
    if (running) {
      return {
        write: (data) => running.write(data),
        end: () => running.end(),
        done: running.done.then((o) => ({code: o.code, stdout: o.stdout.toString('utf8'), stderr: o.stderr.toString('utf8')})),
      };
    }
    const decoder = new StringDecoder('utf8');
    const {channel, outcome} = await this.#session(command, (chunk) => {
      const text = decoder.write(chunk);
      if (text !== '') onStdout(text);
    });
    let ended = false;
    const done = outcome.then((o): ExecResult => {
      ended = true;
      const lost = o.code === null && this.#down !== undefined ? `${this.#down}\n` : '';
      return {code: o.code ?? -1, stdout: o.stdout.toString('utf8'), stderr: lost + o.stderr.toString('utf8')};
    });
    return {
      write: (data) => {
        if (!ended) channel.write(data);
      },
      end: () => {
        if (!ended) channel.end();
      },
      done,
    };
  }

  /**
   * Over `exec`: `sh -c` writes stdin to a temp file beside `path` (mktemp, mode 0600), checks that
   * every byte arrived, sets the mode and renames it over `path`. A cut-short upload or a failed step
   * removes the temp file and leaves `path` as it was. Temp files of a writer killed outright are
   * removed by the next put of the same path (as `core/remote.ts` writeScript does).
   */
  async put(path: string, content: Buffer | string, options: PutOptions = {}): Promise<void> {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const r = await this.#execRaw(`sh -c ${q(uploadScript({dest: path, size: data.length, ...(options.mode === undefined ? {} : {mode: (options.mode & 0o7777).toString(8).padStart(4, '0')})}))}`, data);
    if (r.code !== 0) throw new FileTransferError(this.host, path, `cannot write ${path} on ${this.host}: ${failure(r)}`);
  }

  /** Over `exec`: `cat`, its stdout kept as bytes (never decoded), so binary content arrives intact. */
  async get(path: string): Promise<Buffer> {
    const r = await this.#execRaw(`cat -- ${q(path)}`, undefined);
    if (r.code !== 0) throw new FileTransferError(this.host, path, `cannot read ${path} on ${this.host}: ${failure(r)}`);
    return r.stdout;
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#down ??= `connection to ${this.host} was closed`;
      this.#wakeAll();
      this.#closing = closeConnected(this.#conn);
    }
    return this.#closing;
  }

  /** Run a command to its end with `stdin` (or none: end of file at once). Rejects only when the connection drops. */
  async #execRaw(command: string, stdin: string | Buffer | undefined): Promise<RawResult> {
    const mux = await this.#shell();
    if (mux) {
      try {
        return await mux.exec(command, stdin);
      } catch (e) {
        if (e instanceof MuxLost) throw new UnreachableError(this.host, this.#down ?? e.message);
        throw e;
      }
    }
    const {channel, outcome} = await this.#session(command);
    if (stdin === undefined) channel.end();
    else channel.end(stdin);
    const o = await outcome;
    if (o.code === null && o.signal === undefined && this.#down !== undefined) throw new UnreachableError(this.host, this.#down);
    return {code: o.code ?? -1, stdout: o.stdout, stderr: o.stderr};
  }

  /**
   * The host's command shell (mux.ts), started by the first command: one channel through the login
   * shell, kept for the connection's life. Undefined when multiplexing is off, or the host's shell
   * cannot run it (then every command gets a channel of its own, as before). If the shell ends while
   * the connection stays up, the commands it ran fail as unreachable and the next command starts
   * another.
   */
  #shell(): Promise<Mux | undefined> {
    if (!this.#multiplex) return Promise.resolve(undefined);
    if (this.#mux) return this.#mux;
    const started = (async (): Promise<Mux | undefined> => {
      const {command, nonce} = driverCommand();
      let mux: Mux | undefined;
      const early: [Buffer, boolean][] = [];
      const {channel, outcome} = await this.#session(command, (chunk) => (mux ? mux.feed(chunk) : early.push([chunk, false])), false, (chunk) => (mux ? mux.feedErr(chunk) : early.push([chunk, true])));
      mux = new Mux({write: (data) => channel.write(data), end: () => channel.end()}, nonce);
      for (const [chunk, err] of early.splice(0)) {
        if (err) mux.feedErr(chunk);
        else mux.feed(chunk);
      }
      void outcome.then((o) => {
        mux.lost(this.#down ?? `the command shell on ${this.host} ended (${o.signal ? `signal ${o.signal}` : `exit status ${o.code ?? 'unknown'}`})`);
        if (this.#mux === started) this.#mux = undefined;
      });
      const why = await mux.ready;
      if (why === undefined && (this.#multiplex === true || (mux.loginTicks ?? 0) >= SLOW_LOGIN_TICKS)) return mux;
      if (why !== undefined && this.#down !== undefined) throw new UnreachableError(this.host, this.#down);
      // NOMUX, the shell ended at once, or a login shell so quick that a channel per command costs
      // the host less than the driver does: a channel per command from now on.
      this.#multiplex = false;
      channel.end();
      return undefined;
    })();
    this.#mux = started;
    started.catch(() => {
      if (this.#mux === started) this.#mux = undefined;
    });
    return started;
  }

  /**
   * Open a session channel running `command`, in one of the connection's session slots (held until the
   * command ends). sshd refuses a session beyond its MaxSessions, and briefly also right after one
   * closed (it frees the slot a moment later): then the limit is lowered to what the server took, and
   * the open tried again, a few times, backing off.
   */
  async #session(command: string, onStdout?: (chunk: Buffer) => void, keep = true, onStderr?: (chunk: Buffer) => void): Promise<Session> {
    for (let attempt = 0; ; attempt++) {
      await this.#acquire();
      let session: Session;
      try {
        session = await this.#openChannel(command, onStdout, keep, onStderr);
      } catch (err) {
        this.#release();
        if (!(err instanceof ChannelRefused)) throw err;
        if (attempt >= MAX_OPEN_RETRIES || this.#down !== undefined) {
          throw new UnreachableError(this.host, this.#down ?? `cannot start a command on ${this.host}: ${err.message}`);
        }
        this.#maxSessions = Math.max(1, Math.min(this.#maxSessions, this.#running));
        await new Promise((r) => setTimeout(r, 5 * 2 ** attempt));
        continue;
      }
      void session.outcome.then(() => this.#release());
      return session;
    }
  }

  /**
   * Open one channel (no PTY: output stays clean, stdin binary-safe). Its listeners are attached in
   * ssh2's callback, before any later packet is handled, so no `exit` is missed. Rejects with
   * `ChannelRefused` when the server refused the channel, else `UnreachableError`.
   */
  #openChannel(command: string, onStdout: ((chunk: Buffer) => void) | undefined, keep: boolean, onStderr?: (chunk: Buffer) => void): Promise<Session> {
    return new Promise<Session>((resolveOpen, rejectOpen) => {
      if (this.#down !== undefined) {
        rejectOpen(new UnreachableError(this.host, this.#down));
        return;
      }
      const opened = (err: Error | undefined, channel: ClientChannel): void => {
        if (err) {
          if (this.#down !== undefined) rejectOpen(new UnreachableError(this.host, this.#down));
          // ssh2 sets `reason` on a refused channel open (SSH_MSG_CHANNEL_OPEN_FAILURE).
          else if ('reason' in err) rejectOpen(new ChannelRefused(err.message));
          else rejectOpen(new UnreachableError(this.host, `cannot start a command on ${this.host}: ${err.message}`));
          return;
        }
        resolveOpen({channel, outcome: this.#watch(channel, onStdout, keep, onStderr)});
      };
      try {
        this.#conn.client.exec(command, {}, opened);
      } catch (err) {
        rejectOpen(new UnreachableError(this.host, this.#down ?? `cannot start a command on ${this.host}: ${errorText(err)}`));
      }
    });
  }

  /** Collect a channel's output (unless `keep` is false) and exit status until it closes, or the connection drops. */
  #watch(channel: ClientChannel, onStdout: ((chunk: Buffer) => void) | undefined, keep: boolean, onStderr?: (chunk: Buffer) => void): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      channel.on('data', (chunk: Buffer) => {
        if (keep) stdout.push(chunk);
        try {
          onStdout?.(chunk);
        } catch {
          // A listener's mistake must not break the channel.
        }
      });
      channel.stderr.on('data', (chunk: Buffer) => {
        if (keep) stderr.push(chunk);
        try {
          onStderr?.(chunk);
        } catch {
          // As onStdout.
        }
      });
      channel.on('exit', (c: number | null, s?: string) => {
        code = typeof c === 'number' ? c : null;
        signal = s ?? undefined;
      });
      channel.on('error', () => {
        // Reported through 'close' (or the connection's).
      });
      const finish = (): void => {
        if (!this.#open.delete(finish)) return;
        resolve({code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr)});
      };
      this.#open.add(finish);
      channel.on('close', finish);
    });
  }

  async #acquire(): Promise<void> {
    while (this.#down === undefined && this.#running >= this.#maxSessions) {
      await new Promise<void>((wake) => this.#waiting.push(wake));
    }
    this.#running++;
  }

  #release(): void {
    this.#running--;
    this.#waiting.shift()?.();
  }

  #wakeAll(): void {
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

/** The last line of stderr, else the exit status. */
function failure(r: RawResult): string {
  const lines = r.stderr.toString('utf8').trim().split('\n');
  return lines.at(-1) || `exit status ${r.code}`;
}
