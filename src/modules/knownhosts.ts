/**
 * `knownHosts`: a host's public key in a `known_hosts` file, by host name (plain names, not hashed).
 * The probe reads the file (and resolves `~` to the home of the user the task runs as); the plan
 * edits its lines: the entry is added, a key of the same type for that host is replaced, or every entry
 * of the host is removed. Lines of other hosts, `@cert-authority`/`@revoked` lines, hashed entries and
 * comments are kept. The file is rewritten atomically, keeping its mode (new files: 0644).
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Step, Task, TaskOptions} from '../core/types.ts';
import {formatMode} from '../facts/file.ts';

export interface KnownHostsArgs {
  /** The file: absolute, or starting with `~/` (the home of the user the task runs as). Default `~/.ssh/known_hosts`. */
  readonly path?: string;
  /** The host as ssh looks it up: `github.com`, `10.0.0.5`, or `[git.example.com]:2222` for another port. */
  readonly name: string;
  /**
   * The host's key: a known_hosts line (`name[,more names] type blob`, as `ssh-keyscan` prints it) or
   * just `type blob`. Required for `present`; with `absent` it is not needed.
   */
  readonly key?: string;
  /**
   * `present` (default): the host has this key (a key of the same type for the host is replaced; keys of
   * other types stay); `absent`: every entry of the host is removed (from lines naming other hosts too, only its name).
   */
  readonly state?: 'present' | 'absent';
}

const knownHostsArgs = z.strictObject({
  path: z.optional(z.string()),
  name: z.string(),
  key: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
});
const knownHostsInSync: Exact<z.infer<typeof knownHostsArgs>, KnownHostsArgs> = true;

export interface KnownHostsState {
  /** The file's path with `~` resolved. */
  readonly path: string;
  /** Its folder exists. */
  readonly dir: boolean;
  readonly file: {readonly kind: 'missing'} | {readonly kind: 'other'} | {readonly kind: 'file'; readonly mode: number; readonly content: string};
}

const defaultPath = '~/.ssh/known_hosts';

/** The path in shell words: `~/x` becomes `"$HOME"/x`. */
function shellPath(path: string): string {
  return path.startsWith('~/') ? `"$HOME"/${q(path.slice(2))}` : q(path);
}

const dirname = (p: string): string => p.replace(/\/[^/]*$/, '') || '/';

/** The probe: `path <resolved>`, `dir yes|no`, then `file <mode>` and the base64 content on the next line, or `file missing|other`. */
export function knownHostsProbeScript(path: string): string {
  const p = shellPath(path);
  const d = path.startsWith('~/') ? `"$(dirname -- ${p})"` : q(dirname(path));
  return [
    `printf 'path %s\\n' ${p}`,
    `if [ -d ${d} ]; then echo 'dir yes'; else echo 'dir no'; fi`,
    `if [ -f ${p} ]; then printf 'file '; stat -c %a -- ${p}; base64 -w0 -- ${p}; echo; elif [ -e ${p} ]; then echo 'file other'; else echo 'file missing'; fi`,
  ].join('\n');
}

/** Pure parser of `knownHostsProbeScript`'s output. */
export function parseKnownHosts(stdout: string): KnownHostsState {
  const lines = stdout.split('\n');
  const path = lines.find((l) => l.startsWith('path '))?.slice(5) ?? '';
  const dir = lines.includes('dir yes');
  const at = lines.findIndex((l) => l.startsWith('file '));
  const what = at < 0 ? 'missing' : (lines[at] ?? '').slice(5).trim();
  const file: KnownHostsState['file'] = /^[0-7]+$/.test(what)
    ? {kind: 'file', mode: parseInt(what, 8), content: Buffer.from(lines[at + 1] ?? '', 'base64').toString('utf8')}
    : what === 'other' ? {kind: 'other'} : {kind: 'missing'};
  return {path, dir, file};
}

/** A known_hosts line split up; undefined for comments, blank lines and marker (`@…`) lines. */
interface Entry {
  readonly hosts: readonly string[];
  readonly type: string;
  readonly blob: string;
  readonly rest: string;
}

function parseEntry(line: string): Entry | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#') || t.startsWith('@')) return undefined;
  const [hosts = '', type = '', blob = '', ...rest] = t.split(/\s+/);
  if (type === '' || blob === '') return undefined;
  return {hosts: hosts.split(','), type, blob, rest: rest.join(' ')};
}

