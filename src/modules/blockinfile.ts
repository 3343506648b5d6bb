/**
 * `blockinfile`: a block of lines between two marker lines, kept in a text file (Ansible's
 * blockinfile). The probe reads the file; the pure plan finds the markers, replaces the block in place
 * (or inserts it, or removes it) and writes the file with the engine's atomic write step, with a diff.
 */
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions} from '../core/types.ts';
import {fileProbe, parseFileState, type FileState} from '../facts/file.ts';
import {requireAbsolute, textFileAttrs, textFilePlan, textOf, type TextFileAttrs} from './textfile.ts';

/** The default marker: `# BEGIN PROVISION MANAGED BLOCK` … `# END PROVISION MANAGED BLOCK`. */
export const defaultMarker = '# {mark} PROVISION MANAGED BLOCK';

export interface BlockInFileArgs extends TextFileAttrs {
  /** Absolute path of the file to edit. */
  readonly path: string;
  /** The lines between the markers (one trailing newline is ignored). An empty block removes the block, as Ansible. */
  readonly block?: string;
  /**
   * The marker line template; `{mark}` becomes `markerBegin` or `markerEnd`. Default
   * `# {mark} PROVISION MANAGED BLOCK`. Give each block of a file its own marker
   * (`# {mark} nginx upstreams`): the marker is what identifies the block.
   */
  readonly marker?: string;
  /** What `{mark}` becomes on the first marker line (default `BEGIN`). */
  readonly markerBegin?: string;
  /** What `{mark}` becomes on the last marker line (default `END`). */
  readonly markerEnd?: string;
  /** `present` (default): the block is in the file, as given; `absent`: the markers and the block are removed. */
  readonly state?: 'present' | 'absent';
  /**
   * Where a new block goes when the markers are not in the file: `EOF` (default), or after the last
   * line matching this regular expression (JavaScript syntax; end of file when none matches).
   * An existing block is replaced where it is.
   */
  readonly insertAfter?: string;
  /** Put a new block before the last line matching this regular expression, or `BOF` for the beginning. */
  readonly insertBefore?: string;
  /** Create the file when missing (default false: a missing file fails the task, unless state is absent). */
  readonly create?: boolean;
}

const blockInFileArgs = z.strictObject({
  ...textFileAttrs,
  path: z.string(),
  block: z.optional(z.string()),
  marker: z.optional(z.string().check(z.regex(/\{mark\}/, 'a marker with {mark} in it, e.g. "# {mark} PROVISION MANAGED BLOCK"'))),
  markerBegin: z.optional(z.string()),
  markerEnd: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
  insertAfter: z.optional(z.string()),
  insertBefore: z.optional(z.string()),
  create: z.optional(z.boolean()),
});
const blockInFileInSync: Exact<z.infer<typeof blockInFileArgs>, BlockInFileArgs> = true;

/** The two marker lines of a block. */
export function markers(a: Pick<BlockInFileArgs, 'marker' | 'markerBegin' | 'markerEnd'>): [string, string] {
  const m = a.marker ?? defaultMarker;
  return [m.split('{mark}').join(a.markerBegin ?? 'BEGIN'), m.split('{mark}').join(a.markerEnd ?? 'END')];
}

/** The lines of a text, each with its line ending (`\n`, `\r\n` or `\r`), as Python's `bytes.splitlines(True)`. */
function linesOf(text: string): string[] {
  return text.match(/[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$/g) ?? [];
}

/**
 * Pure: the file's text with the block put in (or taken out), Ansible's algorithm (ansible-core's
 * blockinfile, byte for byte): the last line equal to each marker line (with its `\n`) delimits an
 * existing block, which is replaced in place; without both markers, the block goes after the last line
 * matching `insertAfter` (before the last matching `insertBefore`, at BOF, or at the end). The line
 * before the block gets a newline if it has none; the rest of the file keeps its line endings, a
 * missing last newline included.
 */
export function editBlock(text: string, a: BlockInFileArgs): string {
  const [begin, end] = markers(a);
  const lines = linesOf(text);
  const block = a.block ?? '';
  const blockLines = (a.state ?? 'present') === 'absent' || block === '' ? [] : [`${begin}\n`, ...linesOf(block.endsWith('\n') ? block : `${block}\n`), `${end}\n`];
  let n0 = -1;
  let n1 = -1;
  // One difference: a marker line ending in `\r\n` is a marker too (ansible-core on Linux sees none).
  const is = (l: string, marker: string): boolean => l === `${marker}\n` || l === `${marker}\r\n`;
  lines.forEach((l, i) => {
    if (is(l, begin)) n0 = i;
    if (is(l, end)) n1 = i;
  });
  if (n0 < 0 || n1 < 0) {
    const insertAfter = a.insertAfter === undefined && a.insertBefore === undefined ? 'EOF' : a.insertAfter;
    const re = insertAfter !== undefined && insertAfter !== 'EOF' ? new RegExp(insertAfter)
      : a.insertBefore !== undefined && a.insertBefore !== 'BOF' ? new RegExp(a.insertBefore) : undefined;
    if (re) {
      n0 = -1;
      lines.forEach((l, i) => { if (re.test(l.endsWith('\n') ? l.slice(0, -1) : l)) n0 = i; });
      n0 = n0 < 0 ? lines.length : insertAfter !== undefined ? n0 + 1 : n0;
    } else {
      n0 = a.insertBefore !== undefined ? 0 : lines.length;
    }
  } else if (n0 < n1) {
    lines.splice(n0, n1 - n0 + 1);
  } else {
    lines.splice(n1, n0 - n1 + 1);
    n0 = n1;
  }
  const prev = lines[n0 - 1];
  if (prev !== undefined && !prev.endsWith('\n')) lines[n0 - 1] = `${prev}\n`;
  lines.splice(n0, 0, ...blockLines);
  return lines.join('');
}

export const blockInFileModule: ModuleDef<BlockInFileArgs, FileState> = {
  name: 'blockinfile',
  schema: blockInFileArgs,
  describe: (a) => `${a.path}: ${markers(a)[0]}`,
  probe: (a) => ({...fileProbe(a.path, 'always'), parse: (out) => parseFileState(out.stdout)}),
  plan(have, a): Plan {
    requireAbsolute(a.path, 'path');
    const absent = (a.state ?? 'present') === 'absent';
    if (a.insertAfter !== undefined && a.insertBefore !== undefined) return {steps: [], fail: 'insertAfter and insertBefore cannot both be set'};
    if (have.kind === 'missing' && absent) return {steps: [], reason: 'file missing: no block to remove'};
    if (have.kind === 'missing' && !a.create) return {steps: [], fail: `${a.path} does not exist (set create: true to create it)`};
    const read = textOf(have, a.path);
    if ('fail' in read) return {steps: [], fail: read.fail};
    const after = editBlock(read.text, a);
    const [begin] = markers(a);
    const hadBlock = read.text.split(/(?<=\n)/).some((l) => l === `${begin}\n` || l === `${begin}\r\n`);
    return textFilePlan(have, a.path, read.text, after, a, {
      changed: have.kind === 'missing' ? 'create file with block' : absent || (a.block ?? '').replace(/\r?\n$/, '') === '' ? 'remove block' : hadBlock ? 'update block' : 'insert block',
      unchanged: absent ? 'no block to remove' : 'block already as given',
    });
  },
};

/** Keep a block of lines between marker lines in a text file (Ansible's blockinfile). */
export const blockinfile = (args: ArgsOf<BlockInFileArgs>, options?: TaskOptions): Task => makeTask(blockInFileModule, args, options);

void blockInFileInSync;
