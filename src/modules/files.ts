/**
 * Files: `file` (file, directory, link, absent, touch), `copy` (content or a role file), `template`
 * (mustache from the role's templates/) and `lineinfile`. Content is written to a temp file beside
 * the destination, validated, then renamed (the engine's `write` step).
 */
import {createHash} from 'node:crypto';
import {argv, type Cmd} from '../core/cmd.ts';
import {Secret} from '../core/secret.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, TaskOptions, Task, Vars} from '../core/types.ts';
import {fileProbe, formatMode, parseFileState, parseMode, type Attrs, type FileState} from '../facts/file.ts';

/** Ownership and permissions, shared by every file module. */
export interface FileAttrs {
  /** Octal mode, e.g. '0644'. Unset: leave as is (a new file written with content gets 0644; a directory, an empty file from touch or a link made by `file` gets the umask's). */
  readonly mode?: string;
  /** Owner user name. Unset: leave as is. */
  readonly owner?: string;
  /** Owner group name. Unset: leave as is. */
  readonly group?: string;
}

const fileAttrs = {
  mode: z.optional(z.string()),
  owner: z.optional(z.string()),
  group: z.optional(z.string()),
};

function requireAbsolute(path: string, field: string): void {
  if (!path.startsWith('/')) throw new Error(`${field} must be an absolute path, got '${path}'`);
}

/** The steps that bring an existing path's attributes to the wanted ones (no content change). */
export function attrSteps(path: string, have: Attrs, want: FileAttrs, follow = true): {steps: Step[]; changes: string[]} {
  const steps: Step[] = [];
  const changes: string[] = [];
  const own = [want.owner && want.owner !== have.owner ? want.owner : '', want.group && want.group !== have.group ? `:${want.group}` : ''].join('');
  if (own) {
    steps.push({kind: 'exec', cmd: argv('chown', ...(follow ? [] : ['-h']), own, '--', path)});
    changes.push(`owner ${have.owner}:${have.group} → ${want.owner ?? have.owner}:${want.group ?? have.group}`);
  }
  if (want.mode !== undefined && parseMode(want.mode) !== have.mode) {
    steps.push({kind: 'exec', cmd: argv('chmod', formatMode(parseMode(want.mode)), '--', path)});
    changes.push(`mode ${formatMode(have.mode)} → ${formatMode(parseMode(want.mode))}`);
  }
  return {steps, changes};
}

// ---------------------------------------------------------------- file

export interface FileArgs extends FileAttrs {
  /** Absolute path on the host. */
  readonly path: string;
  /**
   * `directory`: create (with parents) if missing; `file`: must exist, only attributes are managed;
   * `touch`: create an empty file if missing (an existing file or directory keeps its times, as Ansible's
   * `modification_time: preserve`; only its attributes are managed); `link`: a symlink to `src`; `absent`: removed (recursively).
   */
  readonly state: 'file' | 'directory' | 'link' | 'absent' | 'touch';
  /** Link target, for `state: 'link'`. */
  readonly src?: string;
}

const fileArgs = z.strictObject({
  ...fileAttrs,
  path: z.string(),
  state: z.enum(['file', 'directory', 'link', 'absent', 'touch']),
  src: z.optional(z.string()),
});
const fileInSync: Exact<z.infer<typeof fileArgs>, FileArgs> = true;

export const fileModule: ModuleDef<FileArgs, FileState> = {
  name: 'file',
  schema: fileArgs,
  describe: (a) => `${a.path} (${a.state})`,
  probe: (a) => ({...fileProbe(a.path), parse: (out) => parseFileState(out.stdout)}),
  plan(have, a): Plan {
    requireAbsolute(a.path, 'path');
    switch (a.state) {
      case 'absent':
        if (have.kind === 'missing') return {steps: [], reason: 'already absent'};
        return {steps: [{kind: 'exec', cmd: argv('rm', '-rf', '--', a.path)}], reason: `remove ${have.kind}`};
      case 'directory': {
        if (have.kind === 'missing') {
          const steps: Step[] = [{kind: 'exec', cmd: argv('mkdir', '-p', '--', a.path)}];
          const {steps: fix} = attrSteps(a.path, {mode: -1, owner: '', group: ''}, a);
          return {steps: [...steps, ...fix], reason: 'create directory'};
        }
        if (have.kind !== 'directory') return {steps: [], fail: `${a.path} exists and is a ${have.kind}, not a directory`};
        return attrPlan(a.path, have, a);
      }
      case 'file':
        if (have.kind === 'missing') return {steps: [], fail: `${a.path} does not exist (use state 'touch' to create it)`};
        if (have.kind !== 'file') return {steps: [], fail: `${a.path} is a ${have.kind}, not a file`};
        return attrPlan(a.path, have, a);
      case 'touch': {
        if (have.kind === 'missing') {
          const {steps: fix} = attrSteps(a.path, {mode: -1, owner: '', group: ''}, a);
          return {steps: [{kind: 'exec', cmd: argv('touch', '--', a.path)}, ...fix], reason: 'create empty file'};
        }
        // An existing directory is touched too (as Ansible): only its attributes are managed.
        if (have.kind !== 'file' && have.kind !== 'directory') return {steps: [], fail: `${a.path} is a ${have.kind}, not a file`};
        return attrPlan(a.path, have, a);
      }
      case 'link': {
        if (a.src === undefined) return {steps: [], fail: "state 'link' needs src"};
        if (have.kind === 'link' && have.target === a.src) return attrPlan(a.path, have, {...a, mode: undefined}, false);
        if (have.kind === 'directory') return {steps: [], fail: `${a.path} is a directory; remove it before making a link`};
        const steps: Step[] = [{kind: 'exec', cmd: argv('ln', '-sfn', '--', a.src, a.path)}];
        const {steps: fix} = attrSteps(a.path, {mode: -1, owner: '', group: ''}, {...a, mode: undefined}, false);
        return {steps: [...steps, ...fix], reason: have.kind === 'link' ? `relink ${have.target} → ${a.src}` : `link → ${a.src}`};
      }
    }
  },
};

