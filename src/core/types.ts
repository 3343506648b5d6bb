/**
 * The engine's vocabulary: modules (probe → pure plan), tasks, roles, plays, results.
 * A module never sees the check flag: it returns a plan, and the engine decides whether to apply it.
 */
import type {Cmd} from './cmd.ts';
import type {Secret} from './secret.ts';
import type {Facts} from '../facts/host.ts';
import type {Probe} from '../shared/probe.ts';
import type * as z from 'zod/mini';

export type {Probe, ProbeOutput} from '../shared/probe.ts';

/** One mutating action on the host. */
export type Step =
  | {
      readonly kind: 'exec';
      readonly cmd: Cmd;
      /** Exit codes counted as success (default [0]). */
      readonly okCodes?: readonly number[];
      /** Bytes for the command's standard input (e.g. SQL holding a password); never displayed. */
      readonly stdin?: Buffer | Secret;
      /**
       * What is worth telling of the command's output, for the task's message (pure), e.g. `waited 12 s
       * for /var/lib/dpkg/lock-frontend, held by process 4711 (unattended-upgr)`; undefined: nothing.
       */
      readonly note?: (result: {readonly stdout: string; readonly stderr: string; readonly code: number}) => string | undefined;
    }
  | {
      readonly kind: 'write';
      /** Absolute destination path. Written to a temp file in the same directory, validated, renamed. */
      readonly dest: string;
      readonly content: Buffer;
      /** Octal mode for the new file, e.g. '0644'. */
      readonly mode?: string;
      readonly owner?: string;
      readonly group?: string;
      /** A command with `%s` for the temp file, run before the rename; a non-zero exit refuses the write. */
      readonly validate?: string;
    }
  | {
      /** Copy a file of the host to the controller (`fetch`): written there atomically, checked first. */
      readonly kind: 'fetch';
      /** Absolute path on the host. */
      readonly src: string;
      /** Absolute path on the controller. */
      readonly dest: string;
      /** The sha256 the probe read on the host: bytes that differ (the file changed meanwhile) are refused. */
      readonly sha256: string;
    }
  | {
      /**
       * Reboot the host and wait until it answers again (`reboot`): the engine sends `command`, then
       * connects again (and takes the run lock again) until the host's boot id differs from `bootId`
       * and `test` succeeds, or `timeoutS` passes.
       */
      readonly kind: 'reboot';
      readonly command: string;
      /** /proc/sys/kernel/random/boot_id before the reboot. */
      readonly bootId: string;
      readonly timeoutS: number;
      /** A command that must succeed on the rebooted host (default `whoami`). */
      readonly test: string;
      /** Seconds to wait after the host answers again before the test command. */
      readonly postDelayS: number;
    };

/** A content change to show under --diff. */
export interface Diff {
  readonly before: string;
  readonly after: string;
  /** The path shown in the diff header. */
  readonly path?: string;
}

/** What a module wants done: no steps means no change. */
export interface Plan {
  readonly steps: readonly Step[];
  readonly diff?: Diff;
  /** Why nothing (or what) changes: "already at 0644", shown with -v. */
  readonly reason?: string;
  /** Set when the task must fail without doing anything (e.g. a missing source file on the host). */
  readonly fail?: string;
  /** Variables the task sets for this host (`setFact`): later tasks see them in `ctx.vars`. */
  readonly facts?: Vars;
  /** What a read-only module found (`stat`), for `register`: the result's `data`. */
  readonly data?: unknown;
}

/** A module: a probe of the current state and a pure planner. */
export interface ModuleDef<Args, Current> {
  /** `files.copy`, `apt.packages`, … */
  readonly name: string;
  /** Read-only look at the host. Absent for modules that need no state (e.g. a plain command). */
  probe?(args: Args): Probe<Current>;
  /** Pure: current state and desired state in, steps out. */
  plan(current: Current, args: Args): Plan;
  /** A short label for the task when the user gave no name, e.g. the path or package list. */
  describe(args: Args): string;
  /** The arguments' schema, checked at run time (unknown keys, enums, required fields). */
  readonly schema?: z.core.$ZodType<Args>;
  /**
   * Clear values the module's probe or steps carry that are not `Secret`s of its arguments (a
   * password's hash): the run masks them with the arguments' secrets. Data, not a side effect.
   */
  secrets?(args: Args): readonly string[];
}

export type Vars = Readonly<Record<string, unknown>>;

/** The result of a task on a host, as later tasks (register) and events see it. */
export interface TaskResult {
  readonly status: 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';
  readonly changed: boolean;
  readonly failed: boolean;
  readonly skipped: boolean;
  readonly msg: string;
  readonly diff: Diff | null;
  /** Output of the last command the task ran (command/shell), else empty. */
  readonly stdout: string;
  readonly stderr: string;
  readonly rc: number | null;
  /** Check mode: this result was planned on state an earlier "would change" would have altered. */
  readonly dependsOnPendingChange: boolean;
  /** What the module found, when it reports data (`stat`). */
  readonly data?: unknown;
  /** A `loop`: each item's result, in order, with its item (Ansible's `results`). */
  readonly items?: readonly (TaskResult & {readonly item: unknown})[];
}

