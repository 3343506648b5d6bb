/**
 * `unarchive`: an archive ALREADY ON THE HOST (e.g. fetched by `getUrl`) extracted into a directory
 * (Ansible's unarchive with `remote_src: true`). Host-only: the step kinds have no way to list an
 * archive on the controller, and uploading it first would cost the upload on every run.
 *
 * Idempotence as Ansible decides it, entry by entry of the archive (after `exclude`):
 * - tar (plain, gz, xz, bz2): GNU `tar --diff` against `dest` (missing entry, size, contents, mtime,
 *   mode, type; uid/gid only when connected as root and `owner`/`group` unset, as Ansible);
 * - zip: the listing of `unzip -Z -s -T`; for each regular file, size, then (when equal) the content
 *   itself (`unzip -p | cmp`, exact where Ansible compares CRC32); mode from the listing; the owner
 *   and group against the connecting user's (as Ansible). Not the mtime: a zip stores it in 2-second
 *   DOS time beside a 1-second Unix one, and Ansible's own comment owns that this flaps.
 * `owner`/`group`/`mode` are compared with every entry's `stat` and set only where they differ
 * (after an extraction: on every entry).
 *
 * Plan: `creates` exists → nothing. Archive missing → fail. Anything differs (or `dest` was created)
 * → one extraction step (`tar --extract -p -C dest -f src` / `unzip -o src -d dest`), then the
 * attribute steps. Nothing differs → nothing ("already extracted: 12 entries match").
 */
import {posix} from 'node:path';
import {argv, q, type Cmd} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';
import {formatMode} from '../facts/file.ts';

export type UnarchiveFormat = 'tar' | 'tar.gz' | 'tar.xz' | 'tar.bz2' | 'zip';

export interface UnarchiveArgs {
  /** Absolute path of the archive ON THE HOST (fetch it first, e.g. with `getUrl`). */
  readonly src: string;
  /** Absolute path of the directory to extract into. Must exist, unless `createDest`. */
  readonly dest: string;
  /** The archive's format. Unset: from `src`'s name (.tar, .tar.gz/.tgz, .tar.xz/.txz, .tar.bz2/.tbz2, .zip). */
  readonly format?: UnarchiveFormat;
  /** Create `dest` (with parents) when missing. Default false: a missing `dest` fails the task. */
  readonly createDest?: boolean;
  /** A path on the host: when it exists, nothing is done (and the archive is not read). */
  readonly creates?: string;
  /** Owner user name of every extracted entry. Unset: tar's (the archive's, as root) or unzip's choice. */
  readonly owner?: string;
  /** Owner group name of every extracted entry. Unset: left as extracted. */
  readonly group?: string;
  /**
   * Octal mode of every extracted regular file, e.g. '0644'; directories get it with the search bit
   * wherever a read bit is set ('0644' → 0755). Symbolic links are left alone. Unset: the archive's.
   */
  readonly mode?: string;
  /** More options for the extraction command (`--strip-components=1`); for tar, also given to the listing and `--diff`. */
  readonly extraOpts?: readonly string[];
  /** Entries not extracted nor compared: tar `--exclude` / unzip `-x` patterns. */
  readonly exclude?: readonly string[];
}

const unarchiveArgs = z.strictObject({
  src: z.string(),
  dest: z.string(),
  format: z.optional(z.enum(['tar', 'tar.gz', 'tar.xz', 'tar.bz2', 'zip'])),
  createDest: z.optional(z.boolean()),
  creates: z.optional(z.string()),
  owner: z.optional(z.string()),
  group: z.optional(z.string()),
  mode: z.optional(z.string()),
  extraOpts: z.optional(z.readonly(z.array(z.string()))),
  exclude: z.optional(z.readonly(z.array(z.string()))),
});
const unarchiveInSync: Exact<z.infer<typeof unarchiveArgs>, UnarchiveArgs> = true;

/** What an entry of the archive looks like in `dest`. */
export type EntryState =
  | {readonly kind: 'missing'}
  | {readonly kind: 'file' | 'directory' | 'link' | 'other'; readonly mode: number; readonly owner: string; readonly group: string};

/** One entry of the archive and how it compares with `dest`. */
export interface Entry {
  /** As listed (normalised: no `./` doubling, no trailing `/`; `.` for the top directory). */
  readonly path: string;
  /** What the archive says it is, when the listing tells (a name ending in `/` is a directory). */
  readonly type?: 'file' | 'directory' | 'link';
  /** zip only: the mode the listing gives (Unix entries). */
  readonly archiveMode?: number;
  readonly have: EntryState;
  /** What `tar --diff` (or the zip comparison) found different: `contents`, `size`, `mtime`, `mode`, `uid`, `gid`, `type`. */
  readonly differs: readonly string[];
}

