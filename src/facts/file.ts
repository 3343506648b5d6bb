/**
 * The state of one path on the host: a shell probe and a pure parser.
 */
import {createHash} from 'node:crypto';
import {q} from '../core/cmd.ts';

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
 * Shell that prints the path's kind, attributes, sha256 and (when `content` is 'small' or 'always')
 * its content in base64. A file's lines: `file`, `mode owner group size`, `sha256sum`'s output (empty
 * when the content follows: the parser hashes it), the base64 content (empty when not read).
 * Few processes on purpose (one `stat`, then one `base64` or one `sha256sum`): a play's probes run in
 * one batch, and on a busy host every process started counts.
 */
export function fileProbeScript(path: string, content: 'none' | 'small' | 'always' = 'none'): string {
  const p = q(path);
  const body = content === 'always' ? `echo; base64 -w0 -- ${p}`
    : content === 'small' ? `if [ "\${s##* }" -le ${maxDiffBytes} ] 2>/dev/null; then echo; base64 -w0 -- ${p}; else sha256sum -- ${p}; fi`
    : `sha256sum -- ${p}`;
  return [
    `if [ -L ${p} ]; then echo link; readlink -- ${p}; stat -c '%a %U %G' -- ${p};`,
    `elif [ -d ${p} ]; then echo directory; stat -c '%a %U %G' -- ${p};`,
    `elif [ -f ${p} ]; then echo file; s=$(stat -c '%a %U %G %s' -- ${p}); echo "$s"; ${body}; echo;`,
    `elif [ -e ${p} ]; then echo other; else echo missing; fi`,
  ].join('\n');
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
