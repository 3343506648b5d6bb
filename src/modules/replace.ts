/**
 * `replace`: every match of a regular expression in a text file replaced (Ansible's replace), optionally
 * only between an `after` and a `before` match. The probe reads the file; the pure plan edits the text
 * and writes it with the engine's atomic write step, with a diff; nothing matching means no change.
 *
 * Expressions are JavaScript `RegExp`s with the `gm` flags (Python's `re.MULTILINE`), after a
 * translation of the Python spellings playbooks carry over from Ansible: `(?P<name>…)`, `(?P=name)`,
 * `\A`, `\Z`, and leading inline flags `(?i)`, `(?s)`, `(?m)`; in the replacement `\1`, `\g<1>`,
 * `\g<name>`, `\n`, `\t`, `\\`. What differs is listed in docs/modules/replace.md.
 */
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions} from '../core/types.ts';
import {fileProbe, parseFileState, type FileState} from '../facts/file.ts';
import {requireAbsolute, textFileAttrs, textFilePlan, textOf, type TextFileAttrs} from './textfile.ts';

export interface ReplaceArgs extends TextFileAttrs {
  /** Absolute path of the file to edit. */
  readonly path: string;
  /** The regular expression to find, applied with the `gm` flags: `^` and `$` match at each line. */
  readonly regexp: string;
  /** What each match becomes (default ''): `\1` or `$1` for a group, `\g<name>` or `$<name>` for a named one. */
  readonly replace?: string;
  /** Only replace after the first match of this expression (`.` matches newlines here, as Ansible). */
  readonly after?: string;
  /** Only replace before the last match of this expression (with `after`: the first match after it). */
  readonly before?: string;
}

const replaceArgs = z.strictObject({
  ...textFileAttrs,
  path: z.string(),
  regexp: z.string(),
  replace: z.optional(z.string()),
  after: z.optional(z.string()),
  before: z.optional(z.string()),
});
const replaceInSync: Exact<z.infer<typeof replaceArgs>, ReplaceArgs> = true;

/** A Python `re` pattern as a JavaScript `RegExp` source and flags (`base` plus leading inline flags). */
export function pythonRegExp(pattern: string, base: string): RegExp {
  let flags = base;
  let src = pattern;
  const inline = /^\(\?([aiLmsux]+)\)/.exec(src);
  if (inline) {
    for (const f of inline[1] ?? '') {
      if (f === 'x' || f === 'L') throw new Error(`inline flag (?${f}) is not supported`);
      if ((f === 'i' || f === 'm' || f === 's') && !flags.includes(f)) flags += f;
    }
    src = src.slice(inline[0].length);
  }
  // Outside character classes only; a backslash escapes the next character.
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src.charAt(i);
    if (c === '\\') {
      const n = src.charAt(i + 1);
      if (!inClass && n === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && n === 'Z') out += '(?![\\s\\S])';
      else out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (src.charAt(i + 1) === ']') { out += ']'; i++; } // `[]…]`: a literal ] first
      continue;
    }
    if (src.startsWith('(?P<', i)) { out += '(?<'; i += 3; continue; }
    if (src.startsWith('(?P=', i)) {
      const close = src.indexOf(')', i);
      out += `\\k<${src.slice(i + 4, close)}>`;
      i = close;
      continue;
    }
    out += c;
  }
  return new RegExp(out, flags);
}

/** A Python `re.sub` replacement as a JavaScript `String.replace` one. */
export function pythonReplacement(repl: string): string {
  let out = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl.charAt(i);
    if (c !== '\\') { out += c; continue; }
    const rest = repl.slice(i + 1);
    const num = /^\d{1,2}/.exec(rest);
    const named = /^g<(\w+)>/.exec(rest);
    if (num) { out += `$${num[0]}`; i += num[0].length; }
    else if (named) { out += /^\d+$/.test(named[1] ?? '') ? `$${named[1]}` : `$<${named[1]}>`; i += named[0].length; }
    else if (rest.startsWith('n')) { out += '\n'; i++; }
    else if (rest.startsWith('t')) { out += '\t'; i++; }
    else if (rest.startsWith('\\')) { out += '\\'; i++; }
    else out += c;
  }
  return out;
}