/** What the probe found. */
export type UnarchiveState =
  | {readonly kind: 'creates'}
  | {readonly kind: 'no-archive'; readonly why: 'missing' | 'not a regular file'}
  | {readonly kind: 'unreadable'; readonly error: string}
  | {
      readonly kind: 'listed';
      readonly dest: 'directory' | 'missing' | 'other';
      /** The connecting (or become) user. */
      readonly user: {readonly uid: number; readonly name: string; readonly group: string};
      readonly entries: readonly Entry[];
    };

/** The format from the argument, else from the name; undefined when neither tells. */
export function formatOf(a: Pick<UnarchiveArgs, 'src' | 'format'>): UnarchiveFormat | undefined {
  if (a.format !== undefined) return a.format;
  const n = a.src.toLowerCase();
  if (n.endsWith('.tar.gz') || n.endsWith('.tgz')) return 'tar.gz';
  if (n.endsWith('.tar.xz') || n.endsWith('.txz')) return 'tar.xz';
  if (n.endsWith('.tar.bz2') || n.endsWith('.tbz2') || n.endsWith('.tbz')) return 'tar.bz2';
  if (n.endsWith('.tar')) return 'tar';
  if (n.endsWith('.zip')) return 'zip';
  return undefined;
}

const tarFlag: Record<Exclude<UnarchiveFormat, 'zip'>, readonly string[]> = {'tar': [], 'tar.gz': ['-z'], 'tar.xz': ['-J'], 'tar.bz2': ['-j']};

/** tar's options shared by the listing, `--diff` and the extraction: compression, excludes, extra options. */
function tarOpts(a: UnarchiveArgs, format: Exclude<UnarchiveFormat, 'zip'>): string[] {
  const extra = a.extraOpts ?? [];
  return [...tarFlag[format], ...(extra.length > 0 ? ['--show-transformed-names', ...extra] : []), ...(a.exclude ?? []).map((x) => `--exclude=${x}`)];
}

