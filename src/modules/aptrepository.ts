/**
 * `aptRepository`: a third-party apt repository in the deb822 format, `<dir>/<name>.sources`, signed by
 * its own key, `<keyDir>/<name>.asc` (ASCII-armored) or `<name>.gpg` (binary), named by `Signed-By:`
 * so the key is trusted for this repository only (no `apt-key`, no `trusted.gpg.d`). One probe reads
 * both files (and the key file of the other format, which a change of format leaves behind); the plan
 * writes what differs atomically (0644), the key first, so apt never reads a source whose key is missing.
 * `apt-get update` is not run here: `apt({packages: …, updateCache: true})` refreshes the lists, and
 * an `apt` task that installs runs it anyway when the lists are older than `cacheValidTime`; to see a
 * new repository at once, give that task `cacheValidTime: 0` or notify a handler that updates.
 */
import {createHash} from 'node:crypto';
import {argv} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {Diff, ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';
import {fileProbeScript, parseFileState, type FileState} from '../facts/file.ts';

export interface AptRepositoryArgs {
  /** The repository's file name without extension (`docker`, `nodesource`): `[A-Za-z0-9_.-]`, as apt reads. */
  readonly name: string;
  /** The repository's base URLs (`https://download.docker.com/linux/debian`). Required for `present`. */
  readonly uris?: string | readonly string[];
  /** The suites (`bookworm`, `stable`); a flat repository's path ends with `/` (`./`) and takes no components. Required for `present`. */
  readonly suites?: string | readonly string[];
  /** The components (`main`, `stable`); empty only when every suite is a flat path ending with `/`. Required for `present`. */
  readonly components?: string | readonly string[];
  /**
   * The repository's signing key: its ASCII-armored text (`-----BEGIN PGP PUBLIC KEY BLOCK-----`,
   * written as `<name>.asc`) or the binary keyring (a Buffer, written as `<name>.gpg`: apt tells the
   * formats apart by extension). Required for `present`.
   */
  readonly key?: string | Buffer;
  /** Only these architectures (`amd64`, `arm64`); default: every architecture dpkg is configured for. */
  readonly architectures?: string | readonly string[];
  /** `present` (default): both files hold what the arguments say; `absent`: both are removed. */
  readonly state?: 'present' | 'absent';
  /** Where the `.sources` file goes. Default `/etc/apt/sources.list.d`; tests point it at a temp folder. */
  readonly dir?: string;
  /** Where the key goes. Default `/etc/apt/keyrings` (Debian's folder for `Signed-By` keys). */
  readonly keyDir?: string;
}

const words = z.union([z.string(), z.array(z.string())]);
const aptRepositoryArgs = z.strictObject({
  name: z.string(),
  uris: z.optional(words),
  suites: z.optional(words),
  components: z.optional(words),
  key: z.optional(z.union([z.string(), z.instanceof(Buffer)])),
  architectures: z.optional(words),
  state: z.optional(z.enum(['present', 'absent'])),
  dir: z.optional(z.string()),
  keyDir: z.optional(z.string()),
});
const aptRepositoryInSync: Exact<z.infer<typeof aptRepositoryArgs>, AptRepositoryArgs> = true;

/** The files the repository is made of, as the probe found them. */
export interface AptRepositoryState {
  readonly sources: FileState;
  /** `<keyDir>/<name>.asc` */
  readonly asc: FileState;
  /** `<keyDir>/<name>.gpg` */
  readonly gpg: FileState;
}

const nameRe = /^[A-Za-z0-9_.-]+$/;
const armorRe = /^\s*-----BEGIN PGP PUBLIC KEY BLOCK-----/;
const split = (w: string | readonly string[] | undefined): string[] => (w === undefined ? [] : typeof w === 'string' ? w.split(/[\s,]+/) : [...w]).filter((s) => s !== '');
const trimDir = (d: string): string => d.replace(/(.)\/+$/, '$1');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The paths the arguments name. */
export function repositoryPaths(a: Pick<AptRepositoryArgs, 'name' | 'dir' | 'keyDir'>): {sources: string; asc: string; gpg: string} {
  const dir = trimDir(a.dir ?? '/etc/apt/sources.list.d');
  const keyDir = trimDir(a.keyDir ?? '/etc/apt/keyrings');
  return {sources: `${dir}/${a.name}.sources`, asc: `${keyDir}/${a.name}.asc`, gpg: `${keyDir}/${a.name}.gpg`};
}

/** The key's bytes and the file apt reads it from (by format). */
function keyFile(a: AptRepositoryArgs): {path: string; content: Buffer; armored: boolean} {
  const p = repositoryPaths(a);
  const armored = typeof a.key === 'string' ? armorRe.test(a.key) : armorRe.test((a.key ?? Buffer.alloc(0)).subarray(0, 64).toString('latin1'));
  return {path: armored ? p.asc : p.gpg, content: typeof a.key === 'string' ? Buffer.from(a.key) : (a.key ?? Buffer.alloc(0)), armored};
}

/** The deb822 text of the `.sources` file: pure. */
export function sourcesText(a: AptRepositoryArgs): string {
  const fields: [string, string[]][] = [
    ['Types', ['deb']],
    ['URIs', split(a.uris)],
    ['Suites', split(a.suites)],
    ['Components', split(a.components)],
    ['Architectures', split(a.architectures)],
    ['Signed-By', [keyFile(a).path]],
  ];
  return fields.filter(([, v]) => v.length > 0).map(([k, v]) => `${k}: ${v.join(' ')}\n`).join('');
}

function problem(a: AptRepositoryArgs): string | undefined {
  if (!nameRe.test(a.name)) return `bad repository name '${a.name}': apt reads only names of letters, digits, '_', '-' and '.'`;
  for (const [k, d] of [['dir', a.dir], ['keyDir', a.keyDir]] as const) if (d !== undefined && !d.startsWith('/')) return `${k} must be an absolute path, got '${d}'`;
  if ((a.state ?? 'present') === 'absent') return undefined;
  if (a.key === undefined || a.key.length === 0) return "state 'present' needs the repository's key";
  if (split(a.uris).length === 0) return 'uris is empty';
  const suites = split(a.suites);
  if (suites.length === 0) return 'suites is empty';
  const flat = suites.every((s) => s.endsWith('/'));
  if (flat && split(a.components).length > 0) return `a flat repository (suite '${suites[0]}') takes no components`;
  if (!flat && split(a.components).length === 0) return 'components is empty (only a flat repository, a suite ending with /, has none)';
  const all = [...split(a.uris), ...suites, ...split(a.components), ...split(a.architectures)];
  if (all.some((w) => /[\n#]/.test(w))) return 'uris, suites, components and architectures may not hold newlines or #';
  return undefined;
}

const shown = (f: FileState, binary: boolean): string => (f.kind !== 'file' ? '' : binary ? `(${f.size} bytes)\n` : (f.content?.toString('utf8') ?? `(${f.size} bytes)\n`));

export const aptRepositoryModule: ModuleDef<AptRepositoryArgs, AptRepositoryState> = {
  name: 'apt_repository',
  schema: aptRepositoryArgs,
  describe: (a) => `${a.name}${(a.state ?? 'present') === 'absent' ? ' (absent)' : ''}`,
  probe(a) {
    const p = repositoryPaths(a);
    // Three file probes, fenced: each one's output ends with a newline and holds no line of its own like the fence.
    const fence = '@@provision-apt-repository@@';
    return {
      script: [fileProbeScript(p.sources, 'small'), `echo ${fence}`, fileProbeScript(p.asc, 'small'), `echo ${fence}`, fileProbeScript(p.gpg, 'small')].join('\n'),
      parse: (out) => {
        const [sources = '', asc = '', gpg = ''] = out.stdout.split(`${fence}\n`);
        return {sources: parseFileState(sources), asc: parseFileState(asc), gpg: parseFileState(gpg)};
      },
    };
  },
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const p = repositoryPaths(a);
    for (const [path, f] of [[p.sources, have.sources], [p.asc, have.asc], [p.gpg, have.gpg]] as const) {
      if (f.kind !== 'missing' && f.kind !== 'file') return {steps: [], fail: `${path} exists and is a ${f.kind}, not a file`};
    }
    if ((a.state ?? 'present') === 'absent') {
      const gone = ([[p.sources, have.sources], [p.asc, have.asc], [p.gpg, have.gpg]] as const).filter(([, f]) => f.kind === 'file').map(([path]) => path);
      if (gone.length === 0) return {steps: [], reason: 'already absent'};
      const diff: Diff | undefined = have.sources.kind === 'file' ? {path: p.sources, before: shown(have.sources, false), after: ''} : undefined;
      return {steps: [{kind: 'exec', cmd: argv('rm', '-f', '--', ...gone)}], ...(diff ? {diff} : {}), reason: `remove ${gone.join(', ')}`};
    }
    const key = keyFile(a);
    const haveKey = key.armored ? have.asc : have.gpg;
    const stale = key.armored ? [p.gpg, have.gpg] as const : [p.asc, have.asc] as const;
    const text = sourcesText(a);
    const keyChanges = !(haveKey.kind === 'file' && haveKey.sha256 === sha256(key.content));
    const sourcesChange = !(have.sources.kind === 'file' && have.sources.sha256 === sha256(Buffer.from(text)));
    const steps: Step[] = [];
    const done: string[] = [];
    if (keyChanges) {
      if (haveKey.kind === 'missing') steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '--', trimDir(a.keyDir ?? '/etc/apt/keyrings'))});
      steps.push({kind: 'write', dest: key.path, content: key.content, mode: '0644'});
      done.push(`${haveKey.kind === 'missing' ? 'create' : 'update'} ${key.path}`);
    }
    if (sourcesChange) {
      if (have.sources.kind === 'missing') steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '--', trimDir(a.dir ?? '/etc/apt/sources.list.d'))});
      steps.push({kind: 'write', dest: p.sources, content: Buffer.from(text), mode: '0644'});
      done.push(`${have.sources.kind === 'missing' ? 'create' : 'update'} ${p.sources}`);
    }
    if (stale[1].kind === 'file') {
      steps.push({kind: 'exec', cmd: argv('rm', '-f', '--', stale[0])});
      done.push(`remove ${stale[0]}`);
    }
    if (steps.length === 0) return {steps: [], reason: `${p.sources} and ${key.path} up to date`};
    // One diff per task: the sources file's when it changes, else the key's (binary keys by size only).
    const diff: Diff = sourcesChange
      ? {path: p.sources, before: shown(have.sources, false), after: text}
      : keyChanges ? {path: key.path, before: shown(haveKey, !key.armored), after: key.armored ? key.content.toString('utf8') : `(${key.content.length} bytes)\n`}
      : {path: stale[0], before: shown(stale[1], key.armored), after: ''};
    return {steps, diff, reason: done.join('; ')};
  },
};

/** A deb822 apt source with its own signing key (`Signed-By`); run `apt` with `updateCache` after it. */
export const aptRepository = (args: ArgsOf<AptRepositoryArgs>, options?: TaskOptions): Task => makeTask(aptRepositoryModule, args, options);

void aptRepositoryInSync;
