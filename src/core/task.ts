/**
 * The typed bridge between a module and the engine: `defineTask(module)` gives the function a playbook
 * calls (`files.copy({...}, {notify: 'reload nginx'})`); the engine only sees erased `Task`s.
 *
 * What the user wrote is checked here too (src/core/validate.ts): fixed arguments and the options when
 * the task is made (the CLI reports them before any host is touched), arguments computed per host when
 * the task is bound (the task fails with the same one-line message, never a TypeError).
 */
import {readFileSync} from 'node:fs';
import {SourceMap} from 'node:module';
import {dirname, resolve, sep} from 'node:path';
import {fileURLToPath} from 'node:url';
import type {BlockBody, ModuleDef, Task, TaskContext, TaskOptions, Role, Play, Playbook, BoundTask, Vars, TaskResult} from './types.ts';
import {fn, problems, z, type Exact} from './validate.ts';
import {secretsIn} from './secret.ts';
import {group} from '../shared/match.ts';

/** Module arguments, fixed or computed for each host from its context. */
export type ArgsOf<A> = A | ((ctx: TaskContext) => A);

/** Task options as a schema: an unknown option (`notfiy`) is refused. */
export const taskOptionsSchema = z.strictObject({
  name: z.optional(z.string()),
  when: z.optional(fn<(ctx: TaskContext) => boolean>()),
  notify: z.optional(z.union([z.string(), z.array(z.string())])),
  tags: z.optional(z.array(z.string())),
  become: z.optional(z.boolean()),
  becomeUser: z.optional(z.string()),
  register: z.optional(z.string()),
  ignoreErrors: z.optional(z.boolean()),
  changedWhen: z.optional(fn<(result: TaskResult) => boolean>()),
  failedWhen: z.optional(fn<(result: TaskResult) => boolean>()),
  noLog: z.optional(z.boolean()),
  diff: z.optional(z.boolean()),
  loop: z.optional(fn<(ctx: TaskContext) => readonly unknown[]>()),
  retries: z.optional(z.int().check(z.nonnegative())),
  delay: z.optional(z.number().check(z.nonnegative())),
  until: z.optional(fn<(result: TaskResult, ctx: TaskContext) => boolean>()),
  timeout: z.optional(z.number().check(z.positive())),
  runOnce: z.optional(z.boolean()),
  delegateTo: z.optional(z.union([z.string(), fn<(ctx: TaskContext) => string>()])),
  throttle: z.optional(z.int().check(z.positive())),
  environment: z.optional(z.record(z.string(), z.string())),
  checkMode: z.optional(z.boolean()),
  async: z.optional(z.number().check(z.positive())),
  anyErrorsFatal: z.optional(z.boolean()),
  poll: z.optional(z.number().check(z.nonnegative())),
  listen: z.optional(z.union([z.string(), z.array(z.string())])),
});
const optionsInSync: Exact<z.infer<typeof taskOptionsSchema>, TaskOptions> = true;
void optionsInSync;

/**
 * How a task function turns what the user writes (`I`) into a module's arguments (`A`): `template`
 * takes `{src, dest}` and gives `copy` its content. A plain module is its own kind (I = A).
 */
export interface TaskKind<I, A, C> {
  readonly module: ModuleDef<A, C>;
  /** The name shown for the task (default: the module's). */
  readonly name?: string;
  /** What the user writes, checked at run time (default: the module's schema). */
  readonly schema?: z.core.$ZodType<I>;
  /** The module's arguments from the user's (default: the same object). */
  toArgs?(input: I, ctx: TaskContext): A;
  /** What the task acts on, from the user's arguments (default: the module's `describe`). */
  describe?(input: I): string;
}

/** An argument or option of a task is wrong; the message names the field. */
export class TaskArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskArgumentError';
  }
}

/** Where the user wrote a task: their file, line and column (set by makeTask from the call stack). */
export interface TaskSource {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** provision's own code (src/, or the bundle's folder): never where a user wrote a task. */
const ownDir = fileURLToPath(new URL('..', import.meta.url));

/**
 * The first frame of `trace` outside provision's own code: the line of the user's file that made the
 * task. V8 formats a captured stack only when it is read, so tasks that never need it cost a capture.
 */
function callerSource(trace: {stack?: string}): TaskSource | undefined {
  const stack = trace.stack ?? '';
  for (const line of stack.split('\n').slice(1)) {
    const m = /(?:\(|at )((?:file:\/\/)?\/[^()]+?):(\d+):(\d+)\)?\s*$/.exec(line);
    if (!m) continue;
    const path = group(m, 1);
    const frame = original(path.startsWith('file://') ? fileURLToPath(path) : path, Number(group(m, 2)), Number(group(m, 3)));
    if (frame.file.startsWith(ownDir) || frame.file.includes(`${sep}node_modules${sep}`)) continue;
    return frame;
  }
  return undefined;
}

const inlineMaps = new Map<string, SourceMap | null>();

/**
 * A frame of compiled user code (src/cli/usercode.ts writes an inline source map) mapped back to the
 * user's .ts file and line. Done here, on demand, rather than by Node's --enable-source-maps, which
 * costs every run about 0.1 s (it scans every module loaded for a map).
 */