/** What `args` functions, `when` conditions and templates can see for one host. */
export interface TaskContext {
  /** inventory_hostname */
  readonly host: string;
  /** Every variable for this host: role defaults < inventory (group < host) < play vars < extra vars. */
  readonly vars: Vars;
  /** Facts gathered from this host at the start of the play. */
  readonly facts: Facts;
  /** Group name → host names, every group of the inventory (Ansible's `groups`). */
  readonly groups: Readonly<Record<string, readonly string[]>>;
  /** The groups this host is in (Ansible's `group_names`). */
  readonly groupNames: readonly string[];
  /** Variables (and `facts`, when gathered, and `results` registered so far) of any host (Ansible's `hostvars`). */
  hostvars(host: string): Vars & {readonly facts?: Facts; readonly results: Readonly<Record<string, TaskResult>>};
  /** Results of earlier tasks on this host that set `register`. */
  readonly results: Readonly<Record<string, TaskResult>>;
  /** True under --check. Only for `when` conditions and args; modules never see it. */
  readonly check: boolean;
  /**
   * Render a mustache template of the current role (`roles/<role>/templates/<name>`; for a play's own
   * tasks, `templates/<name>` beside the playbook) with `vars`. A variable the template uses and no
   * one defines fails, naming the template's file and line, unless `allowMissingVars`.
   */
  render(name: string, extra?: Vars, options?: {readonly allowMissingVars?: boolean}): string;
  /**
   * A value that must never be shown, as a `Secret`: the run masks it in every output from now on,
   * even where it is used revealed (a hash computed from it, a template variable).
   */
  secret(value: string): Secret;
  /** In a block's `rescue` (and `always` after a failure): the task that failed and why. */
  readonly failed?: {readonly task: string; readonly msg: string};
  /** In a `loop`: the current item and its position (undefined outside a loop). */
  readonly item?: unknown;
  readonly index?: number;
  /** Read a file of the current role (`roles/<role>/files/<name>`; for a play's own tasks, `files/<name>` beside the playbook). */
  readFile(name: string): Buffer;
}

/** Options common to every task; never mixed into module arguments. */
export interface TaskOptions {
  /** Shown in output and events; the task's identity within its play and role. */
  readonly name?: string;
  /** Run only when this returns true. */
  readonly when?: (ctx: TaskContext) => boolean;
  /** Handler names to notify when the task changes something. */
  readonly notify?: string | readonly string[];
  readonly tags?: readonly string[];
  /** Run as another user: sudo (or su), with the host's become password if it has one (default: the host's `ansible_become`). */
  readonly become?: boolean;
  /** sudo to this user (default: the host's `ansible_become_user`, else root). */
  readonly becomeUser?: string;
  /** Store the result under this name in `ctx.results` for later tasks. */
  readonly register?: string;
  /** A failure is reported but the host goes on. */
  readonly ignoreErrors?: boolean;
  /** Override "changed" from the result (e.g. `() => false` for a read-only command). */
  readonly changedWhen?: (result: TaskResult) => boolean;
  /** Override "failed" from the result. */
  readonly failedWhen?: (result: TaskResult) => boolean;
  /** Hide the task's output and diff (results show "output hidden"). */
  readonly noLog?: boolean;
  /** Set false to hide this task's diff even under --diff. */
  readonly diff?: boolean;
  /**
   * Run the task once per item (Ansible's `loop`): `ctx.item` and `ctx.index` are the item and its
   * position. One result per item; the task changed if any item did, failed if any failed.
   */
  readonly loop?: (ctx: TaskContext) => readonly unknown[];
  /** Try again while `until` is false (or, without `until`, while the task fails), up to this many more times. */
  readonly retries?: number;
  /** Seconds between tries (default 5, as Ansible). */
  readonly delay?: number;
  /** The task is done when this is true of its result (retried until then, `retries` times; default 3). */
  readonly until?: (result: TaskResult, ctx: TaskContext) => boolean;
  /** Seconds the task may take on a host: its remote command is killed and the task fails, saying so. */
  readonly timeout?: number;
  /** Run on the first host of the batch only; every host of the batch gets its result (and `register`). */
  readonly runOnce?: boolean;
  /**
   * Run the task on another host (an inventory name, or `'localhost'`: the controller itself, no SSH)
   * with this host's variables; the result is this host's.
   */
  readonly delegateTo?: string | ((ctx: TaskContext) => string);
  /** At most this many hosts run the task at once (below `forks`). */
  readonly throttle?: number;
  /** Environment variables of the task's commands (and probes), over the play's and role's. */
  readonly environment?: Readonly<Record<string, string>>;
  /** `false`: run the task for real under --check (a read-only command whose output later tasks plan on). */
  readonly checkMode?: boolean;
  /**
   * Run the task's commands as jobs detached on the host, for at most this many seconds (Ansible's
   * `async`): a dropped connection does not stop them, and the run polls them again over a new one.
   */
  readonly async?: number;
  /** Seconds between polls of an `async` job (default 10, as Ansible); 0: start it and go on (fire and forget). */
  readonly poll?: number;
  /**
   * A failure of this task (or, on a `block()`, of the block once its rescue had its say) on any host
   * stops the play and the run on every host (Ansible's `any_errors_fatal` on a block or task).
   */
  readonly anyErrorsFatal?: boolean;
  /** Handlers: the topics this handler answers besides its name (`notify: 'restart web'`). */
  readonly listen?: string | readonly string[];
}