/** The wanted line from `key`: `name type blob [comment]`; a string when the key is unusable. */
export function wantedLine(name: string, key: string): {line: string; type: string; blob: string} | string {
  const t = key.trim();
  if (t.includes('\n')) return 'key must be one line';
  const words = t.split(/\s+/);
  const bare = /^(ssh-|ecdsa-|sk-)/.test(words[0] ?? '');
  const [hosts, type = '', blob = '', ...rest] = bare ? [name, ...words] : words;
  if (!/^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$/.test(type) || !/^[A-Za-z0-9+/]+={0,3}$/.test(blob)) return `not a host key: '${t.length > 40 ? `${t.slice(0, 40)}…` : t}'`;
  if (!(hosts ?? '').split(',').includes(name)) return `the key's line names ${hosts}, not ${name}`;
  return {line: [hosts, type, blob, ...rest].join(' '), type, blob};
}

/** Pure: the file after the edit. `want` undefined: remove every entry of `name`. */
export function editKnownHosts(text: string, name: string, want: {line: string; type: string; blob: string} | undefined): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let found = false;
  for (const line of lines) {
    const e = parseEntry(line);
    if (!e || !e.hosts.includes(name)) {
      out.push(line);
      continue;
    }
    if (want && e.type === want.type && e.blob === want.blob && !found) {
      out.push(line); // the key is there (with whatever other names and comment): leave it
      found = true;
      continue;
    }
    if (want && e.type !== want.type) {
      out.push(line); // a key of another type: kept
      continue;
    }
    // This host's entry to drop: the whole line, or only its name when the line names other hosts too.
    const others = e.hosts.filter((h) => h !== name);
    if (others.length > 0) out.push([others.join(','), e.type, e.blob, ...(e.rest ? [e.rest] : [])].join(' '));
  }
  if (want && !found) out.push(want.line);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

export const knownHostsModule: ModuleDef<KnownHostsArgs, KnownHostsState> = {
  name: 'known_hosts',
  schema: knownHostsArgs,
  describe: (a) => `${a.name} in ${a.path ?? defaultPath}${(a.state ?? 'present') === 'absent' ? ' (absent)' : ''}`,
  probe: (a): Probe<KnownHostsState> => ({script: knownHostsProbeScript(a.path ?? defaultPath), parse: (out) => parseKnownHosts(out.stdout)}),
  plan(have, a): Plan {
    const path = a.path ?? defaultPath;
    if (!path.startsWith('/') && !path.startsWith('~/')) return {steps: [], fail: `path must be absolute or start with ~/, got '${path}'`};
    if (a.name === '' || /[\s,#]/.test(a.name) || a.name.startsWith('|') || a.name.startsWith('@')) return {steps: [], fail: `bad host name '${a.name}'`};
    const absent = (a.state ?? 'present') === 'absent';
    let want: {line: string; type: string; blob: string} | undefined;
    if (!absent) {
      if (a.key === undefined) return {steps: [], fail: "state 'present' needs key"};
      const w = wantedLine(a.name, a.key);
      if (typeof w === 'string') return {steps: [], fail: w};
      want = w;
    }
    if (have.path === '' || !have.path.startsWith('/')) return {steps: [], fail: `cannot resolve ${path} on the host (no HOME?)`};
    if (have.file.kind === 'other') return {steps: [], fail: `${have.path} exists and is not a regular file`};
    const before = have.file.kind === 'file' ? have.file.content : '';
    const after = editKnownHosts(before, a.name, want);
    if (after === before) return {steps: [], reason: absent ? `no entry for ${a.name}` : `${a.name} already has this ${want?.type ?? ''} key`};
    const steps: Step[] = [];
    if (!have.dir) steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '-m', '0700', '--', dirname(have.path))});
    steps.push({kind: 'write', dest: have.path, content: Buffer.from(after), mode: have.file.kind === 'file' ? formatMode(have.file.mode) : '0644'});
    const replaced = want !== undefined && before.split('\n').some((l) => {
      const e = parseEntry(l);
      return e?.hosts.includes(a.name) && e.type === want?.type;
    });
    const reason = absent ? `remove ${a.name}` : replaced ? `replace the ${want?.type} key of ${a.name}` : `add the ${want?.type} key of ${a.name}`;
    return {steps, diff: {path: have.path, before, after}, reason};
  },
};

/** A host's public key in a known_hosts file. */
export const knownHosts = (args: ArgsOf<KnownHostsArgs>, options?: TaskOptions): Task => makeTask(knownHostsModule, args, options);

void knownHostsInSync;
