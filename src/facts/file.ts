/**
 * The state of one path on the host: a shell probe and a pure parser.
 */
import {createHash} from 'node:crypto';
import {q} from '../shared/quote.ts';
import type {PathProbe, ProbeScript} from '../shared/probe.ts';

export interface Attrs {
  /** Octal permission bits as a number (0o644). */
  readonly mode: number;
  readonly owner: string;
  readonly group: string;
}

export type FileState =
  | {readonly kind: 'missing'}
  | ({readonly kind: 'file'; readonly size: number; readonly sha256: string; /** Present when asked for and small enough. */ readonly content?: Buffer} & Attrs)
  | ({readonly kind: 'directory'} & Attrs)
  | ({readonly kind: 'link'; readonly target: string} & Attrs)
  | {readonly kind: 'other'};

/** Largest file whose content is read back for diffs (content is compared by sha256 in any case). */
export const maxDiffBytes = 256 * 1024;

/**
 * Shell that prints the path's kind, attributes and (when `content` is 'small' or 'always') its
 * content in base64, or its sha256 when large. A file's lines: `file`, `mode owner group size`,
 * `sha256sum`'s output (empty when the content follows: the parser hashes it), the base64 content
 * (empty when not read). `expect`: the sha256 the task wants (lets a merged probe skip the content).
 * Few processes on purpose (one `stat`, then one `base64` or one `sha256sum`): a play's probes run in
 * one batch, and on a busy host every process started counts.
 */
export function fileProbe(path: string, content: 'none' | 'small' | 'always' = 'none', expect?: string): ProbeScript {
  const p = q(path);
  const body = content === 'always' ? `echo; base64 -w0 -- ${p}`
    : content === 'small' ? `if [ "\${s##* }" -le ${maxDiffBytes} ] 2>/dev/null; then echo; base64 -w0 -- ${p}; else sha256sum -- ${p}; fi`
    : 'true'; // attributes only: nothing reads a file module's content
  const script = [
    `if [ -L ${p} ]; then echo link; readlink -- ${p}; stat -c '%a %U %G' -- ${p};`,
    `elif [ -d ${p} ]; then echo directory; stat -c '%a %U %G' -- ${p};`,
    `elif [ -f ${p} ]; then echo file; s=$(stat -c '%a %U %G %s' -- ${p}); echo "$s"; ${body}; echo;`,
    `elif [ -e ${p} ]; then echo other; else echo missing; fi`,
    ...(expect !== undefined && content === 'small' ? [`# expect sha256 ${expect}`] : []),
  ].join('\n');
  // Absolute, one-line paths without backslashes can be answered together (see mergedPathProbe).
  const mergeable = path.startsWith('/') && !/[\n\\]/.test(path);
  return mergeable ? {script, path: {path, content, ...(expect !== undefined && content === 'small' ? {expect} : {})}} : {script};
}

/** The script of `fileProbe` alone. */
export function fileProbeScript(path: string, content: 'none' | 'small' | 'always' = 'none', expect?: string): string {
  return fileProbe(path, content, expect).script;
}

// ---------------------------------------------------------------------------------------------------
// Many paths in one go

export type {PathProbe};

/**
 * One script answering many path probes with a handful of processes, where each probe alone starts two
 * or three (a play's probe batch had ~40 for 15 files; on a busy host every process counts):
 * - one `stat` of every path (kind, mode, owner, group, size, link target), NUL-separated;
 * - one `sha256sum -c` of the `small` files against the hash their task wants: only files that differ
 *   are read back (for the diff), each alone (`base64`, or `sha256sum` when large);
 * - one `cat | base64` of every `always` file (lineinfile needs the content), split by the sizes `stat` saw.
 * `splitMergedPathProbe` turns the output back into each probe's own output, exactly as its script prints it.
 */
export function mergedPathProbe(probes: readonly PathProbe[]): string {
  const paths = [...new Set(probes.map((p) => p.path))];
  const always = [...new Set(probes.filter((p) => p.content === 'always').map((p) => p.path))];
  const small = probes.filter((p) => p.content === 'small' && p.expect !== undefined && !always.includes(p.path));
  const lines = [
    'LC_ALL=C; export LC_ALL',
    `QUOTING_STYLE=literal stat --printf '%n\\0%F\\0%a %U %G %s\\0%N\\0' -- ${paths.map(q).join(' ')} 2>/dev/null`,
    "printf '@check\\0'",
  ];
  if (small.length > 0) {
    lines.push(
      "sha256sum -c --quiet 2>/dev/null <<'__PROVISION_SUMS__' | while IFS= read -r l; do",
      ...small.map((p) => `${p.expect}  ${p.path}`),
      '__PROVISION_SUMS__',
      `  case "$l" in *': FAILED') p=\${l%: FAILED}; s=$(stat -c %s -- "$p" 2>/dev/null) || continue; printf '%s\\0' "$p"`,
      `    if [ "$s" -le ${maxDiffBytes} ]; then printf 'b\\0'; base64 -w0 -- "$p"; else printf 's\\0'; sha256sum -- "$p"; fi; printf '\\0';; esac`,
      'done',
    );
  }
  lines.push(
    "printf '@always\\0'",
    'set --',
    `for p in ${always.map(q).join(' ')}; do if [ -f "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$p"; fi; done`,
    `[ $# -eq 0 ] || printf '%s\\0' "$@"`,
    "printf '@data\\0'",
    '[ $# -eq 0 ] || cat -- "$@" 2>/dev/null | base64 -w0',
    "printf '\\0@end\\0'",
  );
  return lines.join('\n');
}

