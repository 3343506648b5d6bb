/**
 * What a task's outcome becomes once its options have had their say: `changedWhen`, `failedWhen` and
 * `ignoreErrors`, as Ansible applies them. Pure: the engine reports, counts and audits what this
 * returns; test/core/result.test.ts holds the table.
 */
import {diffLines} from 'diff';
import {describeStep} from './remote.ts';
import type {Status} from './events.ts';
import type {Plan, TaskOptions, TaskResult} from './types.ts';

/** What running (or skipping, or failing to start) a task gave, before its options are applied. */
export interface RawOutcome {
  readonly status: Exclude<Status, 'unreachable'>;
  readonly msg?: string;
  readonly diff?: TaskResult['diff'];
  readonly stdout?: string;
  readonly stderr?: string;
  readonly rc?: number | null;
  /** The failing command, for failures. */
  readonly cmd?: string;
  /** What the module found (`Plan.data`). */
  readonly data?: unknown;
}

export interface Shaped {
  /** What `register` stores and later tasks see. */
  readonly result: TaskResult;
  /** What the host's counts record: `ok` for a failure that `ignoreErrors` forgives. */
  readonly counted: Status;
  /** The failure does not stop the host (`ignoreErrors`); it is still reported as failed. */
  readonly ignored: boolean;
  /** The message reported: the result's, marked `(ignored)` when it is. */
  readonly msg: string;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Apply `changedWhen`, then `failedWhen` (which sees the changed status already overridden), then
 * `ignoreErrors`. A skipped task is left alone; `changedWhen` does not turn a failure into a change;
 * a condition that throws fails the task, naming it.
 */
export function shapeResult(
  raw: RawOutcome,
  options: Pick<TaskOptions, 'changedWhen' | 'failedWhen' | 'ignoreErrors'>,
  dependsOnPendingChange: boolean,
): Shaped {
  const status = raw.status;
  let result: TaskResult = {
    status, changed: status === 'changed', failed: status === 'failed', skipped: status === 'skipped',
    msg: raw.msg ?? '', diff: raw.diff ?? null, stdout: raw.stdout ?? '', stderr: raw.stderr ?? '', rc: raw.rc ?? null,
    dependsOnPendingChange,
    ...(raw.data === undefined ? {} : {data: raw.data}),
  };
  if (status !== 'skipped') {
    try {
      if (options.changedWhen && !result.failed) {
        const changed = options.changedWhen(result);
        result = {...result, changed, status: changed ? 'changed' : 'ok'};
      }
      if (options.failedWhen) {
        const failed = options.failedWhen(result);
        result = {...result, failed, status: failed ? 'failed' : result.changed ? 'changed' : 'ok'};
      }
    } catch (err) {
      result = {...result, failed: true, status: 'failed', msg: `changedWhen/failedWhen: ${message(err)}`};
    }
  }
  if (result.failed && options.ignoreErrors) {
    return {result, counted: 'ok', ignored: true, msg: `${result.msg} (ignored)`};
  }
  return {result, counted: result.status, ignored: false, msg: result.msg};
}

/** What a changed task did, in a few words: `+3 -1 /etc/nginx/nginx.conf`, else its commands. */
export function changeSummary(plan: Plan): string {
  const write = plan.steps.find((s) => s.kind === 'write');
  // A diff that is not the content itself (a secret, a large or binary file): say what was written.
  if (write?.kind === 'write' && (!plan.diff || Buffer.byteLength(plan.diff.after) !== write.content.length)) {
    const rest = plan.steps.length - 1;
    return `write ${write.dest} (${write.content.length} bytes)${rest > 0 ? ` and ${rest} more step${rest > 1 ? 's' : ''}` : ''}`;
  }
  if (plan.diff) {
    let added = 0;
    let removed = 0;
    for (const part of diffLines(plan.diff.before, plan.diff.after)) {
      if (part.added) added += part.count ?? 0;
      else if (part.removed) removed += part.count ?? 0;
    }
    const path = plan.diff.path ?? (write?.kind === 'write' ? write.dest : '');
    return `+${added} -${removed}${path ? ` ${path}` : ''}`;
  }
  const text = plan.steps.map((s) => (s.kind === 'write' ? `write ${s.dest} (${s.content.length} bytes)` : describeStep(s))).join('; ');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
