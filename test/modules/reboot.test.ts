import test from 'ava';
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {shell} from '../../src/modules/command.ts';
import {parseReboot, reboot, rebootModule} from '../../src/modules/reboot.ts';
import {localExec, type Handler} from '../../src/transport/fake.ts';
import {runFake} from '../helpers/engine.ts';
import {isProbeBatch} from '../helpers/fakehost.ts';

// ---- pure plans

test('reboot plan: always by default, once asked for with ifRequired, never without a boot id', (t) => {
  const now = rebootModule.plan({bootId: 'b1', required: false}, {});
  t.deepEqual(now.steps, [{kind: 'reboot', command: 'systemctl reboot || shutdown -r now', bootId: 'b1', timeoutS: 600, test: 'whoami', postDelayS: 0}]);
  t.is(now.reason, 'reboot');
  t.deepEqual(rebootModule.plan({bootId: 'b1', required: false}, {ifRequired: true}).steps, []);
  t.regex(rebootModule.plan({bootId: 'b1', required: false}, {ifRequired: true}).reason ?? '', /no reboot required/);
  const asked = rebootModule.plan({bootId: 'b1', required: true}, {ifRequired: true, rebootTimeout: 30, testCommand: 'systemctl is-system-running', postRebootDelay: 2});
  t.deepEqual(asked.steps, [{kind: 'reboot', command: 'systemctl reboot || shutdown -r now', bootId: 'b1', timeoutS: 30, test: 'systemctl is-system-running', postDelayS: 2}]);
  t.regex(asked.reason ?? '', /reboot-required asks for it/);
  t.regex(rebootModule.plan({bootId: '', required: false}, {}).fail ?? '', /boot_id/);
  t.deepEqual(parseReboot('0f6c\nrequired\n'), {bootId: '0f6c', required: true});
  t.regex(reboot({rebootTimeout: -1}).problems().join(), /rebootTimeout/);
});

// ---- through the engine, on a fake host whose boot id lives in a file: the reboot command changes it

function bootingHost(opts: {comesBack: boolean}): {handler: Handler; sent: string[]; dir: string} {
  const dir = mkdtempSync(join(tmpdir(), 'prov-reboot-'));
  const id = join(dir, 'boot_id');
  writeFileSync(id, 'boot-1\n');
  const sent: string[] = [];
  const handler: Handler = (command, stdin) => {
    const swap = (s: string): string => s.replaceAll('/proc/sys/kernel/random/boot_id', id);
    if (isProbeBatch({command, stdin})) return localExec(command, {stdin: swap(stdin ?? '')});
    sent.push(command);
    if (command.includes('systemctl reboot')) {
      if (opts.comesBack) writeFileSync(id, 'boot-2\n');
      return {code: 0, stdout: '', stderr: ''};
    }
    return localExec(swap(command), {stdin});
  };
  return {handler, sent, dir};
}

test('reboot through the engine: the command is sent, the host is connected to again until its boot id changed, then the test command runs', async (t) => {
  const host = bootingHost({comesBack: true});
  const pb = definePlaybook({name: 'r', plays: [{name: 'r', hosts: 'all_hosts', gatherFacts: false, tasks: [reboot({testCommand: 'echo tested'}), shell({script: 'echo after'})]}]});
  const check = await runFake(pb, {handler: host.handler, check: true});
  t.deepEqual(check.results().map((r) => [r.status, r.msg])[0], ['changed', 'would reboot']);
  t.deepEqual(host.sent, [], 'nothing sent under --check');

  const run = await runFake(pb, {handler: host.handler});
  const r = run.results()[0];
  t.is(r?.status, 'changed', r?.msg);
  t.regex(r?.msg ?? '', /^reboot; back after \d+\.\d s$/);
  t.is(host.sent.length, 4, host.sent.join(' | '));
  t.regex(host.sent[0] ?? '', /^nohup sh -c .*systemctl reboot/);
  t.is(host.sent[1], 'cat /proc/sys/kernel/random/boot_id');
  t.is(host.sent[2], 'echo tested');
  t.is(readFileSync(join(host.dir, 'boot_id'), 'utf8'), 'boot-2\n');
  t.regex(host.sent[3] ?? '', /echo after/, 'the next task runs on the new connection');
  t.is(run.summary.hosts.h1?.failed, 0);
  rmSync(host.dir, {recursive: true});
});

test('reboot through the engine: a host that never comes back fails the task after rebootTimeout', async (t) => {
  const host = bootingHost({comesBack: false});
  const pb = definePlaybook({name: 'r', plays: [{name: 'r', hosts: 'all_hosts', gatherFacts: false, tasks: [reboot({rebootTimeout: 3})]}]});
  const run = await runFake(pb, {handler: host.handler});
  const r = run.results()[0];
  t.is(r?.status, 'failed');
  t.regex(r?.msg ?? '', /did not come back within 3 s \(last: still up, not rebooted yet\)/);
  rmSync(host.dir, {recursive: true});
});
