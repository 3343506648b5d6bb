/**
 * One shell per host: every command of a connection runs through one long-lived POSIX `sh` on the
 * host (the driver below), fed framed requests on its stdin, as pyinfra and mitogen keep one remote
 * process. sshd starts the login shell once (a heavy `.bashrc`, a motd script or a corporate proxy
 * profile is paid once per host, not once per command), and the host's session limit (MaxSessions) no
 * longer caps how many commands run at once.
 *
 * The protocol, one header line then exact byte counts (lengths in bytes, ids chosen here):
 *
 *   to the host    X id cmdlen stdinlen n|t|f   run cmd; stdin none (n), text (t: held in memory,
 *                                               never on disk: a become password), bytes (f: a file
 *                                               in the driver's private folder, for NUL bytes or
 *                                               large input)
 *                  S id cmdlen fd               start cmd, its stdin a FIFO the driver holds on fd
 *                  W id len fd                  bytes for a started command's stdin
 *                  E id fd                      close it: the command sees end of file
 *   from the host  READY nonce ticks | NOMUX nonce why   (ticks: CPU the login shell took, 1/100 s)
 *                  R id code outlen errlen [n]  a command ended: its stdout and stderr follow
 *                                               (ids are the controller's, reused once ended);
 *                                               a started one's after its n O frames
 *   from its stderr O id len                     a line of a started command's stdout (one write
 *                                               each: no lock, never mixed with R frames)
 *
 * Each command runs as `sh -c` in the background of the driver, its output in files of the driver's
 * folder (mode 0700) named by the command's id (ids are reused, the files overwritten: no `rm` per
 * command), written back under `flock` so frames never interleave. When the connection
 * drops, the driver reads end of file, exits and closes every FIFO: started commands (the run lock's
 * control session) see end of file as they would on a channel of their own.
 *
 * The driver needs GNU `dd iflag=fullblock` (exact reads from a pipe) and `stat --printf`, `flock`,
 * `mkfifo` and `mktemp -d`; without them it says NOMUX and the transport runs a channel per command
 * as before. Imports only src/shared.
 */
import {randomBytes} from 'node:crypto';
import {StringDecoder} from 'node:string_decoder';
import {q} from '../shared/quote.ts';

/** The driver: `sh -c DRIVER provision-mux NONCE`. Kept POSIX (dash, bash). */
export const DRIVER = String.raw`n=$1
d=$(mktemp -d "${'$'}{TMPDIR:-/tmp}/provision-mux.XXXXXXXX" 2>/dev/null) || { echo "NOMUX $n cannot create a folder in ${'$'}{TMPDIR:-/tmp}"; exit 0; }
trap 'rm -rf "$d"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
for c in flock mkfifo stat dd; do
  command -v "$c" >/dev/null 2>&1 || { echo "NOMUX $n $c is not installed"; exit 0; }
done
# GNU dd and stat (iflag=fullblock, --printf); BusyBox's and other multi-call tools are links.
for c in dd stat; do
  [ ! -L "$(command -v "$c")" ] || { echo "NOMUX $n $c is not GNU coreutils'"; exit 0; }
done
take() {
  [ "$1" -lt 65536 ] || dd bs=65536 count=$(($1 / 65536)) iflag=fullblock 2>/dev/null
  [ $(($1 % 65536)) -eq 0 ] || dd bs=$(($1 % 65536)) count=1 iflag=fullblock 2>/dev/null
}
emit() {
  { flock 9
    z=$(stat --printf '%s ' "$d/o.$1" "$d/e.$1") || exit
    printf 'R %s %s %s%s\n' "$1" "$2" "$z" "$3"
    [ "$z" = '0 0 ' ] || cat "$d/o.$1" "$d/e.$1"
  } 9>>"$d/l" 2>/dev/null
}
lines() {
  LC_ALL=C
  l=
  k=0
  while IFS= read -r l; do
    printf 'O %s %s\n%s\n' "$1" $((${'$'}{#l} + 1)) "$l" >&9
    k=$((k + 1))
  done
  [ -z "$l" ] || { printf 'O %s %s\n%s' "$1" ${'$'}{#l} "$l" >&9; k=$((k + 1)); }
  echo "$k" >"$d/n.$1"
}
# The CPU the login shell and its profile took (utime, stime and its children's, in ticks): this
# process was the login shell before it became the driver.
t=
read -r t </proc/$$/stat 2>/dev/null && set -- ${'$'}{t##*) } && t=$((${'$'}{12} + ${'$'}{13} + ${'$'}{14} + ${'$'}{15}))
echo "READY $n $t"
echo "READY $n" >&2
# The channel's stderr is the started commands' stdout (O frames, one write each, no lock): fd 9.
exec 9>&2 2>/dev/null
while read -r k i a b m; do
  case $k in
  X)
    c=$(take "$a"; echo .)
    c=${'$'}{c%.}
    case $m in
    t)
      s=$(take "$b"; echo .)
      s=${'$'}{s%.}
      (exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; printf %s "$s" | sh -c "$c" >"$d/o.$i" 2>"$d/e.$i"; emit "$i" $?) &
      s=;;
    f)
      take "$b" >"$d/i.$i"
      (exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; sh -c "$c" <"$d/i.$i" >"$d/o.$i" 2>"$d/e.$i"; r=$?; : >"$d/i.$i"; emit "$i" $r) &;;
    *)
      (exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; sh -c "$c" </dev/null >"$d/o.$i" 2>"$d/e.$i"; emit "$i" $?) &;;
    esac;;
  S)
    c=$(take "$a"; echo .)
    c=${'$'}{c%.}
    [ -p "$d/p.$i" ] || mkfifo "$d/p.$i"
    eval "exec $b<>\"\$d/p.\$i\""
    (
      exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&-
      { sh -c "$c" <"$d/p.$i" 2>"$d/e.$i" 9>&-; echo $? >"$d/c.$i"; } | lines "$i"
      {
        : >"$d/o.$i"
        r=-1
        k=0
        read -r r <"$d/c.$i"
        read -r k <"$d/n.$i"
        emit "$i" "$r" "$k"
      } 2>/dev/null
    ) &;;
  W) eval "take \"\$a\" >&$b";;
  E) eval "exec $a>&-";;
  esac
  jobs >/dev/null
done
`;