/**
 * Pure: the text with every match replaced, and how many there were; `section: false` when `after` or
 * `before` matched nothing (no change, as Ansible).
 */
export function replaceIn(text: string, a: Pick<ReplaceArgs, 'regexp' | 'replace' | 'after' | 'before'>): {text: string; count: number; section: boolean} {
  let start = 0;
  let end = text.length;
  if (a.after !== undefined || a.before !== undefined) {
    // Ansible: `after(?P<subsection>.*?)before`, `after(?P<subsection>.*)` or `(?P<subsection>.*)before`, DOTALL.
    const g = '(?<provisionSection>';
    const parts = a.after !== undefined && a.before !== undefined ? `(?:${source(a.after)})${g}[\\s\\S]*?)(?:${source(a.before)})`
      : a.after !== undefined ? `(?:${source(a.after)})${g}[\\s\\S]*)`
      : `${g}[\\s\\S]*)(?:${source(a.before ?? '')})`;
    const m = new RegExp(parts, `sd${flagsOf(a.after)}${flagsOf(a.before)}`.replace(/(.)(?=.*\1)/g, '')).exec(text);
    const at = m?.indices?.groups?.['provisionSection'];
    if (!at) return {text, count: 0, section: false};
    [start, end] = at;
  }
  const re = pythonRegExp(a.regexp, 'gm');
  const section = text.slice(start, end);
  let count = 0;
  const replaced = section.replace(re, (...m: unknown[]) => {
    count++;
    // Expand `$1`, `$<name>` against this match: the same as String.replace with a string would.
    const groups = typeof m[m.length - 1] === 'object' ? (m[m.length - 1] as Record<string, string | undefined>) : undefined;
    const nGroups = m.length - (groups ? 3 : 2);
    return pythonReplacement(a.replace ?? '').replace(/\$(\$|\d{1,2}|<(\w+)>)/g, (all, what: string, name?: string) => {
      if (what === '$') return '$';
      if (name !== undefined) return groups?.[name] ?? '';
      const k = Number(what);
      return k >= 1 && k < nGroups ? String(m[k] ?? '') : all;
    });
  });
  return {text: text.slice(0, start) + replaced + text.slice(end), count, section: true};
}

const source = (p: string): string => pythonRegExp(p, '').source;
const flagsOf = (p: string | undefined): string => (p === undefined ? '' : pythonRegExp(p, '').flags);

export const replaceModule: ModuleDef<ReplaceArgs, FileState> = {
  name: 'replace',
  schema: replaceArgs,
  describe: (a) => `${a.path}: /${a.regexp}/`,
  probe: (a) => ({...fileProbe(a.path, 'always'), parse: (out) => parseFileState(out.stdout)}),
  plan(have, a): Plan {
    requireAbsolute(a.path, 'path');
    if (have.kind === 'missing') return {steps: [], fail: `${a.path} does not exist`};
    const read = textOf(have, a.path);
    if ('fail' in read) return {steps: [], fail: read.fail};
    let r: ReturnType<typeof replaceIn>;
    try {
      r = replaceIn(read.text, a);
    } catch (err) {
      return {steps: [], fail: `bad regular expression: ${(err as Error).message}`};
    }
    if (!r.section) return {steps: [], reason: 'the after/before expressions match nothing: no change'};
    const unchanged = r.count === 0 ? 'pattern not found' : `${r.count} match${r.count > 1 ? 'es' : ''}, already replaced`;
    return textFilePlan(have, a.path, read.text, r.text, a, {changed: `replace ${r.count} match${r.count > 1 ? 'es' : ''}`, unchanged});
  },
};

/** Replace every match of a regular expression in a text file (Ansible's replace). */
export const replace = (args: ArgsOf<ReplaceArgs>, options?: TaskOptions): Task => makeTask(replaceModule, args, options);

void replaceInSync;