function original(file: string, line: number, column: number): TaskSource {
  let map = inlineMaps.get(file);
  if (map === undefined) {
    map = null;
    try {
      const text = readFileSync(file, 'utf8');
      const marker = '//# sourceMappingURL=data:application/json;base64,';
      const at = text.lastIndexOf(marker);
      if (at >= 0) map = new SourceMap(JSON.parse(Buffer.from(text.slice(at + marker.length).trim(), 'base64').toString('utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    } catch {
      map = null;
    }
    inlineMaps.set(file, map);
  }
  const entry = map?.findEntry(line - 1, column - 1) as {originalSource?: string; originalLine?: number; originalColumn?: number} | undefined;
  if (!entry?.originalSource || entry.originalLine === undefined) return {file, line, column};
  const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(dirname(file), entry.originalSource);
  return {file: src, line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1};
}

function isModule<A, C>(k: ModuleDef<A, C> | TaskKind<unknown, A, C>): k is ModuleDef<A, C> {
  return typeof (k as ModuleDef<A, C>).plan === 'function';
}

export function makeTask<A, C>(module: ModuleDef<A, C>, args: ArgsOf<A>, options?: TaskOptions): Task;
export function makeTask<I, A, C>(kind: TaskKind<I, A, C>, args: ArgsOf<I>, options?: TaskOptions): Task;
export function makeTask<I, A, C>(kindOrModule: ModuleDef<A, C> | TaskKind<I, A, C>, args: ArgsOf<I>, options: TaskOptions = {}): Task {
  const kind: TaskKind<I, A, C> = isModule(kindOrModule) ? {module: kindOrModule} : kindOrModule;
  const module = kind.module;
  const schema = (kind.schema ?? module.schema) as z.core.$ZodType<I> | undefined;
  const toArgs = kind.toArgs ?? ((i: I) => i as unknown as A);
  const describe = kind.describe ?? ((i: I) => module.describe(i as unknown as A));
  const name = kind.name ?? module.name;
  const computed = typeof args === 'function';
  const input = (ctx: TaskContext): I => (computed ? (args as (ctx: TaskContext) => I)(ctx) : args);
  const check = (i: I): void => {
    const found = schema ? problems(schema, i) : [];
    if (found.length > 0) throw new TaskArgumentError(found.join('; '));
  };
  const argProblems = computed || !schema ? [] : problems(schema, args);
  const staticProblems = [...problems(taskOptionsSchema, options, 'task option'), ...argProblems];
  let label: string | undefined;
  if (!computed && argProblems.length === 0) label = describe(args as I);
  const argsFor = (ctx: TaskContext, i = input(ctx)): A => {
    if (computed) check(i);
    else if (argProblems.length > 0) throw new TaskArgumentError(argProblems.join('; '));
    return toArgs(i, ctx);
  };
  const trace: {stack?: string} = {};
  Error.captureStackTrace(trace, makeTask);
  let source: TaskSource | undefined | null = null;
  return {
    module: name,
    options,
    label,
    secrets: computed ? [] : secretsIn(args),
    get source() {
      if (source === null) source = callerSource(trace);
      return source;
    },
    problems: () => staticProblems,
    problemsFor: (ctx) => (computed && schema ? problems(schema, input(ctx)) : []),
    describe(ctx: TaskContext): string | undefined {
      if (label !== undefined) return label;
      try {
        const i = input(ctx);
        return schema && !z.safeParse(schema, i).success ? undefined : describe(i);
      } catch {
        return undefined;
      }
    },
    argsFor,
    bind(ctx: TaskContext): BoundTask {
      const i = input(ctx);
      const a = argsFor(ctx, i);
      const probe = module.probe?.(a);
      return {
        label: describe(i),
        secrets: [...secretsIn(a), ...(module.secrets?.(a) ?? [])],
        probe: probe as BoundTask['probe'],
        plan: (current: unknown) => module.plan(current as C, a),
      };
    },
  };
}

/** Turn a module into the task function that playbooks call. */
export function defineTask<A, C>(module: ModuleDef<A, C>): (args: ArgsOf<A>, options?: TaskOptions) => Task {
  return (args, options) => makeTask(module, args, options);
}

/** Identity helpers that give playbooks and roles their types. */
const blockModule: ModuleDef<Record<string, never>, undefined> = {
  name: 'block',
  describe: () => '',
  plan: () => ({steps: [], fail: 'a block is run by the engine, task by task'}),
};

/**
 * Tasks run as one (Ansible's block): `tasks`, then `rescue` on the hosts where one of them failed (the
 * failure is cleared, `ctx.failed` says what failed), then `always` on every host that started the
 * block. The block's options apply to each of its tasks: `when` (with the task's own), `tags` (added),
 * `become`, `becomeUser`, `environment`, `ignoreErrors`, `delegateTo`, `timeout`, `checkMode`.
 */
export function block(body: BlockBody, options: TaskOptions = {}): Task {
  const task = makeTask(blockModule, {}, options);
  return Object.assign(Object.create(task) as Task, {block: body});
}

export function defineRole<D extends Vars = Vars>(role: Role<D>): Role<D> {
  return role;
}
export function definePlay(play: Play): Play {
  return play;
}
export function definePlaybook(playbook: Playbook): Playbook {
  return playbook;
}