function attrPlan(path: string, have: Attrs, want: FileAttrs, follow = true): Plan {
  const {steps, changes} = attrSteps(path, have, want, follow);
  return steps.length === 0 ? {steps, reason: `already ${formatMode(have.mode)} ${have.owner}:${have.group}`} : {steps, reason: changes.join(', ')};
}

// ---------------------------------------------------------------- copy / template

export interface CopyArgs extends FileAttrs {
  /** Absolute destination path. */
  readonly dest: string;
  /** The content to write. A Secret's content never appears in diffs or output. */
  readonly content: string | Buffer | Secret;
  /** A command run on the temp file before it replaces `dest`; `%s` is the temp file (e.g. `nginx -t -c %s`). */
  readonly validate?: string;
}

const content = z.union([z.string(), z.instanceof(Buffer), z.instanceof(Secret)]);
const copyArgs = z.strictObject({...fileAttrs, dest: z.string(), content, validate: z.optional(z.string())});
const copyInSync: Exact<z.infer<typeof copyArgs>, CopyArgs> = true;

function contentBuffer(c: CopyArgs['content']): Buffer {
  if (c instanceof Secret) return Buffer.from(c.reveal());
  return typeof c === 'string' ? Buffer.from(c) : c;
}

function isText(b: Buffer): boolean {
  return !b.subarray(0, 8000).includes(0);
}

export const copyModule: ModuleDef<CopyArgs, FileState> = {
  name: 'copy',
  schema: copyArgs,
  describe: (a) => a.dest,
  // The sha256 wanted goes with the probe (not for secrets): a merged probe then reads back only files that differ.
  probe: (a) => ({
    ...fileProbe(a.dest, 'small', a.content instanceof Secret ? undefined : createHash('sha256').update(contentBuffer(a.content)).digest('hex')),
    parse: (out) => parseFileState(out.stdout),
  }),
  plan(have, a): Plan {
    requireAbsolute(a.dest, 'dest');
    const want = contentBuffer(a.content);
    const secret = a.content instanceof Secret;
    if (have.kind !== 'missing' && have.kind !== 'file') return {steps: [], fail: `${a.dest} exists and is a ${have.kind}, not a file`};
    const sha = createHash('sha256').update(want).digest('hex');
    if (have.kind === 'file' && have.sha256 === sha) return attrPlan(a.dest, have, a);
    const before = have.kind === 'file' ? have.content : Buffer.alloc(0);
    const diff =
      secret ? {path: a.dest, before: have.kind === 'file' ? '***\n' : '', after: '***\n'}
      : before !== undefined && isText(before) && isText(want) && want.length <= 4 * 1024 * 1024
        ? {path: a.dest, before: before.toString('utf8'), after: want.toString('utf8')}
        : {path: a.dest, before: `(binary or large: ${have.kind === 'file' ? have.size : 0} bytes)\n`, after: `(${want.length} bytes, sha256 ${sha.slice(0, 12)})\n`};
    const attrsFrom = have.kind === 'file' ? have : undefined;
    return {
      steps: [{
        kind: 'write',
        dest: a.dest,
        content: want,
        // A replaced file keeps its attributes unless new ones are asked for.
        mode: a.mode !== undefined ? formatMode(parseMode(a.mode)) : attrsFrom ? formatMode(attrsFrom.mode) : undefined,
        owner: a.owner ?? attrsFrom?.owner,
        group: a.group ?? attrsFrom?.group,
        validate: a.validate,
      }],
      diff,
      reason: have.kind === 'missing' ? 'create file' : 'content differs',
    };
  },
};