/**
 * Each probe's output, as its own script prints it, from `mergedPathProbe`'s output; undefined when the
 * output does not add up (a file changed between `stat` and `cat`, one could not be read, a `stat`
 * without `--printf`): the caller then runs the probes one by one.
 */
export function splitMergedPathProbe(stdout: string, probes: readonly PathProbe[]): string[] | undefined {
  const f = stdout.split('\0');
  let i = 0;
  const stats = new Map<string, {type: string; attrs: string; size: number; target: string}>();
  for (; i + 3 < f.length && f[i] !== '@check'; i += 4) {
    const [name = '', type = '', attrs = '', described = ''] = f.slice(i, i + 4); // all four there: i + 3 < f.length
    stats.set(name, {type, attrs, size: Number(attrs.split(' ')[3]), target: described.startsWith(`${name} -> `) ? described.slice(name.length + 4) : ''});
  }
  if (f[i++] !== '@check') return undefined;
  const differs = new Map<string, {kind: string; data: string}>();
  for (; i + 2 < f.length && f[i] !== '@always'; i += 3) {
    const [path = '', kind = '', text = ''] = f.slice(i, i + 3); // all three there: i + 2 < f.length
    differs.set(path, {kind, data: text});
  }
  if (f[i++] !== '@always') return undefined;
  const dataAt = f.indexOf('@data', i);
  if (dataAt < 0) return undefined;
  const read = f.slice(i, dataAt);
  i = dataAt + 1;
  const encoded = f[i];
  if (encoded === undefined || f[i + 1] !== '@end') return undefined;
  const data = Buffer.from(encoded, 'base64');
  const contents = new Map<string, Buffer>();
  let at = 0;
  for (const path of read) {
    const size = stats.get(path)?.size;
    if (size === undefined || at + size > data.length) return undefined;
    contents.set(path, data.subarray(at, at + size));
    at += size;
  }
  if (at !== data.length) return undefined;

  const out: string[] = [];
  for (const p of probes) {
    const st = stats.get(p.path);
    if (!st) {
      out.push('missing\n');
      continue;
    }
    const [mode, owner, group] = st.attrs.split(' ');
    const ugo = `${mode} ${owner} ${group}`;
    if (st.type === 'symbolic link') out.push(`link\n${st.target}\n${ugo}\n`);
    else if (st.type === 'directory') out.push(`directory\n${ugo}\n`);
    else if (st.type === 'regular file' || st.type === 'regular empty file') {
      const head = `file\n${st.attrs}\n`;
      if (p.content === 'always' || (p.content === 'small' && contents.has(p.path))) {
        const c = contents.get(p.path);
        if (!c) return undefined; // a file at stat time, not when listed for cat
        out.push(`${head}\n${c.toString('base64')}\n`);
      } else if (p.content === 'small') {
        const d = differs.get(p.path);
        if (d?.kind === 'b') out.push(`${head}\n${d.data}\n`);
        else if (d?.kind === 's') out.push(`${head}${d.data.trim()}\n\n`);
        else if (p.expect !== undefined) out.push(`${head}${p.expect}  ${p.path}\n\n`);
        else return undefined;
      } else {
        out.push(`${head}\n`);
      }
    } else out.push('other\n');
  }
  return out;
}

function attrs(line: string | undefined): Attrs & {extra: string[]} {
  const [mode = '0', owner = '', group = '', ...extra] = (line ?? '').trim().split(/\s+/);
  return {mode: parseInt(mode, 8), owner, group, extra};
}

/** Pure parser of `fileProbeScript`'s output. */
export function parseFileState(stdout: string): FileState {
  const lines = stdout.split('\n');
  switch (lines[0]) {
    case 'link': {
      const {extra: _e, ...a} = attrs(lines[2]);
      return {kind: 'link', target: lines[1] ?? '', ...a};
    }
    case 'directory': {
      const {extra: _e, ...a} = attrs(lines[1]);
      return {kind: 'directory', ...a};
    }
    case 'file': {
      const {extra, ...a} = attrs(lines[1]);
      const b64 = lines[3] ?? '';
      const size = Number(extra[0] ?? 0);
      const content = b64 !== '' || size === 0 ? Buffer.from(b64, 'base64') : undefined;
      // `sha256sum` prints `<hash>  <path>` (with a leading `\` for an escaped path); no hash: the content was read.
      const sha256 = /^\\?([0-9a-f]{64})\b/.exec((lines[2] ?? '').trim())?.[1] ?? (content ? createHash('sha256').update(content).digest('hex') : '');
      return {kind: 'file', size, sha256, ...(content && content.length === size ? {content} : {}), ...a};
    }
    case 'missing':
      return {kind: 'missing'};
    default:
      return {kind: 'other'};
  }
}

/** Parse an octal mode given as '0644', '644' or a number. */
export function parseMode(mode: string | number): number {
  if (typeof mode === 'number') return mode;
  if (!/^[0-7]{3,4}$/.test(mode)) throw new Error(`bad mode '${mode}': expected octal like '0644'`);
  return parseInt(mode, 8);
}

export function formatMode(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}
