/** shapeResult as a table: what changedWhen, failedWhen and ignoreErrors make of an outcome. */
import test from 'ava';
import {shapeResult, type RawOutcome} from '../../src/core/result.ts';
import type {TaskOptions} from '../../src/core/types.ts';

type Options = Pick<TaskOptions, 'changedWhen' | 'failedWhen' | 'ignoreErrors'>;

interface Row {
  readonly title: string;
  readonly raw: RawOutcome;
  readonly options: Options;
  /** Expected: the registered status, the counted status, ignored, and the reported message. */
  readonly status: RawOutcome['status'];
  readonly counted: RawOutcome['status'];
  readonly ignored?: boolean;
  readonly msg?: string;
}

const boom = (): boolean => {
  throw new Error('boom');
};

const rows: readonly Row[] = [
  {title: 'no options: ok stays ok', raw: {status: 'ok', msg: 'fine'}, options: {}, status: 'ok', counted: 'ok', msg: 'fine'},
  {title: 'no options: changed stays changed', raw: {status: 'changed'}, options: {}, status: 'changed', counted: 'changed'},
  {title: 'no options: failed stays failed', raw: {status: 'failed', msg: 'exit 1'}, options: {}, status: 'failed', counted: 'failed', msg: 'exit 1'},
  {title: 'changedWhen false: a read-only command is ok', raw: {status: 'changed', stdout: 'x'}, options: {changedWhen: () => false}, status: 'ok', counted: 'ok'},
  {title: 'changedWhen true turns ok into changed', raw: {status: 'ok'}, options: {changedWhen: () => true}, status: 'changed', counted: 'changed'},
  {title: 'changedWhen sees the output', raw: {status: 'changed', stdout: 'UPDATED'}, options: {changedWhen: (r) => r.stdout.includes('UPDATED')}, status: 'changed', counted: 'changed'},
  {title: 'changedWhen does not turn a failure into a change', raw: {status: 'failed'}, options: {changedWhen: () => true}, status: 'failed', counted: 'failed'},
  {title: 'failedWhen false clears a failure (rc 1 of grep)', raw: {status: 'failed', rc: 1}, options: {failedWhen: (r) => (r.rc ?? 0) > 1}, status: 'ok', counted: 'ok'},
  {title: 'failedWhen false on a change keeps the change', raw: {status: 'changed'}, options: {failedWhen: () => false}, status: 'changed', counted: 'changed'},
  {title: 'failedWhen true fails a success', raw: {status: 'ok', stdout: 'ERROR'}, options: {failedWhen: (r) => r.stdout.includes('ERROR')}, status: 'failed', counted: 'failed'},
  {title: 'failedWhen sees changedWhen applied first', raw: {status: 'changed'}, options: {changedWhen: () => false, failedWhen: (r) => r.changed}, status: 'ok', counted: 'ok'},
  {title: 'a throwing condition fails the task, naming it', raw: {status: 'ok'}, options: {changedWhen: boom}, status: 'failed', counted: 'failed', msg: 'changedWhen/failedWhen: boom'},
  {title: 'ignoreErrors: reported failed, counted ok, marked ignored', raw: {status: 'failed', msg: 'exit 2'}, options: {ignoreErrors: true}, status: 'failed', counted: 'ok', ignored: true, msg: 'exit 2 (ignored)'},
  {title: 'ignoreErrors on success changes nothing', raw: {status: 'changed'}, options: {ignoreErrors: true}, status: 'changed', counted: 'changed'},
  {title: 'ignoreErrors forgives a failedWhen failure', raw: {status: 'ok'}, options: {failedWhen: () => true, ignoreErrors: true}, status: 'failed', counted: 'ok', ignored: true},
  {title: 'a skipped task is left alone by conditions', raw: {status: 'skipped', msg: 'condition false'}, options: {changedWhen: () => true, failedWhen: () => true}, status: 'skipped', counted: 'skipped'},
];

for (const row of rows) {
  test(`shapeResult: ${row.title}`, (t) => {
    const shaped = shapeResult(row.raw, row.options, false);
    t.is(shaped.result.status, row.status);
    t.is(shaped.result.changed, row.status === 'changed');
    t.is(shaped.result.failed, row.status === 'failed');
    t.is(shaped.counted, row.counted);
    t.is(shaped.ignored, row.ignored ?? false);
    if (row.msg !== undefined) t.is(shaped.msg, row.msg);
    // What register stores never carries the display marker.
    t.false(shaped.result.msg.endsWith('(ignored)'));
  });
}

test('shapeResult: output and pending flag are carried into the result', (t) => {
  const {result} = shapeResult({status: 'changed', stdout: 'o', stderr: 'e', rc: 0, diff: {before: 'a', after: 'b'}}, {}, true);
  t.deepEqual({stdout: result.stdout, stderr: result.stderr, rc: result.rc, diff: result.diff, pending: result.dependsOnPendingChange}, {stdout: 'o', stderr: 'e', rc: 0, diff: {before: 'a', after: 'b'}, pending: true});
});
