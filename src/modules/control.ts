/**
 * Tasks that touch no host: `debug` (say something), `assert` (check conditions, fail with a message),
 * `fail`, `setFact` (variables for later tasks on the host) and `flushHandlers` (run the pending
 * handlers now). Their arguments are usually computed per host: `assert((ctx) => ({that: ...}))`.
 * Each plans without a probe and without steps, so they cost no round trip and behave the same under
 * --check.
 */
import {FLUSH_HANDLERS} from '../core/engine.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Task, TaskOptions, Vars} from '../core/types.ts';

export interface DebugArgs {
  /** The message shown (Ansible's `msg`). */
  readonly msg: string;
}

const debugArgs = z.strictObject({msg: z.string()});
const debugInSync: Exact<z.infer<typeof debugArgs>, DebugArgs> = true;

export const debugModule: ModuleDef<DebugArgs, undefined> = {
  name: 'debug',
  schema: debugArgs,
  describe: () => '',
  plan: (_, a) => ({steps: [], reason: a.msg}),
};

/** Show a message for each host (`-v` shows it in the plain output, the JSON event always carries it). */
export const debug = (args: ArgsOf<DebugArgs>, options?: TaskOptions): Task => makeTask(debugModule, args, options);

export interface AssertArgs {
  /** The conditions, computed for the host: all must be true. */
  readonly that: boolean | readonly boolean[];
  /** The failure message (default: which condition failed). */
  readonly failMsg?: string;
  /** The message when all hold (default: `All assertions passed`). */
  readonly successMsg?: string;
}

const assertArgs = z.strictObject({that: z.union([z.boolean(), z.array(z.boolean())]), failMsg: z.optional(z.string()), successMsg: z.optional(z.string())});
const assertInSync: Exact<z.infer<typeof assertArgs>, AssertArgs> = true;

export const assertModule: ModuleDef<AssertArgs, undefined> = {
  name: 'assert',
  schema: assertArgs,
  describe: () => '',
  plan(_, a) {
    const that = typeof a.that === 'boolean' ? [a.that] : a.that;
    const broken = that.findIndex((c) => !c);
    if (broken < 0) return {steps: [], reason: a.successMsg ?? 'All assertions passed'};
    return {steps: [], fail: a.failMsg ?? `Assertion failed (condition ${broken + 1} of ${that.length})`};
  },
};

/** Fail the host with `failMsg` unless every condition holds. */
export const assert = (args: ArgsOf<AssertArgs>, options?: TaskOptions): Task => makeTask(assertModule, args, options);

export interface FailArgs {
  /** Why (Ansible's `msg`). */
  readonly msg: string;
}

const failArgs = z.strictObject({msg: z.string()});
const failInSync: Exact<z.infer<typeof failArgs>, FailArgs> = true;

export const failModule: ModuleDef<FailArgs, undefined> = {
  name: 'fail',
  schema: failArgs,
  describe: () => '',
  plan: (_, a) => ({steps: [], fail: a.msg}),
};

/** Fail the host with a message (with `when`, a guard; with `ignoreErrors`, a warning). */
export const fail = (args: ArgsOf<FailArgs>, options?: TaskOptions): Task => makeTask(failModule, args, options);

/** Variables to set for the host (names to values). */
export type SetFactArgs = Vars;

const setFactArgs = z.record(z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name: letters, digits and _')), z.unknown());

export const setFactModule: ModuleDef<SetFactArgs, undefined> = {
  name: 'setFact',
  schema: setFactArgs,
  describe: (a) => Object.keys(a).join(', '),
  plan: (_, a) => ({steps: [], facts: a, reason: `set ${Object.keys(a).join(', ') || 'nothing'}`}),
};

/** Set variables for later tasks on this host (`ctx.vars`, over play vars, under extra vars). */
export const setFact = (args: ArgsOf<SetFactArgs>, options?: TaskOptions): Task => makeTask(setFactModule, args, options);

const noArgs = z.strictObject({});

export const flushHandlersModule: ModuleDef<Record<string, never>, undefined> = {
  name: FLUSH_HANDLERS,
  schema: noArgs,
  describe: () => '',
  plan: () => ({steps: [], reason: 'handlers flushed'}),
};

/** Run the handlers notified so far now, not at the end of the play (Ansible's `meta: flush_handlers`). */
export const flushHandlers = (options?: Pick<TaskOptions, 'name' | 'tags'>): Task => makeTask(flushHandlersModule, {}, options);

void debugInSync;
void assertInSync;
void failInSync;
