/**
 * Mustache rendering and role file lookup. Pure apart from reading the role's files.
 * Templates are rendered without HTML escaping: they are config files, not web pages.
 *
 * A variable that a template prints (`{{name}}`, `{{{name}}}`, `{{&name}}`) and nobody defines fails
 * the render, naming the template's file and line, as Ansible fails an undefined Jinja2 variable;
 * sections (`{{#name}}`, `{{^name}}`) treat a missing variable as false, as mustache always did.
 */
import {existsSync, readFileSync} from 'node:fs';
import {join, normalize, relative} from 'node:path';
import Mustache from 'mustache';

function inside(dir: string, sub: string, name: string): string {
  const path = normalize(join(dir, sub, name));
  if (!path.startsWith(normalize(join(dir, sub)) + '/')) throw new Error(`'${name}' escapes the ${sub}/ folder`);
  return path;
}

/** The first of `dirs` holding `<sub>/<name>`; none: an error naming every place looked in. */
function findFile(dirs: readonly string[], sub: 'templates' | 'files', name: string): string {
  const paths = dirs.map((d) => inside(d, sub, name));
  const found = paths.find((p) => existsSync(p));
  if (found === undefined) {
    const shown = paths.map((p) => relative(process.cwd(), p) || p);
    throw new Error(`${sub.slice(0, -1)} '${name}' not found (looked for ${shown.length > 0 ? shown.join(', ') : 'it in no folder'})`);
  }
  return found;
}

export interface RenderOptions {
  /** Render a variable nobody defines as an empty string instead of failing. */
  readonly allowMissingVars?: boolean;
  /** The template's path, for error messages. */
  readonly file?: string;
}

/** A template prints a variable that nobody defines. */
export class MissingVariableError extends Error {
  constructor(message: string, readonly variable: string) {
    super(message);
    this.name = 'MissingVariableError';
  }
}

type Token = [string, string, number, number, ...unknown[]];
interface MustacheContext {
  lookup(name: string): unknown;
}

type StrictWriter = {
  templateCache: unknown;
  escapedValue(token: Token, context: MustacheContext, config: unknown): unknown;
  unescapedValue(token: Token, context: MustacheContext): unknown;
  render(template: string, view: unknown, partials: undefined, config: unknown): string;
};

/** Parsed templates by text, shared by every strict render (mustache's own cache: a memo, as Mustache.render keeps). */
const parsedTemplates = (new Mustache.Writer() as unknown as StrictWriter).templateCache;

/**
 * A writer for one strict render: mustache's Writer prints a variable through these two methods
 * (mustache.js 4), checked first here against the view; a missing one names `where` (the template's
 * file and line). Made per render, so what it reports on is its own, not a module's.
 */
function strictWriter(where: {readonly template: string; readonly file?: string | undefined}): StrictWriter {
  const writer = new Mustache.Writer() as unknown as StrictWriter;
  writer.templateCache = parsedTemplates;
  const checked = (token: Token, context: MustacheContext): void => {
    if (context.lookup(token[1]) !== undefined) return;
    const line = where.template.slice(0, token[2]).split('\n').length;
    const at = where.file ? `${relative(process.cwd(), where.file) || where.file}:${line}` : `line ${line}`;
    throw new MissingVariableError(`${at}: variable '${token[1]}' is not defined (define it, or set allowMissingVars: true on the task)`, token[1]);
  };
  const escaped = writer.escapedValue.bind(writer);
  const unescaped = writer.unescapedValue.bind(writer);
  writer.escapedValue = (token, context, cfg) => (checked(token, context), escaped(token, context, cfg));
  writer.unescapedValue = (token, context) => (checked(token, context), unescaped(token, context));
  return writer;
}

/** Render a mustache string with a view; no escaping. */
export function renderString(template: string, view: Record<string, unknown>, options: RenderOptions = {}): string {
  const config = {escape: (s: string) => s};
  if (options.allowMissingVars) return Mustache.render(template, view, undefined, config);
  return strictWriter({template, file: options.file}).render(template, view, undefined, config);
}

/** Render `<dir>/templates/<name>` of the first of `dirs` that has it (a role's folder, or the playbook's). */
export function renderTemplate(dirs: string | readonly string[], name: string, view: Record<string, unknown>, options: RenderOptions = {}): string {
  const path = findFile(typeof dirs === 'string' ? [dirs] : dirs, 'templates', name);
  return renderString(readFileSync(path, 'utf8'), view, {...options, file: path});
}

/** Read `<dir>/files/<name>` of the first of `dirs` that has it. */
export function readRoleFileContent(dirs: string | readonly string[], name: string): Buffer {
  return readFileSync(findFile(typeof dirs === 'string' ? [dirs] : dirs, 'files', name));
}
