/**
 * The typed bridge between a module and the engine: `defineTask(module)` gives the function a playbook
 * calls (`files.copy({...}, {notify: 'reload nginx'})`); the engine only sees erased `Task`s.
 */
import type {ModuleDef, Task, TaskContext, TaskOptions, Role, Play, Playbook, BoundTask} from './types.ts';

/** Module arguments, fixed or computed for each host from its context. */
export type ArgsOf<A> = A | ((ctx: TaskContext) => A);

export function makeTask<A, C>(module: ModuleDef<A, C>, args: ArgsOf<A>, options: TaskOptions = {}): Task {
  return {
    module: module.name,
    options,
    label: typeof args === 'function' ? undefined : module.describe(args),
    bind(ctx: TaskContext): BoundTask {
      const a = typeof args === 'function' ? (args as (ctx: TaskContext) => A)(ctx) : args;
      const probe = module.probe?.(a);
      return {
        label: module.describe(a),
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
export function defineRole(role: Role): Role {
  return role;
}
export function definePlay(play: Play): Play {
  return play;
}
export function definePlaybook(playbook: Playbook): Playbook {
  return playbook;
}
