/**
 * `command` (an argv, no shell) and `shell` (a shell snippet). Changed only when they actually ran:
 * `creates`, `removes` and `unless` are checked by the probe, so a no-op costs no extra round trip.
 */
import {q, render, type Cmd, type Word} from '../core/cmd.ts';
import {Secret} from '../core/secret.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions} from '../core/types.ts';

interface Guards {
  /** Skip when this path exists. */
  readonly creates?: string;
  /** Skip when this path does not exist. */
  readonly removes?: string;
  /** Skip when this read-only shell command exits 0 (checked with the other probes). */
  readonly unless?: string;
  /** Run in this directory. */
  readonly chdir?: string;
}

const guards = {
  creates: z.optional(z.string()),
  removes: z.optional(z.string()),
  unless: z.optional(z.string()),
  chdir: z.optional(z.string()),
};

export interface CommandArgs extends Guards {
  /** The program and its arguments; no shell is involved, so nothing needs quoting. */
  readonly argv: readonly Word[];
}

const commandArgs = z.strictObject({...guards, argv: z.array(z.union([z.string(), z.instanceof(Secret)]))});
const commandInSync: Exact<z.infer<typeof commandArgs>, CommandArgs> = true;

export interface ShellArgs extends Guards {
  /** A POSIX shell snippet, run with `sh -c`. */
  readonly script: string;
}

const shellArgs = z.strictObject({...guards, script: z.string()});
const shellInSync: Exact<z.infer<typeof shellArgs>, ShellArgs> = true;

type GuardState = {readonly creates: boolean; readonly removes: boolean; readonly unless: boolean};

function guardProbe(g: Guards): {script: string; parse(out: {stdout: string}): GuardState} | undefined {
  if (g.creates === undefined && g.removes === undefined && g.unless === undefined) return undefined;
  const lines: string[] = [];
  if (g.creates !== undefined) lines.push(`[ -e ${q(g.creates)} ] && echo creates`);
  if (g.removes !== undefined) lines.push(`[ -e ${q(g.removes)} ] && echo removes`);
  if (g.unless !== undefined) lines.push(`(${g.chdir ? `cd ${q(g.chdir)} && ` : ''}${g.unless}) >/dev/null 2>&1 && echo unless`);
  lines.push('true');
  return {
    script: lines.join('\n'),
    parse: ({stdout}) => {
      const words = new Set(stdout.split('\n'));
      return {creates: words.has('creates'), removes: words.has('removes'), unless: words.has('unless')};
    },
  };
}

function guardedPlan(g: Guards, s: GuardState | undefined, cmd: Cmd, what: string): Plan {
  if (s?.creates) return {steps: [], reason: `${g.creates} exists`};
  if (g.removes !== undefined && s && !s.removes) return {steps: [], reason: `${g.removes} does not exist`};
  if (s?.unless) return {steps: [], reason: `unless: '${g.unless}' succeeded`};
  const withDir: Cmd = g.chdir ? {shell: `cd ${q(g.chdir)} && ${render(cmd)}`} : cmd;
  return {steps: [{kind: 'exec', cmd: withDir}], reason: `run ${what}`};
}

export const commandModule: ModuleDef<CommandArgs, GuardState | undefined> = {
  name: 'command',
  schema: commandArgs,
  describe: (a) => a.argv.map(String).join(' '),
  probe: (a) => guardProbe(a) ?? {script: 'true', parse: () => undefined},
  plan: (s, a) => guardedPlan(a, s, {argv: a.argv}, a.argv.map(String).join(' ')),
};

/** What a shell task shows of its script: the first line. */
function firstLine(script: string): string {
  const [line = ''] = script.split('\n');
  return line;
}

export const shellModule: ModuleDef<ShellArgs, GuardState | undefined> = {
  name: 'shell',
  schema: shellArgs,
  describe: (a) => firstLine(a.script),
  probe: (a) => guardProbe(a) ?? {script: 'true', parse: () => undefined},
  plan: (s, a) => guardedPlan(a, s, {shell: a.script}, firstLine(a.script)),
};

/** Run a program (no shell). */
export const command = (args: ArgsOf<CommandArgs>, options?: TaskOptions): Task => makeTask(commandModule, args, options);
/** Run a shell snippet. */
export const shell = (args: ArgsOf<ShellArgs>, options?: TaskOptions): Task => makeTask(shellModule, args, options);

void [commandInSync, shellInSync];
