/**
 * What the modules that edit a text file in place share (`blockinfile`, `replace`): the file's text
 * from the probe, and the plan that writes the edited text (atomic write step, with its diff) or, when
 * the text is already right, brings only the attributes in line. Not a task itself.
 */
import {argv} from '../core/cmd.ts';
import {z} from '../core/validate.ts';
import type {Plan, Step} from '../core/types.ts';
import {formatMode, parseMode, type FileState} from '../facts/file.ts';

/** Ownership and permissions of an edited file. */
export interface TextFileAttrs {
  /** Octal mode, e.g. '0644'. Unset: an existing file keeps its own, a new one gets 0644. */
  readonly mode?: string;
  /** Owner user name. Unset: leave as is. */
  readonly owner?: string;
  /** Owner group name. Unset: leave as is. */
  readonly group?: string;
  /** A command run on the temp file before it replaces the file; `%s` is the temp file (e.g. `visudo -cf %s`). */
  readonly validate?: string;
}

export const textFileAttrs = {
  mode: z.optional(z.string()),
  owner: z.optional(z.string()),
  group: z.optional(z.string()),
  validate: z.optional(z.string()),
};

export function requireAbsolute(path: string, field: string): void {
  if (!path.startsWith('/')) throw new Error(`${field} must be an absolute path, got '${path}'`);
}

/** The file's text (UTF-8), or a reason it cannot be edited. `missing` reads as the empty text. */
export function textOf(have: FileState, path: string): {text: string; exists: boolean} | {fail: string} {
  if (have.kind === 'missing') return {text: '', exists: false};
  if (have.kind !== 'file') return {fail: `${path} is a ${have.kind}, not a file`};
  if (have.content === undefined) return {fail: `${path}: its content could not be read`};
  return {text: have.content.toString('utf8'), exists: true};
}

/**
 * The plan that turns `before` into `after` at `path`: one write step (temp file, validate, rename)
 * with the diff when the text differs, else chown/chmod when the attributes differ, else nothing with
 * `unchanged` as the reason. A rewritten file keeps its owner, group and mode unless others are asked.
 */
export function textFilePlan(have: FileState, path: string, before: string, after: string, a: TextFileAttrs, reasons: {changed: string; unchanged: string}): Plan {
  const file = have.kind === 'file' ? have : undefined;
  if (after !== before || !file) {
    const step: Step = {
      kind: 'write',
      dest: path,
      content: Buffer.from(after),
      mode: a.mode !== undefined ? formatMode(parseMode(a.mode)) : file ? formatMode(file.mode) : undefined,
      owner: a.owner ?? file?.owner,
      group: a.group ?? file?.group,
      validate: a.validate,
    };
    return {steps: [step], diff: {path, before, after}, reason: reasons.changed};
  }
  const steps: Step[] = [];
  const changes: string[] = [];
  const owner = a.owner !== undefined && a.owner !== file.owner ? a.owner : '';
  const group = a.group !== undefined && a.group !== file.group ? a.group : '';
  if (owner || group) {
    steps.push({kind: 'exec', cmd: argv('chown', `${owner}${group ? `:${group}` : ''}`, '--', path)});
    changes.push(`owner ${file.owner}:${file.group} → ${owner || file.owner}:${group || file.group}`);
  }
  if (a.mode !== undefined && parseMode(a.mode) !== file.mode) {
    steps.push({kind: 'exec', cmd: argv('chmod', formatMode(parseMode(a.mode)), '--', path)});
    changes.push(`mode ${formatMode(file.mode)} → ${formatMode(parseMode(a.mode))}`);
  }
  return steps.length > 0 ? {steps, reason: `${reasons.unchanged}; ${changes.join(', ')}`} : {steps, reason: reasons.unchanged};
}