/** Where the mux writes: the driver's stdin (the SSH channel, or a local `sh` in tests). */
export interface MuxSink {
  write(data: Buffer): void;
  end(): void;
}

/** A command's outcome as bytes. */
export interface MuxResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** A command started through the mux: stdin open until `end()`. */
export interface MuxRunning {
  write(data: string): void;
  end(): void;
  /** Settles when the command exits, or the driver is gone (`lost` set, code -1); never rejects. */
  readonly done: Promise<MuxResult & {readonly lost?: string}>;
}

/** The driver is gone (connection dropped, or the shell ended): the command's outcome is unknown. */
export class MuxLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MuxLost';
  }
}

/** Stdin up to this size without NUL bytes stays in the driver's memory; larger goes through a file. */
const TEXT_MAX = 1 << 20;
/** The file descriptors the driver holds started commands' FIFOs on (dash takes single digits). */
const FDS = [3, 4, 5, 6, 7, 8] as const;

interface Pending {
  resolve(r: MuxResult): void;
  reject(e: Error): void;
}
interface Started {
  readonly fd: number;
  onLine(chunk: Buffer): void;
  /** O frames seen: the R frame (on the other stream, which may come first) says how many to wait for. */
  frames: number;
  /** The R frame's outcome, held until the O frames it counts have come. */
  end?: {readonly frames: number; readonly code: number; readonly stderr: Buffer};
  readonly out: Buffer[];
  stdinOpen: boolean;
  settle(r: MuxResult & {lost?: string}): void;
}

/** The command line that starts the driver through the login shell, and its nonce. */
export function driverCommand(): {readonly command: string; readonly nonce: string} {
  const nonce = randomBytes(8).toString('hex');
  return {command: `exec sh -c ${q(DRIVER)} provision-mux ${nonce}`, nonce};
}

/**
 * One of the driver's two output streams: header lines, each followed by the number of bytes it
 * announces. Before the driver's `READY nonce` line, whatever the login shell printed is skipped.
 */
class FrameReader {
  ready = false;
  #head: Buffer = Buffer.alloc(0);
  #body: {readonly need: number; got: number; readonly parts: Buffer[]; readonly done: (body: Buffer) => void} | undefined;

