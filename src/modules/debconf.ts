/**
 * `debconf`: one answer in the debconf database, set before the package that asks is installed (or
 * reconfigured), as `debconf-set-selections` does. The probe reads the package's answers with
 * `debconf-show` (package `debconf`, always there); `debconf-show` omits passwords, so a `password`
 * answer is read with `debconf-get-selections` (package `debconf-utils`) and only its sha256 leaves the
 * host. The plan is one `debconf-set-selections` with the answer on its standard input, only when the
 * answer differs. A password never reaches argv, output or diffs. Setting an answer does not reconfigure
 * an installed package (`dpkg-reconfigure -f noninteractive <name>` does, through a `command` task).
 */
import {createHash} from 'node:crypto';
import {argv, q} from '../core/cmd.ts';
import {Secret} from '../core/secret.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions} from '../core/types.ts';

export type DebconfType = 'string' | 'password' | 'boolean' | 'select' | 'multiselect' | 'note' | 'text' | 'title' | 'error';

export interface DebconfArgs {
  /** The package owning the question (`tzdata`, `mysql-server`), as `debconf-show` lists it. */
  readonly name: string;
  /** The question (`tzdata/Areas`, `mysql-server/root_password`). */
  readonly question: string;
  /** The question's type, as the package's templates declare it; `password` answers are secrets. */
  readonly vtype: DebconfType;
  /**
   * The answer: text; `true`/`false` for a `boolean`; `a, b` (or a list) for a `multiselect`, compared
   * as a set. With `vtype: 'password'` pass a `Secret` (`secret(vars.db_root_password)`); a plain
   * string is masked too.
   */
  readonly value: string | boolean | readonly string[] | Secret;
}

const debconfTypes = ['string', 'password', 'boolean', 'select', 'multiselect', 'note', 'text', 'title', 'error'] as const;
const debconfArgs = z.strictObject({
  name: z.string(),
  question: z.string(),
  vtype: z.enum(debconfTypes),
  value: z.union([z.string(), z.boolean(), z.array(z.string()), z.instanceof(Secret)]),
});
const debconfInSync: Exact<z.infer<typeof debconfArgs>, DebconfArgs> = true;

/** The answer as the probe found it. */
export type DebconfState =
  /** The package has no answer to this question (not installed, never preseeded, or owned by another package). */
  | {readonly kind: 'missing'}
  /** The answer (`debconf-show`). */
  | {readonly kind: 'value'; readonly value: string}
  /** A password answer: the sha256 of its value (`debconf-get-selections`, on the host). */
  | {readonly kind: 'password'; readonly sha256: string}
  /** A password that cannot be read back: `debconf-get-selections` (debconf-utils) is not installed. */
  | {readonly kind: 'unknown'};

const nameRe = /^[a-z0-9][a-z0-9+.-]*$/;
const questionRe = /^[A-Za-z0-9][A-Za-z0-9+._/:-]*$/;
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const clear = (v: DebconfArgs['value']): string => (v instanceof Secret ? v.reveal() : typeof v === 'boolean' ? String(v) : typeof v === 'string' ? v : v.join(', '));

/** The value as compared: multiselect as a sorted set, booleans in debconf's spelling. */
function normal(vtype: DebconfType, v: string): string {
  if (vtype === 'multiselect') return [...new Set(v.split(',').map((s) => s.trim()).filter((s) => s !== ''))].sort().join(', ');
  if (vtype === 'boolean') return /^(yes|on|1)$/i.test(v.trim()) ? 'true' : /^(no|off|0)$/i.test(v.trim()) ? 'false' : v.trim();
  return v;
}

/** Pure parser of `debconf-show <name>`'s lines (`* tzdata/Areas: Europe`, `  x/y:` when empty). */
export function parseDebconfShow(stdout: string, question: string): DebconfState {
  for (const line of stdout.split('\n')) {
    const m = /^[* ] ([^:]+):(?: (.*))?$/.exec(line);
    if (m && m[1] === question) return {kind: 'value', value: m[2] ?? ''};
  }
  return {kind: 'missing'};
}

