/**
 * `authorizedKey`: an SSH public key in a user's `~/.ssh/authorized_keys` (or present in none but these:
 * `exclusive`). The probe reads the user's home and ids (`getent passwd`), the `.ssh` folder's and the
 * file's attributes and the file's content; the plan creates `.ssh` (0700) and writes the file (0600),
 * both owned by the user, atomically. Keys are compared by type and blob: a key already there with
 * other options or another comment is rewritten as given; other lines are kept.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Step, Task, TaskOptions} from '../core/types.ts';
import {formatMode} from '../facts/file.ts';

export interface AuthorizedKeyArgs {
  /** The account whose file is edited; its home, uid and gid come from `getent passwd`. */
  readonly user: string;
  /**
   * The public key line(s): `[options] type blob [comment]`, e.g. the content of `id_ed25519.pub`.
   * Several keys: one per line.
   */
  readonly key: string;
  /** `present` (default): the key is in the file; `absent`: no line holds it. */
  readonly state?: 'present' | 'absent';
  /** With `present`: remove every other key from the file (comments and blank lines stay). Default false. */
  readonly exclusive?: boolean;
  /**
   * Another file than `<home>/.ssh/authorized_keys` (absolute; e.g. for sshd's `AuthorizedKeysFile`);
   * its folder is created 0700 like `.ssh` when missing.
   */
  readonly path?: string;
}

const authorizedKeyArgs = z.strictObject({
  user: z.string(),
  key: z.string(),
  state: z.optional(z.enum(['present', 'absent'])),
  exclusive: z.optional(z.boolean()),
  path: z.optional(z.string()),
});
const authorizedKeyInSync: Exact<z.infer<typeof authorizedKeyArgs>, AuthorizedKeyArgs> = true;

/** A path's attributes as the probe saw them (`missing` when absent). */
export type PathAttrs = {readonly kind: 'missing'} | {readonly kind: 'present'; readonly mode: number; readonly owner: string; readonly gid: number};

export type AuthorizedKeysState =
  | {readonly kind: 'nouser'}
  | {
      readonly kind: 'user';
      readonly home: string;
      readonly uid: number;
      readonly gid: number;
      readonly dir: PathAttrs;
      readonly file: PathAttrs & {readonly content?: string};
      /** The folder or file is something else than a folder / a regular file. */
      readonly odd?: string;
    };

/** The file edited: `path`, else `<home>/.ssh/authorized_keys`. */
export function keysFile(home: string, a: Pick<AuthorizedKeyArgs, 'path'>): string {
  return a.path ?? `${home.replace(/\/+$/, '')}/.ssh/authorized_keys`;
}

const dirname = (p: string): string => p.replace(/\/[^/]*$/, '') || '/';

/**
 * The probe: `passwd <line>`, then `dir <mode> <owner> <gid>` (or `dir missing`/`dir other`), then
 * `file <mode> <owner> <gid>` and the content in base64 on the next line (or `file missing`/`file other`).
 */
export function authorizedKeyProbeScript(a: Pick<AuthorizedKeyArgs, 'user' | 'path'>): string {
  const f = a.path !== undefined ? q(a.path) : '"$h/.ssh/authorized_keys"';
  const d = a.path !== undefined ? q(dirname(a.path)) : '"$h/.ssh"';
  return [
    `if e=$(getent passwd -- ${q(a.user)} 2>/dev/null); then`,
    `  printf 'passwd %s\\n' "$e"; h=$(printf '%s' "$e" | cut -d: -f6)`,
    `  if [ -d ${d} ] && [ ! -L ${d} ]; then stat -c 'dir %a %U %g' -- ${d}; elif [ -e ${d} ]; then echo 'dir other'; else echo 'dir missing'; fi`,
    `  if [ -f ${f} ] && [ ! -L ${f} ]; then stat -c 'file %a %U %g' -- ${f}; base64 -w0 -- ${f}; echo; elif [ -e ${f} ]; then echo 'file other'; else echo 'file missing'; fi`,
    'else echo nouser; fi',
  ].join('\n');
}