const modeOf = (mode: string): number | undefined => (/^[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : undefined);
/** The mode a directory gets for a file `mode`: search wherever read is allowed (0644 → 0755). */
export const dirModeFor = (mode: number): number => mode | ((mode & 0o444) >> 2);

function problem(a: UnarchiveArgs): string | undefined {
  if (!a.src.startsWith('/')) return `src must be an absolute path on the host, got '${a.src}'`;
  if (!a.dest.startsWith('/')) return `dest must be an absolute path, got '${a.dest}'`;
  if (a.creates !== undefined && !a.creates.startsWith('/')) return `creates must be an absolute path, got '${a.creates}'`;
  if (formatOf(a) === undefined) return `cannot tell the format of ${a.src} from its name: set format ('tar', 'tar.gz', 'tar.xz', 'tar.bz2' or 'zip')`;
  if (a.mode !== undefined && modeOf(a.mode) === undefined) return `bad mode '${a.mode}': expected octal like '0644'`;
  return undefined;
}

const STAT = "stat -c '%F|%a|%U|%G|%n' --";

/** The probe's shell (read-only): `creates`, the archive, `dest`, the listing, the differences, each entry's stat. */
export function unarchiveProbeScript(a: UnarchiveArgs): string {
  const format = formatOf(a) ?? 'tar';
  const src = q(a.src);
  const dest = q(a.dest);
  const head = [
    'LC_ALL=C; export LC_ALL',
    ...(a.creates !== undefined ? [`if [ -e ${q(a.creates)} ] || [ -L ${q(a.creates)} ]; then echo creates; exit 0; fi`] : []),
    `if [ ! -e ${src} ]; then echo no-archive; exit 0; fi`,
    `if [ ! -f ${src} ]; then echo not-file; exit 0; fi`,
    `if [ -d ${dest} ]; then echo dest directory; elif [ -e ${dest} ] || [ -L ${dest} ]; then echo dest other; else echo dest missing; fi`,
    'echo "user $(id -u) $(id -un) $(id -gn)"',
  ];
  if (format === 'zip') {
    const x = (a.exclude ?? []).length > 0 ? ` -x ${(a.exclude ?? []).map(q).join(' ')}` : '';
    // The listing's entry lines: `perm ver os size tx method yyyymmdd.hhmmss name`.
    const entries = 'while read -r perm ver os size tx meth dt name; do case $dt in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]) ;; *) continue;; esac';
    return [
      ...head,
      `l=$(unzip -Z -s -T ${src}${x} 2>&1) || { echo "@listerr $?"; printf '%s\\n' "$l"; exit 0; }`,
      "echo @list; printf '%s\\n' \"$l\"",
      `[ -d ${dest} ] || exit 0`,
      'echo @diff',
      `printf '%s\\n' "$l" | ${entries}`,
      `  case $perm in -*) ;; *) continue;; esac; f=${dest}/$name; [ -f "$f" ] && [ ! -L "$f" ] || continue`,
      '  if [ "$(stat -c %s -- "$f")" != "$size" ]; then printf \'%s: Size differs\\n\' "$name"; continue; fi',
      "  case $name in *[][*?\\\\]*) e=$(printf '%s' \"$name\" | sed 's/[][*?\\\\]/\\\\&/g');; *) e=$name;; esac",
      `  unzip -p ${src} "$e" 2>/dev/null | cmp -s - "$f" || printf '%s: Contents differ\\n' "$name"`,
      'done',
      'echo @stat',
      `printf '%s\\n' "$l" | ${entries}; printf '%s\\0' "$name"; done | (cd ${dest} && xargs -0 -r ${STAT} 2>/dev/null); exit 0`,
    ].join('\n');
  }
  const opts = tarOpts(a, format).map(q).join(' ');
  return [
    ...head,
    `l=$(tar -t ${opts} -f ${src} 2>&1) || { echo "@listerr $?"; printf '%s\\n' "$l"; exit 0; }`,
    "echo @list; printf '%s\\n' \"$l\"",
    `[ -d ${dest} ] || exit 0`,
    'echo @diff',
    `tar --diff -C ${dest} ${opts} -f ${src} 2>&1`,
    'echo @stat',
    `printf '%s\\n' "$l" | tr '\\n' '\\0' | (cd ${dest} && xargs -0 -r ${STAT} 2>/dev/null); exit 0`,
  ].join('\n');
}

/** `./a/` → `a`, `./` → `.`, `a//b/` → `a/b`. */
export function normalEntry(p: string): string {
  const n = posix.normalize(p).replace(/\/+$/, '');
  return n === '' ? '.' : n;
}

const ZIP_LINE = /^([-dl?][rwxstahST-]{6,9})\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(\d{8}\.\d{6})\s+(.*)$/;

function permToMode(perm: string): number | undefined {
  if (perm.length !== 9) return undefined;
  let m = 0;
  const bits = [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1];
  for (let i = 0; i < 9; i++) {
    const c = perm[i] ?? '-';
    if (c === '-') continue;
    if (c === 'S' || c === 'T') { m |= i < 3 ? 0o4000 : i < 6 ? 0o2000 : 0o1000; continue; }
    m |= bits[i] ?? 0;
    if (c === 's') m |= i < 3 ? 0o4000 : 0o2000;
    if (c === 't') m |= 0o1000;
  }
  return m;
}

const DIFF_LINE = /^(?:tar: )?(.*?): (?:Warning: )?(Cannot stat: .*|Contents differ|Size differs|Mod time differs|Mode differs|Uid differs|Gid differs|File type differs|Symlink differs|Not linked to .*|Does not exist|Could only read .*)$/;
const DIFF_WORD: Record<string, string> = {'Contents differ': 'contents', 'Size differs': 'size', 'Mod time differs': 'mtime', 'Mode differs': 'mode', 'Uid differs': 'uid', 'Gid differs': 'gid', 'File type differs': 'type', 'Symlink differs': 'link target'};

/** The probe's output as data (pure). */
export function parseUnarchive(stdout: string, format: UnarchiveFormat): UnarchiveState {
  const lines = stdout.split('\n');
  const first = lines[0] ?? '';
  if (first === 'creates') return {kind: 'creates'};
  if (first === 'no-archive') return {kind: 'no-archive', why: 'missing'};
  if (first === 'not-file') return {kind: 'no-archive', why: 'not a regular file'};
  const dest = /^dest (directory|missing|other)$/.exec(first)?.[1] as 'directory' | 'missing' | 'other' | undefined;
  const user = /^user (\d+) (\S+) (\S+)$/.exec(lines[1] ?? '');
  if (dest === undefined || !user) return {kind: 'unreadable', error: `unexpected probe output: ${stdout.slice(0, 200)}`};
  const rest = lines.slice(2);
  if ((rest[0] ?? '').startsWith('@listerr')) {
    const error = rest.slice(1).map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l !== '').join('; ') || rest[0] || '';
    return {kind: 'unreadable', error: error.length > 300 ? `${error.slice(0, 300)}…` : error};
  }
  const sections: Record<'list' | 'diff' | 'stat', string[]> = {list: [], diff: [], stat: []};
  let cur: 'list' | 'diff' | 'stat' | undefined;
  for (const l of rest) {
    if (l === '@list' || l === '@diff' || l === '@stat') cur = l.slice(1) as 'list' | 'diff' | 'stat';
    else if (cur !== undefined && l !== '') sections[cur].push(l);
  }
  // The entries, in archive order, once each.
  const listed = new Map<string, {type?: 'file' | 'directory' | 'link'; archiveMode?: number; size?: number}>();
  for (const l of sections.list) {
    if (format === 'zip') {
      const m = ZIP_LINE.exec(l);
      if (!m) continue;
      const [, perm = '', , , name = ''] = m;
      const type = perm.startsWith('d') || name.endsWith('/') ? 'directory' : perm.startsWith('l') ? 'link' : 'file';
      const archiveMode = permToMode(perm.slice(1));
      listed.set(normalEntry(name), {type, ...(archiveMode === undefined ? {} : {archiveMode})});
    } else {
      listed.set(normalEntry(l), l.endsWith('/') ? {type: 'directory'} : {});
    }
  }
  const differs = new Map<string, string[]>();
  for (const l of sections.diff) {
    const m = DIFF_LINE.exec(l);
    if (!m) continue;
    const [, path = '', what = ''] = m;
    const word = DIFF_WORD[what] ?? (what.startsWith('Cannot stat') || what === 'Does not exist' ? 'missing' : what.toLowerCase());
    const key = normalEntry(path);
    differs.set(key, [...(differs.get(key) ?? []), word]);
  }
  const stats = new Map<string, EntryState>();
  for (const l of sections.stat) {
    const m = /^([^|]*)\|([0-7]+)\|([^|]*)\|([^|]*)\|(.*)$/.exec(l);
    if (!m) continue;
    const [, f = '', mode = '0', owner = '', group = '', name = ''] = m;
    const kind = f.startsWith('regular') ? 'file' : f === 'directory' ? 'directory' : f === 'symbolic link' ? 'link' : 'other';
    stats.set(normalEntry(name), {kind, mode: parseInt(mode, 8), owner, group});
  }
  const entries: Entry[] = [...listed].map(([path, info]) => {
    const have = stats.get(path) ?? {kind: 'missing'};
    const found = (differs.get(path) ?? []).filter((w) => w !== 'missing');
    // zip: the mode from the listing (the content was compared by the probe).
    if (format === 'zip' && have.kind !== 'missing' && have.kind !== 'link' && info.archiveMode !== undefined && (have.mode & 0o7777) !== info.archiveMode) found.push('mode');
    if (have.kind !== 'missing' && info.type !== undefined && info.type !== have.kind) found.push('type');
    return {path, ...(info.type ? {type: info.type} : {}), ...(info.archiveMode === undefined ? {} : {archiveMode: info.archiveMode}), have, differs: [...new Set(found)]};
  });
  return {kind: 'listed', dest, user: {uid: Number(user[1]), name: user[2] ?? '', group: user[3] ?? ''}, entries};
}