function probeScript(a: DebconfArgs): string {
  if (a.vtype !== 'password') return `debconf-show ${q(a.name)} 2>/dev/null; true`;
  // Only the hash leaves the host. Lines are `owner<TAB>question<TAB>type<TAB>value`.
  return [
    'if command -v debconf-get-selections >/dev/null 2>&1; then',
    `  if v=$(debconf-get-selections 2>/dev/null | awk -F '\\t' -v p=${q(a.name)} -v k=${q(a.question)} '$1 == p && $2 == k { sub(/^[^\\t]*\\t[^\\t]*\\t[^\\t]*\\t?/, ""); print; f = 1; exit } END { exit !f }'); then`,
    `    printf 'password %s\\n' "$(printf '%s' "$v" | sha256sum | cut -d ' ' -f 1)"`,
    '  else echo missing; fi',
    'else echo unknown; fi',
  ].join('\n');
}

/** Pure parser of the password probe. */
export function parsePasswordProbe(stdout: string): DebconfState {
  const line = stdout.trim();
  const m = /^password ([0-9a-f]{64})$/.exec(line);
  if (m?.[1]) return {kind: 'password', sha256: m[1]};
  return line === 'unknown' ? {kind: 'unknown'} : {kind: 'missing'};
}

function problem(a: DebconfArgs): string | undefined {
  if (!nameRe.test(a.name)) return `bad package name '${a.name}'`;
  if (!questionRe.test(a.question)) return `bad question '${a.question}'`;
  if (/\n/.test(clear(a.value))) return 'the value may not hold a newline (debconf-set-selections reads one line per answer)';
  if (a.vtype === 'boolean' && !/^(true|false)$/.test(normal('boolean', clear(a.value)))) return `a boolean answer is true or false, got '${clear(a.value)}'`;
  return undefined;
}

export const debconfModule: ModuleDef<DebconfArgs, DebconfState> = {
  name: 'debconf',
  schema: debconfArgs,
  describe: (a) => `${a.name} ${a.question}`,
  probe: (a) => ({
    script: probeScript(a),
    parse: (out) => (a.vtype === 'password' ? parsePasswordProbe(out.stdout) : parseDebconfShow(out.stdout, a.question)),
  }),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const value = a.vtype === 'password' ? clear(a.value) : normal(a.vtype, clear(a.value));
    const line = `${a.name} ${a.question} ${a.vtype} ${value}\n`;
    if (a.vtype === 'password' || a.value instanceof Secret) {
      if (have.kind === 'password' && have.sha256 === sha256(value)) return {steps: [], reason: `${a.question} already set (password)`};
      if (have.kind === 'value' && have.value === value) return {steps: [], reason: `${a.question} already set (secret)`};
      const why = have.kind === 'unknown' ? ' (debconf-get-selections, in debconf-utils, is not installed: the password cannot be compared)' : '';
      return {steps: [{kind: 'exec', cmd: argv('debconf-set-selections'), stdin: new Secret(line)}], reason: `set ${a.question} (value hidden)${why}`};
    }
    const before = have.kind === 'value' ? normal(a.vtype, have.value) : undefined;
    if (before === value) return {steps: [], reason: `${a.question} already '${value}'`};
    return {
      steps: [{kind: 'exec', cmd: argv('debconf-set-selections'), stdin: Buffer.from(line)}],
      diff: {path: `debconf ${a.name}`, before: before === undefined ? '' : `${a.question}: ${before}\n`, after: `${a.question}: ${value}\n`},
      reason: before === undefined ? `set ${a.question} to '${value}'` : `change ${a.question} from '${before}' to '${value}'`,
    };
  },
  // A password's clear value, even as a plain string: masked on every output path.
  secrets: (a) => (a.vtype === 'password' || a.value instanceof Secret ? [clear(a.value)].filter((s) => s !== '') : []),
};

/** One debconf answer (preseeding), set with `debconf-set-selections` when it differs. */
export const debconf = (args: ArgsOf<DebconfArgs>, options?: TaskOptions): Task => makeTask(debconfModule, args, options);

void debconfInSync;