  constructor(
    readonly nonce: string,
    /** A header line after READY: returns how many bytes follow and what to do with them, or a reason to give up. */
    private readonly header: (fields: readonly string[]) => {readonly need: number; readonly done: (body: Buffer) => void} | string,
    /** A line before READY (NOMUX is said there). */
    private readonly early: (line: string) => void,
    private readonly fail: (why: string) => void,
  ) {}

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const b = this.#body;
      if (b) {
        const n = Math.min(b.need - b.got, chunk.length - at);
        b.parts.push(chunk.subarray(at, at + n));
        b.got += n;
        at += n;
        if (b.got === b.need) {
          this.#body = undefined;
          b.done(Buffer.concat(b.parts));
        }
        continue;
      }
      const nl = chunk.indexOf(10, at);
      if (nl < 0) {
        this.#head = Buffer.concat([this.#head, chunk.subarray(at)]);
        if (this.ready && this.#head.length > 4096) this.fail('the host\'s command shell sent a line it should not have');
        return;
      }
      const line = Buffer.concat([this.#head, chunk.subarray(at, nl)]).toString('latin1');
      this.#head = Buffer.alloc(0);
      at = nl + 1;
      if (!this.ready) {
        // Anything the login shell printed before the driver started (a chatty .bashrc) is skipped.
        const word = `READY ${this.nonce}`;
        const at = line.lastIndexOf(word);
        if (at >= 0 && /^( \d*)?$/.test(line.slice(at + word.length))) {
          this.ready = true;
          this.early(line.slice(at));
        } else {
          this.early(line);
        }
        continue;
      }
      const next = this.header(line.trimEnd().split(' '));
      if (typeof next === 'string') {
        this.fail(next);
        return;
      }
      if (!Number.isInteger(next.need) || next.need < 0) {
        this.fail('the host\'s command shell sent a bad frame length');
        return;
      }
      if (next.need === 0) next.done(Buffer.alloc(0));
      else this.#body = {need: next.need, got: 0, parts: [], done: next.done};
    }
  }
}

/**
 * The controller's end of one driver: frames requests, parses its output. The owner feeds it the
 * driver's stdout (`feed`) and says when it ended (`lost`).
 */
export class Mux {
  /** Undefined once the driver said READY; the reason when it said NOMUX or ended first. */
  readonly ready: Promise<string | undefined>;
  #readyDone: (why: string | undefined) => void = () => undefined;
  readonly #sink: MuxSink;
  /** Ids are reused once their command ended (the driver's files are named by id: no `rm` per command). */
  #nextId = 1;
  readonly #freeIds: number[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #started = new Map<number, Started>();
  readonly #freeFds: number[] = [...FDS];
  /** The driver's stdout: R frames. */
  readonly #out: FrameReader;
  /** The driver's stderr: O frames. */
  readonly #err: FrameReader;
  #lost: string | undefined;