/** The extraction command. */
export function extractCmd(a: UnarchiveArgs): Cmd {
  const format = formatOf(a) ?? 'tar';
  if (format === 'zip') {
    const x = a.exclude ?? [];
    return argv('unzip', '-o', '-q', ...(a.extraOpts ?? []), a.src, ...(x.length > 0 ? ['-x', ...x] : []), '-d', a.dest);
  }
  // -p: the archive's modes exactly (not less the umask), so that --diff agrees afterwards for any user.
  return argv('tar', '--extract', '-p', '-C', a.dest, ...tarOpts(a, format), '-f', a.src);
}

/** The differences that count for `a`, for an entry (Ansible's filter on `tar --diff`). */
function drift(e: Entry, a: UnarchiveArgs, user: {uid: number; name: string; group: string}, format: UnarchiveFormat): string[] {
  if (e.have.kind === 'missing') return ['missing'];
  const have = e.have;
  return [
    ...e.differs.filter((w) => {
      if (w === 'mode') return a.mode === undefined;
      if (w === 'uid') return user.uid === 0 && a.owner === undefined;
      if (w === 'gid') return user.uid === 0 && a.group === undefined;
      return true;
    }),
    // zip: unzip leaves entries to the connecting user (Ansible compares with it).
    ...(format === 'zip' && a.owner === undefined && have.owner !== user.name ? ['owner'] : []),
    ...(format === 'zip' && a.group === undefined && have.group !== user.group ? ['group'] : []),
  ];
}