/** Copy arguments as a playbook writes them: inline `content`, or `src`, a file of the role. */
export type CopyInput = Omit<CopyArgs, 'content'> & ({readonly content: CopyArgs['content']; readonly src?: never} | {readonly src: string; readonly content?: never});

const copyInput = z.union([
  z.strictObject({...copyArgs.shape, src: z.optional(z.undefined())}),
  z.strictObject({...copyArgs.shape, content: z.optional(z.undefined()), src: z.string()}),
]);

/**
 * Write a file with the given content, or with a file of the role (`roles/<role>/files/<src>`; in a
 * play's own tasks, `files/<src>` beside the playbook).
 */
export function copy(args: ArgsOf<CopyInput>, options?: TaskOptions): Task {
  return makeTask<CopyInput, CopyArgs, FileState>({
    module: copyModule,
    schema: copyInput as z.ZodMiniType<CopyInput>,
    describe: (a) => a.dest,
    toArgs: (a, ctx) => {
      const {src, ...rest} = a;
      return src !== undefined ? {...rest, content: ctx.readFile(src)} : (rest as CopyArgs);
    },
  }, args, options);
}

export interface TemplateArgs extends Omit<CopyArgs, 'content'> {
  /** Template name under the role's `templates/` (in a play's own tasks, `templates/` beside the playbook), mustache. */
  readonly src: string;
  /** Extra variables for this template, over the host's. */
  readonly vars?: Vars;
  /** Render a variable nobody defines as empty instead of failing the task (default false, as Ansible). */
  readonly allowMissingVars?: boolean;
}

const templateArgs = z.strictObject({
  ...fileAttrs,
  dest: z.string(),
  validate: z.optional(z.string()),
  src: z.string(),
  vars: z.optional(z.record(z.string(), z.unknown())),
  allowMissingVars: z.optional(z.boolean()),
});
const templateInSync: Exact<z.infer<typeof templateArgs>, TemplateArgs> = true;

/** Render a mustache template of the role with the host's variables and write it like `copy`. */
export function template(args: ArgsOf<TemplateArgs>, options?: TaskOptions): Task {
  return makeTask<TemplateArgs, CopyArgs, FileState>({
    module: copyModule,
    name: 'template',
    schema: templateArgs,
    describe: (a) => a.dest,
    toArgs: ({src, vars, allowMissingVars, ...rest}, ctx) => ({...rest, content: ctx.render(src, vars, {allowMissingVars})}),
  }, args, options);
}

export const file = (args: ArgsOf<FileArgs>, options?: TaskOptions): Task => makeTask(fileModule, args, options);

// ---------------------------------------------------------------- lineinfile

export interface LineInFileArgs extends FileAttrs {
  /** Absolute path of the file to edit. */
  readonly path: string;
  /** The line wanted (state present). */
  readonly line?: string;
  /** A regular expression: the last matching line is replaced (present) or every matching line removed (absent). */
  readonly regexp?: string;
  /** `present` (default) or `absent`. */
  readonly state?: 'present' | 'absent';
  /** Where a new line goes when nothing matches: 'EOF' (default), 'BOF', or after the last line matching this regexp. */
  readonly insertAfter?: string;
  /** Put a new line before the last line matching this regexp ('BOF' for the beginning). */
  readonly insertBefore?: string;
  /** Create the file if missing (default false: a missing file fails the task). */
  readonly create?: boolean;
  /** Validate command with `%s`, as for copy. */
  readonly validate?: string;
}

/** The lines of a text, each with its `\n` (the last one may have none), as Python's `readlines`. */
function linesOf(text: string): string[] {
  return text === '' ? [] : text.split(/(?<=\n)/);
}

/** A line as lineinfile compares it with `line`: without its trailing `\r` and `\n` characters. */
const bareLine = (l: string): string => l.replace(/[\r\n]+$/, '');
/** A line as a regular expression searches it: without its `\n` (Python's `$` matches before it). */
const searchedLine = (l: string): string => (l.endsWith('\n') ? l.slice(0, -1) : l);

/**
 * Pure: the file's text after the edit, Ansible's lineinfile algorithm (ansible-core's `present` and
 * `absent`, without backrefs, firstmatch and search_string): the last line matching `regexp` (else the
 * last line equal to `line`) is replaced; without one, `line` goes after the last line matching
 * `insertAfter` (before the last matching `insertBefore`; BOF; EOF, the default and the fallback).
 * Lines keep their own endings; a file without a last newline keeps it so unless a line is added after
 * it. One deliberate difference: ansible-core 2.14 joins a line inserted after the last line of such a
 * file onto it (`b` + `x` → `bx`); here the last line gets its newline first.
 */