function attrsOf(words: readonly string[]): PathAttrs | undefined {
  const [mode = '', owner = '', gid = ''] = words;
  if (!/^[0-7]+$/.test(mode) || !/^\d+$/.test(gid)) return undefined;
  return {kind: 'present', mode: parseInt(mode, 8), owner, gid: Number(gid)};
}

/** Pure parser of `authorizedKeyProbeScript`'s output. */
export function parseAuthorizedKeys(stdout: string): AuthorizedKeysState {
  const lines = stdout.split('\n');
  const pw = lines.find((l) => l.startsWith('passwd '));
  const f = pw?.slice(7).split(':') ?? [];
  const [, , uid = '', gid = '', , home = ''] = f;
  if (!pw || f.length < 7 || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return {kind: 'nouser'};
  let dir: PathAttrs = {kind: 'missing'};
  let file: PathAttrs & {content?: string} = {kind: 'missing'};
  let odd: string | undefined;
  lines.forEach((l, i) => {
    const [tag = '', ...rest] = l.split(' ');
    if (tag !== 'dir' && tag !== 'file') return;
    if (rest[0] === 'missing') return;
    const at = rest[0] === 'other' ? undefined : attrsOf(rest);
    if (!at) {
      odd = tag === 'dir' ? 'folder' : 'file';
      return;
    }
    if (tag === 'dir') dir = at;
    else file = {...at, content: Buffer.from(lines[i + 1] ?? '', 'base64').toString('utf8')};
  });
  return {kind: 'user', home, uid: Number(uid), gid: Number(gid), dir, file, ...(odd ? {odd} : {})};
}

const keyTypeRe = /^(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)$/;

/**
 * A key line's identity: `type blob`, skipping leading options (which may hold quoted spaces);
 * undefined for comments, blank lines and lines that hold no key.
 */
export function keyIdentity(line: string): string | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return undefined;
  // Words, keeping quoted strings (in options like command="a b") whole.
  const words = t.match(/(?:[^\s"]+|"(?:[^"\\]|\\.)*")+/g) ?? [];
  for (let i = 0; i + 1 < words.length; i++) {
    const type = words[i] ?? '';
    const blob = words[i + 1] ?? '';
    if (keyTypeRe.test(type) && /^[A-Za-z0-9+/]+={0,3}$/.test(blob)) return `${type} ${blob}`;
  }
  return undefined;
}

/** Pure: the file after the edit. */
export function editAuthorizedKeys(text: string, a: AuthorizedKeyArgs): string {
  const wanted = a.key.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const ids = new Map(wanted.map((l) => [keyIdentity(l) ?? l, l]));
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  const placed = new Set<string>();
  for (const line of lines) {
    const id = keyIdentity(line);
    if (id === undefined || !ids.has(id)) {
      if (id !== undefined && (a.state ?? 'present') === 'present' && a.exclusive) continue;
      out.push(line);
      continue;
    }
    if ((a.state ?? 'present') === 'absent' || placed.has(id)) continue; // removed, or a duplicate
    out.push(ids.get(id) ?? line);
    placed.add(id);
  }
  if ((a.state ?? 'present') === 'present') for (const [id, l] of ids) if (!placed.has(id)) out.push(l);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** A short name for the key(s): the first key's comment, else its type; `N keys` for several. */
function keyLabel(key: string): string {
  const lines = key.split('\n').filter((l) => keyIdentity(l) !== undefined);
  if (lines.length > 1) return `${lines.length} keys`;
  const line = lines[0] ?? key;
  const id = keyIdentity(line);
  if (id === undefined) return 'key';
  const comment = line.slice(line.indexOf(id) + id.length).trim();
  return comment || (id.split(' ')[0] ?? 'key');
}

export const authorizedKeyModule: ModuleDef<AuthorizedKeyArgs, AuthorizedKeysState> = {
  name: 'authorized_key',
  schema: authorizedKeyArgs,
  describe: (a) => `${a.user}: ${keyLabel(a.key)}${(a.state ?? 'present') === 'absent' ? ' absent' : ''}`,
  probe: (a): Probe<AuthorizedKeysState> => ({script: authorizedKeyProbeScript(a), parse: (out) => parseAuthorizedKeys(out.stdout)}),
  plan(have, a): Plan {
    if (a.path !== undefined && !a.path.startsWith('/')) return {steps: [], fail: `path must be an absolute path, got '${a.path}'`};
    const lines = a.key.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length === 0) return {steps: [], fail: 'key is empty'};
    const bad = lines.find((l) => keyIdentity(l) === undefined);
    if (bad !== undefined) return {steps: [], fail: `not an SSH public key: '${bad.length > 40 ? `${bad.slice(0, 40)}…` : bad}'`};
    if (have.kind === 'nouser') return {steps: [], fail: `no user '${a.user}' (getent passwd)`};
    const path = keysFile(have.home, a);
    if (have.odd) return {steps: [], fail: `${have.odd === 'folder' ? dirname(path) : path} exists and is not a ${have.odd}`};
    const before = have.file.kind === 'present' ? (have.file.content ?? '') : '';
    const after = editAuthorizedKeys(before, a);
    const absent = (a.state ?? 'present') === 'absent';
    if (absent && have.file.kind === 'missing') return {steps: [], reason: `${path} does not exist`};

    const steps: Step[] = [];
    const done: string[] = [];
    const dir = dirname(path);
    const owner = a.user;
    const own = `${owner}:${have.gid}`;
    if (!absent) {
      if (have.dir.kind === 'missing') {
        steps.push({kind: 'exec', cmd: argv('mkdir', '-m', '0700', '--', dir)}, {kind: 'exec', cmd: argv('chown', own, '--', dir)});
        done.push(`create ${dir}`);
      } else {
        if (have.dir.owner !== owner || have.dir.gid !== have.gid) {
          steps.push({kind: 'exec', cmd: argv('chown', own, '--', dir)});
          done.push(`${dir} owner ${have.dir.owner}:${have.dir.gid} → ${own}`);
        }
        if (have.dir.mode !== 0o700) {
          steps.push({kind: 'exec', cmd: argv('chmod', '0700', '--', dir)});
          done.push(`${dir} mode ${formatMode(have.dir.mode)} → 0700`);
        }
      }
    }
    if (after !== before || have.file.kind === 'missing') {
      steps.push({kind: 'write', dest: path, content: Buffer.from(after), mode: '0600', owner, group: String(have.gid)});
      const n = (t: string): number => t.split('\n').filter((l) => keyIdentity(l) !== undefined).length;
      const added = Math.max(0, n(after) - n(before));
      const removed = Math.max(0, n(before) - n(after));
      done.push(have.file.kind === 'missing' ? `create ${path}`
        : added || removed ? [added ? `add ${added} key${added > 1 ? 's' : ''}` : '', removed ? `remove ${removed} key${removed > 1 ? 's' : ''}` : ''].filter(Boolean).join(', ')
        : 'rewrite key line');
      return {steps, diff: {path, before, after}, reason: done.join('; ')};
    }
    if (have.file.kind === 'present' && !absent) {
      if (have.file.owner !== owner || have.file.gid !== have.gid) {
        steps.push({kind: 'exec', cmd: argv('chown', own, '--', path)});
        done.push(`owner ${have.file.owner}:${have.file.gid} → ${own}`);
      }
      if (have.file.mode !== 0o600) {
        steps.push({kind: 'exec', cmd: argv('chmod', '0600', '--', path)});
        done.push(`mode ${formatMode(have.file.mode)} → 0600`);
      }
    }
    if (steps.length > 0) return {steps, reason: done.join('; ')};
    return {steps, reason: absent ? 'key not present' : lines.length > 1 ? 'keys already present' : 'key already present'};
  },
};

/** An SSH public key in a user's authorized_keys. */
export const authorizedKey = (args: ArgsOf<AuthorizedKeyArgs>, options?: TaskOptions): Task => makeTask(authorizedKeyModule, args, options);

void authorizedKeyInSync;
