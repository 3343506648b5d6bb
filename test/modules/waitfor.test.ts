import test from 'ava';
import {execFileSync, spawnSync} from 'node:child_process';
import {createServer, type AddressInfo} from 'node:net';
import {join} from 'node:path';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';
import type {Plan} from '../../src/core/types.ts';
import {parseWaitState, waitFor, waitForModule, waitForProbeScript, waitScript, type WaitForArgs, type WaitState} from '../../src/modules/waitfor.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));

const cases: {title: string; have: WaitState; args: WaitForArgs; cmds: string[]; reason: RegExp}[] = [
  {title: 'port closed → wait', have: {kind: 'unmet'}, args: {port: 8080}, cmds: ['sh -s'], reason: /^wait for port 8080 on 127\.0\.0\.1 to answer$/},
  {title: 'port answers → nothing', have: {kind: 'met'}, args: {port: 8080, host: 'db'}, cmds: [], reason: /^port 8080 on db answers$/},
  {title: 'port open, want stopped → wait', have: {kind: 'unmet'}, args: {port: 80, state: 'stopped'}, cmds: ['sh -s'], reason: /to close/},
  {title: 'file missing → wait', have: {kind: 'unmet'}, args: {path: '/run/app.pid'}, cmds: ['sh -s'], reason: /\/run\/app\.pid to exist/},
  {title: 'file there → nothing', have: {kind: 'met'}, args: {path: '/run/app.pid'}, cmds: [], reason: /exists/},
  {title: 'search matches → nothing', have: {kind: 'met'}, args: {path: '/var/log/app.log', search: 'ready'}, cmds: [], reason: /matches \/ready\//},
  {title: 'file absent wanted → nothing', have: {kind: 'met'}, args: {path: '/run/lock', state: 'absent'}, cmds: [], reason: /is absent/},
];
for (const c of cases) {
  test(`waitFor plan: ${c.title}`, (t) => {
    const plan = waitForModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(cmds(plan), c.cmds);
    t.regex(plan.reason ?? '', c.reason);
    t.is(plan.diff, undefined);
  });
}

test('waitFor plan fails: both or neither of port and path, bad combinations, no tool', (t) => {
  t.regex(waitForModule.plan({kind: 'unmet'}, {}).fail ?? '', /port or path/);
  t.regex(waitForModule.plan({kind: 'unmet'}, {port: 1, path: '/x'}).fail ?? '', /port or path/);
  t.regex(waitForModule.plan({kind: 'unmet'}, {port: 1, state: 'absent'}).fail ?? '', /'started' or 'stopped'/);
  t.regex(waitForModule.plan({kind: 'unmet'}, {path: '/x', search: 'a', state: 'absent'}).fail ?? '', /search needs/);
  t.regex(waitForModule.plan({kind: 'unmet'}, {path: 'x'}).fail ?? '', /absolute/);
  t.regex(waitForModule.plan({kind: 'unavailable', message: 'waitFor: the host has neither nc nor bash: cannot test a TCP port'}, {port: 1}).fail ?? '', /neither nc nor bash/);
});

test('parser: up/down against the wanted state', (t) => {
  t.deepEqual(parseWaitState('up\n', {port: 1}), {kind: 'met'});
  t.deepEqual(parseWaitState('down\n', {port: 1}), {kind: 'unmet'});
  t.deepEqual(parseWaitState('down\n', {port: 1, state: 'stopped'}), {kind: 'met'});
  t.like(parseWaitState('waitFor: the host has neither nc nor bash\n', {port: 1}), {kind: 'unavailable'});
});

// ---- the scripts, for real with the local sh

const run = (script: string): {code: number; stdout: string; stderr: string} => {
  const r = spawnSync('sh', ['-s'], {input: script, encoding: 'utf8', timeout: 20_000});
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr};
};

test('the wait loop: a file that appears, a regex, a timeout with a clear message', (t) => {
  const host = fakeHost('wait', {}, {log: 'starting\n'});
  const log = join(host.dir, 'log');
  t.is(run(waitForProbeScript({path: log, search: '^ready'})).stdout.trim(), 'down');
  // The line arrives a second later, written by a background job of the same shell.
  const waited = run(`(sleep 1; echo ready >> ${log}) &\n${waitScript({path: log, search: '^ready', timeout: 10})}`);
  t.is(waited.code, 0, waited.stderr);
  t.regex(waited.stdout, /^waited [12] s$/m);
  t.is(run(waitForProbeScript({path: log, search: '^ready'})).stdout.trim(), 'up');
  const late = run(waitScript({path: join(host.dir, 'never'), timeout: 1}));
  t.is(late.code, 1);
  t.is(late.stderr.trim(), `timed out after 1 s waiting for ${host.dir}/never to exist`);
  t.notThrows(() => execFileSync('sh', ['-n', '-c', waitScript({port: 22, host: 'a b'})]));
});

test('the port test answers up for a listening port and down for a closed one', async (t) => {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const probe = async (p: number): Promise<string> => {
    const {localExec} = await import('../../src/transport/fake.ts');
    return (await localExec(waitForProbeScript({port: p}))).stdout.trim();
  };
  const up = await probe(port);
  if (/neither nc nor bash/.test(up)) {
    server.close();
    t.log('no nc and no bash here');
    return;
  }
  t.is(up, 'up');
  server.close();
  await new Promise((r) => setTimeout(r, 50));
  t.is(await probe(port), 'down');
});

// ---- check mode through the engine: reading is harmless; waiting is not done under --check

const checkCases: {title: string; files: Record<string, string>; args: (d: string) => WaitForArgs; status: 'ok'; msg: (d: string) => string; cmds: string[]}[] = [
  {title: 'file there → ok, nothing sent', files: {ready: ''}, args: (d) => ({path: `${d}/ready`}), status: 'ok', msg: (d) => `${d}/ready exists`, cmds: []},
  {title: 'file missing → ok "would wait", a real run sends the loop', files: {}, args: (d) => ({path: `${d}/ready`, timeout: 1}), status: 'ok', msg: (d) => `would wait for ${d}/ready to exist`, cmds: ['sh -s']},
  {title: 'regex not matched → would wait', files: {log: 'boot\n'}, args: (d) => ({path: `${d}/log`, search: 'up$', timeout: 1}), status: 'ok', msg: (d) => `would wait for ${d}/log to match /up$/`, cmds: ['sh -s']},
  {title: 'file gone, want absent → ok', files: {}, args: (d) => ({path: `${d}/lock`, state: 'absent'}), status: 'ok', msg: (d) => `${d}/lock is absent`, cmds: []},
];
for (const c of checkCases) {
  test(`waitFor check mode: ${c.title}`, async (t) => {
    const host = fakeHost('waitfor', {}, c.files);
    await assertCheckMode(t, host, waitFor(c.args(host.dir)), {status: c.status, msg: c.msg(host.dir), cmds: c.cmds});
  });
}