export function editLines(text: string, a: LineInFileArgs): string {
  const lines = linesOf(text);
  const re = a.regexp !== undefined ? new RegExp(a.regexp) : undefined;
  if ((a.state ?? 'present') === 'absent') {
    return lines.filter((l) => !(re ? re.test(searchedLine(l)) : bareLine(l) === a.line)).join('');
  }
  const line = a.line ?? '';
  const insertBefore = a.insertBefore === '' ? undefined : a.insertBefore;
  const insertAfter = a.insertAfter === '' ? undefined : a.insertAfter ?? (insertBefore === undefined ? 'EOF' : undefined);
  const ins = insertAfter !== undefined && insertAfter !== 'BOF' && insertAfter !== 'EOF' ? new RegExp(insertAfter)
    : insertBefore !== undefined && insertBefore !== 'BOF' ? new RegExp(insertBefore) : undefined;
  let found = -1;
  let insertAt = -1;
  if (re) lines.forEach((l, i) => { if (re.test(searchedLine(l))) found = i; });
  if (found < 0) {
    lines.forEach((l, i) => {
      if (bareLine(l) === line) found = i;
      else if (ins?.test(searchedLine(l))) insertAt = insertAfter !== undefined ? i + 1 : i;
    });
  }
  const newLine = line.endsWith('\n') ? line : `${line}\n`;
  /** The last line with its newline, before a line is added after it. */
  const endLast = (): void => {
    const last = lines[lines.length - 1];
    if (last !== undefined && !/[\r\n]$/.test(last)) lines[lines.length - 1] = `${last}\n`;
  };
  if (found >= 0) {
    if (lines[found] !== newLine) lines[found] = newLine;
  } else if (insertBefore === 'BOF' || insertAfter === 'BOF') {
    lines.unshift(`${line}\n`);
  } else if (insertAfter === 'EOF' || insertAt < 0) {
    endLast();
    lines.push(`${line}\n`);
  } else if (insertAfter !== undefined) {
    // Not again when the line is already right after the match.
    if (insertAt === lines.length) {
      if (bareLine(lines[insertAt - 1] ?? '') !== line) { endLast(); lines.push(`${line}\n`); }
    } else if (bareLine(lines[insertAt] ?? '') !== line) {
      lines.splice(insertAt, 0, `${line}\n`);
    }
  } else {
    lines.splice(insertAt, 0, `${line}\n`);
  }
  return lines.join('');
}

const lineInFileArgs = z.strictObject({
  ...fileAttrs,
  path: z.string(),
  line: z.optional(z.string()),
  regexp: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
  insertAfter: z.optional(z.string()),
  insertBefore: z.optional(z.string()),
  create: z.optional(z.boolean()),
  validate: z.optional(z.string()),
});
const lineInFileInSync: Exact<z.infer<typeof lineInFileArgs>, LineInFileArgs> = true;

export const lineInFileModule: ModuleDef<LineInFileArgs, FileState> = {
  name: 'lineinfile',
  schema: lineInFileArgs,
  describe: (a) => `${a.path}: ${a.line ?? a.regexp ?? ''}`,
  probe: (a) => ({...fileProbe(a.path, 'always'), parse: (out) => parseFileState(out.stdout)}),
  plan(have, a): Plan {
    requireAbsolute(a.path, 'path');
    if ((a.state ?? 'present') === 'present' && a.line === undefined) return {steps: [], fail: "state 'present' needs line"};
    if (have.kind === 'missing' && (a.state ?? 'present') === 'absent') return {steps: [], reason: 'file not present'};
    if (have.kind === 'missing' && !a.create) return {steps: [], fail: `${a.path} does not exist (set create: true to create it)`};
    if (have.kind !== 'missing' && have.kind !== 'file') return {steps: [], fail: `${a.path} is a ${have.kind}, not a file`};
    const before = have.kind === 'file' ? (have.content ?? Buffer.alloc(0)).toString('utf8') : '';
    const after = editLines(before, a);
    if (after === before && have.kind === 'file') return attrPlan(a.path, have, a);
    if (after === before) return {steps: [], reason: 'nothing to remove'};
    const mode = a.mode !== undefined ? formatMode(parseMode(a.mode)) : have.kind === 'file' ? formatMode(have.mode) : undefined;
    const step: Step = {kind: 'write', dest: a.path, content: Buffer.from(after), mode, owner: a.owner ?? (have.kind === 'file' ? have.owner : undefined), group: a.group ?? (have.kind === 'file' ? have.group : undefined), validate: a.validate};
    return {steps: [step], diff: {path: a.path, before, after}, reason: have.kind === 'missing' ? 'create file with line' : 'line changed'};
  },
};

export const lineinfile = (args: ArgsOf<LineInFileArgs>, options?: TaskOptions): Task => makeTask(lineInFileModule, args, options);

export type {Cmd};
void [fileInSync, copyInSync, templateInSync, lineInFileInSync];