  constructor(sink: MuxSink, nonce: string) {
    this.#sink = sink;
    this.ready = new Promise((resolve) => {
      this.#readyDone = resolve;
    });
    const fail = (why: string): void => this.lost(why);
    this.#out = new FrameReader(nonce, (f) => {
      if (f[0] !== 'R' || (f.length !== 5 && f.length !== 6)) return `the host's command shell sent an unexpected line: ${JSON.stringify(f.join(' ').slice(0, 80))}`;
      const [id, code, outLen, errLen, frames = 0] = f.slice(1).map(Number) as [number, number, number, number, number?];
      return {need: outLen + errLen, done: (body) => this.#ended(id, Number.isInteger(code) ? code : -1, body.subarray(0, outLen), body.subarray(outLen), frames)};
    }, (line) => {
      const ready = /^READY \S+ (\d+)$/.exec(line);
      if (ready) this.loginTicks = Number(ready[1]);
      const at = line.indexOf(`NOMUX ${nonce} `);
      if (at >= 0) this.lost(line.slice(at + 7 + nonce.length));
    }, fail);
    this.#err = new FrameReader(nonce, (f) => {
      if (f[0] !== 'O' || f.length !== 3) return `the host's command shell sent an unexpected line: ${JSON.stringify(f.join(' ').slice(0, 80))}`;
      const id = Number(f[1]);
      return {need: Number(f[2]), done: (body) => this.#started.get(id)?.onLine(body)};
    }, () => undefined, fail);
  }

  /** CPU ticks (1/100 s) the host's login shell took before the driver started; undefined where /proc could not tell. */
  loginTicks: number | undefined;

  /** Run `command` through `sh -c` on the host; rejects with `MuxLost` only when the driver is gone. */
  exec(command: string, stdin?: string | Buffer): Promise<MuxResult> {
    if (this.#lost !== undefined) return Promise.reject(new MuxLost(this.#lost));
    const id = this.#id();
    const cmd = Buffer.from(command === '' ? ':' : command, 'utf8');
    const data = stdin === undefined ? undefined : typeof stdin === 'string' ? Buffer.from(stdin, 'utf8') : stdin;
    const mode = !data || data.length === 0 ? 'n' : data.length <= TEXT_MAX && !data.includes(0) ? 't' : 'f';
    const result = new Promise<MuxResult>((resolve, reject) => this.#pending.set(id, {resolve, reject}));
    const parts: Buffer[] = [Buffer.from(`X ${id} ${cmd.length} ${mode === 'n' ? 0 : data!.length} ${mode}\n`), cmd];
    if (mode !== 'n') parts.push(data!);
    this.#sink.write(Buffer.concat(parts));
    return result;
  }

  /**
   * Start `command` with its stdin open; `onStdout` sees its output a line at a time. Undefined when
   * the driver already holds as many started commands as it has descriptors for (the caller opens a
   * channel of its own instead).
   */
  start(command: string, onStdout: (chunk: string) => void): MuxRunning | undefined {
    if (this.#lost !== undefined) {
      const lost = this.#lost;
      return {write: () => undefined, end: () => undefined, done: Promise.resolve({code: -1, stdout: Buffer.alloc(0), stderr: Buffer.from(`${lost}\n`), lost})};
    }
    const fd = this.#freeFds.shift();
    if (fd === undefined) return undefined;
    const id = this.#id();
    const decoder = new StringDecoder('utf8');
    let settle: Started['settle'] = () => undefined;
    const done = new Promise<MuxResult & {lost?: string}>((resolve) => (settle = resolve));
    const s: Started = {
      fd, out: [], stdinOpen: true, settle, frames: 0,
      onLine: (chunk) => {
        s.out.push(chunk);
        s.frames++;
        const text = decoder.write(chunk);
        try {
          if (text !== '') onStdout(text);
        } catch {
          // A listener's mistake must not break the mux.
        }
        if (s.end && s.frames >= s.end.frames) this.#settle(id, s);
      },
    };
    this.#started.set(id, s);
    const cmd = Buffer.from(command === '' ? ':' : command, 'utf8');
    this.#sink.write(Buffer.concat([Buffer.from(`S ${id} ${cmd.length} ${fd}\n`), cmd]));
    return {
      write: (data) => {
        if (!s.stdinOpen || this.#lost !== undefined || data === '') return;
        const bytes = Buffer.from(data, 'utf8');
        this.#sink.write(Buffer.concat([Buffer.from(`W ${id} ${bytes.length} ${fd}\n`), bytes]));
      },
      end: () => this.#closeStdin(id, s),
      done,
    };
  }

  /** The driver's stdout (the channel's). */
  feed(chunk: Buffer): void {
    if (this.#lost !== undefined) return;
    this.#out.feed(chunk);
    if (this.#out.ready && this.#err.ready) this.#readyDone(undefined);
  }

  /** The driver's stderr (the channel's). */
  feedErr(chunk: Buffer): void {
    if (this.#lost !== undefined) return;
    this.#err.feed(chunk);
    if (this.#out.ready && this.#err.ready) this.#readyDone(undefined);
  }

  /** The driver is gone: pending commands reject, started ones settle with code -1. Idempotent. */
  lost(why: string): void {
    if (this.#lost !== undefined) return;
    this.#lost = why;
    this.#readyDone(why);
    for (const p of this.#pending.values()) p.reject(new MuxLost(why));
    this.#pending.clear();
    for (const s of this.#started.values()) s.settle({code: -1, stdout: Buffer.concat(s.out), stderr: Buffer.from(`${why}\n`), lost: why});
    this.#started.clear();
  }

  /** No more requests: the driver reads end of file and exits (started commands see end of file). */
  close(): void {
    this.#sink.end();
  }

  #id(): number {
    return this.#freeIds.pop() ?? this.#nextId++;
  }

  #closeStdin(id: number, s: Started): void {
    if (!s.stdinOpen) return;
    s.stdinOpen = false;
    if (this.#lost === undefined) this.#sink.write(Buffer.from(`E ${id} ${s.fd}\n`));
    this.#freeFds.push(s.fd);
  }

  #ended(id: number, code: number, stdout: Buffer, stderr: Buffer, frames: number): void {
    const p = this.#pending.get(id);
    if (p) {
      this.#pending.delete(id);
      this.#freeIds.push(id);
      p.resolve({code, stdout, stderr});
      return;
    }
    const s = this.#started.get(id);
    if (!s) return;
    s.end = {frames, code, stderr};
    if (s.frames >= frames) this.#settle(id, s);
  }

  #settle(id: number, s: Started): void {
    if (!s.end) return;
    this.#started.delete(id);
    this.#closeStdin(id, s);
    this.#freeIds.push(id);
    s.settle({code: s.end.code, stdout: Buffer.concat(s.out), stderr: s.end.stderr});
  }
}
