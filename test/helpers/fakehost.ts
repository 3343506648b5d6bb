/**
 * Check mode through the engine on a fake host: tools of the host are small scripts reading files of a
 * temp folder (`$FAKE`), first on PATH for the engine's probe batches; any other command is only
 * recorded (the transport's log), never run, so a regression cannot touch the test machine.
 */
import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import type {ExecutionContext} from 'ava';
import {q} from '../../src/core/cmd.ts';
import {definePlaybook} from '../../src/core/task.ts';
import type {Task} from '../../src/core/types.ts';
import {localExec, type Handler, type Recorded} from '../../src/transport/fake.ts';
import {runFake} from './engine.ts';

/** The engine's probe batch (`sh -s` fed marker-fenced probes): the only command a check run may send. */
export const isProbeBatch = (r: Recorded): boolean => r.command === 'sh -s' && /^echo '__provision_[0-9a-f]+__ 0'\n/.test(r.stdin ?? '');

/** A fake host: `tools` (name → sh body) on PATH for probes, `files` in `$FAKE`. */
export function fakeHost(name: string, tools: Readonly<Record<string, string>>, files: Readonly<Record<string, string>>): {handler: Handler; dir: string} {
  const dir = mkdtempSync(join(tmpdir(), `prov-${name}-check-`));
  mkdirSync(join(dir, 'bin'));
  for (const [tool, body] of Object.entries(tools)) {
    writeFileSync(join(dir, 'bin', tool), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'bin', tool), 0o755);
  }
  for (const [file, body] of Object.entries(files)) writeFileSync(join(dir, file), body);
  const handler: Handler = (command, stdin) => (isProbeBatch({command, stdin})
    ? localExec(`PATH=${q(join(dir, 'bin'))}:$PATH FAKE=${q(dir)}; export PATH FAKE\n${command}`, {stdin})
    : {code: 0, stdout: '', stderr: ''});
  return {handler, dir};
}

/** One check-mode case: the --check result, then what a real run sends besides probes. */
export interface CheckExpectation {
  readonly status: 'changed' | 'ok' | 'failed';
  readonly msg: string;
  readonly cmds: readonly string[];
}

/**
 * A command as the tests compare it: an exec as sent; a write step (its long `sh -c` upload script) as
 * `write <dest>: <content>`, or `write <dest>` without `content`.
 */
export function shortCommand(r: Recorded, content = true): string {
  const dest = r.command.startsWith('sh -c ') ? /mv -f "\$t" ([^\n']+)/.exec(r.command)?.[1] : undefined;
  if (dest === undefined) return r.command;
  return content ? `write ${dest}: ${r.stdin ?? ''}` : `write ${dest}`;
}

/**
 * `task` under --check on `host`: exactly `[status, msg]`, one probe batch and nothing else sent; then
 * the same host without --check gets `status` again and `cmds` (short; so the "only probes" assertion
 * can fail). `writeContent: false`: writes compared by destination only.
 */
export async function assertCheckMode(t: ExecutionContext, host: {handler: Handler; dir: string}, task: Task, want: CheckExpectation, opts: {readonly writeContent?: boolean} = {}): Promise<void> {
  const pb = definePlaybook({name: 'check', plays: [{name: 'check', hosts: 'all_hosts', gatherFacts: false, tasks: [task]}]});
  const check = await runFake(pb, {handler: host.handler, check: true});
  t.deepEqual(check.results().map((r) => [r.status, r.msg]), [[want.status, want.msg]]);
  const log = check.transports.get('h1')!.execs;
  t.is(log.length, 1, 'one probe batch');
  t.true(log.every(isProbeBatch), `only probes: ${log.map((r) => r.command).join('; ')}`);
  const real = await runFake(pb, {handler: host.handler});
  t.is(real.results()[0]?.status, want.status, real.results()[0]?.msg);
  t.deepEqual(real.transports.get('h1')!.execs.filter((r) => !isProbeBatch(r)).map((r) => shortCommand(r, opts.writeContent ?? true)), want.cmds);
  rmSync(host.dir, {recursive: true});
}