/** `find` over the paths fed on stdin (NUL-separated), each itself only (`-maxdepth 0`). */
function findStep(paths: readonly string[], test: readonly string[], action: readonly string[]): Step {
  return {kind: 'exec', cmd: argv('find', '-files0-from', '-', '-maxdepth', '0', ...test, '-exec', ...action, '{}', '+'), stdin: Buffer.from(paths.map((p) => `${p}\0`).join(''))};
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export const unarchiveModule: ModuleDef<UnarchiveArgs, UnarchiveState> = {
  name: 'unarchive',
  schema: unarchiveArgs,
  describe: (a) => `${a.src} → ${a.dest}`,
  probe: (a) => ({script: unarchiveProbeScript(a), parse: (out) => parseUnarchive(out.stdout, formatOf(a) ?? 'tar')}),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const format = formatOf(a) ?? 'tar';
    switch (have.kind) {
      case 'creates': return {steps: [], reason: `${a.creates ?? ''} exists`};
      case 'no-archive': return {steps: [], fail: have.why === 'missing' ? `archive ${a.src} does not exist on the host (unarchive reads it there: fetch it first, e.g. with getUrl)` : `archive ${a.src} is not a regular file`};
      case 'unreadable': return {steps: [], fail: `cannot list ${a.src} as ${format}: ${have.error}`};
      case 'listed': break;
    }
    if (have.dest === 'other') return {steps: [], fail: `dest ${a.dest} exists and is not a directory`};
    if (have.dest === 'missing' && !a.createDest) return {steps: [], fail: `dest ${a.dest} does not exist (create it first, or set createDest)`};
    const entries = have.entries;
    const drifted = entries.map((e) => ({e, what: drift(e, a, have.user, format)})).filter((d) => d.what.length > 0);
    const extract = have.dest === 'missing' || drifted.length > 0;
    const steps: Step[] = [];
    if (have.dest === 'missing') steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '--', a.dest)});
    if (extract) steps.push({kind: 'exec', cmd: extractCmd(a)});
    const abs = (e: Entry): string => (e.path === '.' ? a.dest : posix.join(a.dest, e.path));
    // Attributes: after an extraction every entry; otherwise those that differ.
    const attrs: string[] = [];
    const own = [a.owner ?? '', a.group === undefined ? '' : `:${a.group}`].join('');
    if (own) {
      const wrong = extract ? entries : entries.filter((e) => e.have.kind !== 'missing' && ((a.owner !== undefined && e.have.owner !== a.owner) || (a.group !== undefined && e.have.group !== a.group)));
      if (wrong.length > 0) {
        steps.push(findStep(wrong.map(abs), [], ['chown', '-h', own]));
        if (!extract) attrs.push(`owner ${own} on ${plural(wrong.length, 'entry', 'entries')}`);
      }
    }
    const mode = a.mode === undefined ? undefined : modeOf(a.mode);
    if (mode !== undefined) {
      for (const [kind, m, test] of [['file', mode, 'f'], ['directory', dirModeFor(mode), 'd']] as const) {
        // After an extraction, every entry: `find -type` picks the files (or directories) there.
        const wrong = extract ? entries : entries.filter((e) => e.have.kind === kind && (e.have.mode & 0o7777) !== m);
        if (wrong.length === 0) continue;
        steps.push(findStep(wrong.map(abs), ['-type', test], ['chmod', formatMode(m)]));
        if (!extract) attrs.push(`mode ${formatMode(m)} on ${plural(wrong.length, kind === 'file' ? 'file' : 'directory', kind === 'file' ? 'files' : 'directories')}`);
      }
    }
    if (extract) {
      const shown = drifted.slice(0, 3).map((d) => `${d.e.path}: ${d.what.join(', ')}`).join('; ');
      const reason = have.dest === 'missing'
        ? `create ${a.dest} and extract ${a.src} (${plural(entries.length, 'entry', 'entries')})`
        : `extract ${a.src} into ${a.dest}: ${drifted.length} of ${plural(entries.length, 'entry', 'entries')} differ (${shown}${drifted.length > 3 ? '; …' : ''})`;
      return {steps, reason};
    }
    if (steps.length > 0) return {steps, reason: `set ${attrs.join(', ')} (${a.src} already extracted in ${a.dest})`};
    return {steps, reason: `already extracted: ${plural(entries.length, 'entry', 'entries')} of ${a.src} match ${a.dest}`};
  },
};

/** Extract an archive that is on the host into a directory (Ansible's unarchive with remote_src). */
export const unarchive = (args: ArgsOf<UnarchiveArgs>, options?: TaskOptions): Task => makeTask(unarchiveModule, args, options);

void unarchiveInSync;