/** A task bound to one host: its probe and its planner, with module types erased. */
export interface BoundTask {
  readonly label: string;
  /** What must never be shown: the clear values of the `Secret`s in its arguments, and the module's `secrets`. */
  readonly secrets: readonly string[];
  readonly probe?: Probe<unknown>;
  plan(current: unknown): Plan;
}

/** A task: a module with its arguments (fixed, or computed per host) and its options. */
export interface Task {
  /** The name shown for the task's kind: `file`, `template`, `apt`. */
  readonly module: string;
  readonly options: TaskOptions;
  /** What the task acts on (`/etc/nginx/nginx.conf`), when the arguments are fixed (not computed per host). */
  readonly label?: string;
  /** Where the user wrote the task, when known. */
  readonly source?: {readonly file: string; readonly line: number; readonly column: number};
  /** The clear values of the `Secret`s in its fixed arguments: a run masks them from its start. */
  readonly secrets: readonly string[];
  /** A `block()`: its tasks, then `rescue` on the hosts that failed in them, then `always` everywhere. */
  readonly block?: BlockBody;
  /** What is wrong with the options and the fixed arguments as written, one line each (empty: nothing). */
  problems(): readonly string[];
  /** What is wrong with the arguments computed for this host (empty: nothing, or fixed arguments). Throws what the arguments function throws. */
  problemsFor(ctx: TaskContext): readonly string[];
  /** What the task acts on for this host (computing the arguments), when that can be known. */
  describe(ctx: TaskContext): string | undefined;
  /** Compute this host's arguments and check them, as `bind` does, without binding (templates are rendered). */
  argsFor(ctx: TaskContext): unknown;
  /** Compute this host's arguments, check them and bind the module to them. */
  bind(ctx: TaskContext): BoundTask;
}

/** The parts of a `block()`. */
export interface BlockBody {
  readonly tasks: readonly Task[];
  /** Run on the hosts where a task of `tasks` failed: the failure is cleared (Ansible's rescue). */
  readonly rescue?: readonly Task[];
  /** Run on every host that started the block, failed or not (a failure stays a failure). */
  readonly always?: readonly Task[];
}

/** A role: defaults, tasks and handlers; templates and files live in `roles/<name>/`. */
export interface Role<D extends Vars = Vars> {
  readonly name: string;
  readonly defaults?: D;
  /** The folder holding its `templates/` and `files/` (set for roles loaded by name and provision's own). */
  readonly dir?: string;
  readonly tasks: readonly Task[];
  readonly handlers?: readonly Task[];
  /** Environment variables of the role's tasks (over the play's). */
  readonly environment?: Readonly<Record<string, string>>;
}

/** A play: a host pattern, vars, roles, tasks and handlers. */
export interface Play {
  readonly name: string;
  /** Ansible host pattern: `webservers`, `lb*`, `a:&b`, `a:!b`. */
  readonly hosts: string;
  readonly vars?: Vars;
  /** Role names (loaded from `roles/<name>/index.ts`) or role objects. */
  readonly roles?: readonly (string | Role)[];
  readonly tasks?: readonly Task[];
  readonly handlers?: readonly Task[];
  /**
   * Hosts per batch: a number or a percentage like '30%', or a list of them for growing batches
   * (`[1, '30%', '100%']`: a canary, then 30%, then the rest; the last size repeats). Default: all at once.
   */
  readonly serial?: number | `${number}%` | readonly (number | `${number}%`)[];
  /** Abort the play when more than this percentage of a batch's hosts failed. */
  readonly maxFailPercentage?: number;
  /** Gather facts before the play (default true). */
  readonly gatherFacts?: boolean;
  readonly tags?: readonly string[];
  /** Environment variables of every task of the play (a role's or task's `environment` wins). */
  readonly environment?: Readonly<Record<string, string>>;
  /** A failure on any host stops the play on every host of the batch (Ansible's `any_errors_fatal`). */
  readonly anyErrorsFatal?: boolean;
}

export interface Playbook {
  readonly name: string;
  readonly plays: readonly Play[];
}
