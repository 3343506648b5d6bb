import test from 'ava';
import {execFileSync} from 'node:child_process';
import {createServer, type IncomingHttpHeaders, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {assertCheckMode, fakeHost, isProbeBatch} from '../helpers/fakehost.ts';
import {runFake} from '../helpers/engine.ts';
import {definePlaybook} from '../../src/core/task.ts';
import {secret} from '../../src/core/secret.ts';
import type {Plan, Task} from '../../src/core/types.ts';
import {parseUriState, uri, uriModule, uriProbeScript, uriScript, type UriArgs, type UriState} from '../../src/modules/uri.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));

// ---- a real HTTP server on loopback, for the requests curl makes from the (fake, local) host

let server: Server;
let base = '';
const seen: {method: string; url: string; headers: IncomingHttpHeaders; body: string}[] = [];

test.before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({method: req.method ?? '', url: req.url ?? '', headers: req.headers, body});
      if (req.url === '/health') res.writeHead(200, {'content-type': 'text/plain'}).end('status: ready\n');
      else if (req.url === '/down') res.writeHead(503).end('maintenance\nback soon');
      else if (req.url === '/items') res.writeHead(201).end(`{"created": ${JSON.stringify(body)}}`);
      else res.writeHead(404).end('no such page');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after.always(() => new Promise<void>((r) => server.close(() => r())));

/** Run `task` for real on a fake host (the local shell): its result and the commands it sent besides probes. */
async function run(task: Task): Promise<{status: string; msg: string; sent: string[]}> {
  const pb = definePlaybook({name: 'uri', plays: [{name: 'uri', hosts: 'all_hosts', gatherFacts: false, tasks: [task]}]});
  const r = await runFake(pb);
  const [res] = r.results();
  return {status: res?.status ?? '', msg: res?.msg ?? '', sent: r.transports.get('h1')!.execs.filter((e) => !isProbeBatch(e)).map((e) => e.command)};
}

// ---- plans: pure

const planCases: {title: string; have: UriState; args: UriArgs; cmds: string[]; reason?: RegExp; fail?: RegExp}[] = [
  {title: 'GET → one request step', have: {kind: 'ready'}, args: {url: 'http://127.0.0.1/health'}, cmds: ['sh -s'], reason: /^GET http:\/\/127\.0\.0\.1\/health \(expect 200\)$/},
  {title: 'POST with statuses and a body check', have: {kind: 'ready'}, args: {url: 'https://api/x', method: 'POST', body: '{}', status: [200, 201], bodyContains: 'id'}, cmds: ['sh -s'], reason: /^POST https:\/\/api\/x \(expect 200 or 201, body containing 'id'\)$/},
  {title: 'no curl → fails', have: {kind: 'unavailable', message: 'uri: the host has no curl'}, args: {url: 'http://a/'}, cmds: [], fail: /no curl/},
  {title: 'not an http URL → fails', have: {kind: 'ready'}, args: {url: 'file:///etc/passwd'}, cmds: [], fail: /http:\/\/ or https:\/\//},
  {title: 'status out of range → fails', have: {kind: 'ready'}, args: {url: 'http://a/', status: [200, 42]}, cmds: [], fail: /got 42/},
  {title: 'HEAD with bodyContains → fails', have: {kind: 'ready'}, args: {url: 'http://a/', method: 'HEAD', bodyContains: 'x'}, cmds: [], fail: /not with HEAD/},
  {title: 'GET with a body → fails', have: {kind: 'ready'}, args: {url: 'http://a/', body: 'x'}, cmds: [], fail: /not GET/},
  {title: 'bad header name → fails', have: {kind: 'ready'}, args: {url: 'http://a/', headers: {'X Bad': '1'}}, cmds: [], fail: /'X Bad' is not a header name/},
];
for (const c of planCases) {
  test(`uri plan: ${c.title}`, (t) => {
    const plan = uriModule.plan(c.have, c.args);
    t.deepEqual(cmds(plan), c.cmds);
    if (c.fail) t.regex(plan.fail ?? '', c.fail);
    else t.is(plan.fail, undefined);
    if (c.reason) t.regex(plan.reason ?? '', c.reason);
  });
}

test('uri probe: curl or not, never a request', (t) => {
  t.deepEqual(parseUriState('curl\n'), {kind: 'ready'});
  t.deepEqual(parseUriState('uri: the host has no curl\n'), {kind: 'unavailable', message: 'uri: the host has no curl'});
  t.notRegex(uriProbeScript, /curl -|http/);
});

test('uri script: valid POSIX sh whatever the quotes in url, headers, body', (t) => {
  const a: UriArgs = {url: "http://h/a'b\"$x`y", method: 'PUT', headers: {'X-A': "it's \"$HOME\""}, body: "'; rm -rf / #", bodyContains: "o'k", status: [200, 204]};
  t.notThrows(() => execFileSync('sh', ['-n', '-c', uriScript(a)]));
});

// ---- requests for real: curl from the local shell against the server above

const runCases: {title: string; args: (b: string) => UriArgs; status: 'ok' | 'changed' | 'failed'; msg: RegExp}[] = [
  {title: 'GET 200 → ok', args: (b) => ({url: `${b}/health`}), status: 'ok', msg: /^GET http:\/\/127\.0\.0\.1:\d+\/health \(expect 200\); status 200$/},
  {title: 'GET 200 and the body has the string → ok', args: (b) => ({url: `${b}/health`, bodyContains: 'ready'}), status: 'ok', msg: /status 200$/},
  {title: 'HEAD → ok', args: (b) => ({url: `${b}/health`, method: 'HEAD'}), status: 'ok', msg: /^HEAD .*status 200$/},
  {title: '503 is among the statuses → ok', args: (b) => ({url: `${b}/down`, status: [200, 503]}), status: 'ok', msg: /status 503$/},
  {title: '503 → failed, naming the status and the body', args: (b) => ({url: `${b}/down`}), status: 'failed', msg: /GET http:\/\/127\.0\.0\.1:\d+\/down answered 503, expected 200; body: maintenance back soon/},
  {title: 'body without the string → failed', args: (b) => ({url: `${b}/health`, bodyContains: 'healthy'}), status: 'failed', msg: /answered 200, but the body does not contain 'healthy'/},
  {title: '404 with a list of statuses → failed', args: (b) => ({url: `${b}/nope`, status: [200, 204]}), status: 'failed', msg: /answered 404, expected 200 or 204/},
  {title: 'nothing listening → failed, request failed', args: () => ({url: 'http://127.0.0.1:1/', timeout: 5}), status: 'failed', msg: /request failed|Failed to connect|Couldn't connect/},
];
for (const c of runCases) {
  test.serial(`uri run: ${c.title}`, async (t) => {
    const r = await run(uri(c.args(base)));
    t.is(r.status, c.status, r.msg);
    t.regex(r.msg, c.msg);
    t.deepEqual(r.sent, ['sh -s']);
  });
}

test.serial('uri run: POST sends method, headers and body, is a change; a Secret header is masked', async (t) => {
  seen.length = 0;
  const token = secret('s3cr3t-token');
  const r = await run(uri({url: `${base}/items`, method: 'POST', body: '{"name": "it\'s"}', headers: {'Content-Type': 'application/json', Authorization: token}, status: 201, bodyContains: '"created"'}));
  t.is(r.status, 'changed', r.msg);
  t.regex(r.msg, /^POST .*\/items \(expect 201, body containing '"created"'\); status 201$/);
  t.is(seen.length, 1);
  t.like(seen[0], {method: 'POST', url: '/items', body: '{"name": "it\'s"}'});
  t.is(seen[0]?.headers['content-type'], 'application/json');
  t.is(seen[0]?.headers.authorization, 's3cr3t-token');
  t.false(r.sent.join('\n').includes('s3cr3t'), 'the command line never holds the secret (the script goes on stdin)');
});

test.serial("uri run: a playbook's changedWhen wins over the module's", async (t) => {
  const r = await run(uri({url: `${base}/health`}, {changedWhen: () => true}));
  t.is(r.status, 'changed');
});

// ---- check mode: only the probe; no request is sent

const checkCases: {title: string; args: UriArgs; status: 'ok' | 'changed'; msg: string}[] = [
  {title: 'GET → ok "would GET", a real run sends the request', args: {url: 'http://127.0.0.1:9/health'}, status: 'ok', msg: 'would GET http://127.0.0.1:9/health (expect 200)'},
  {title: 'HEAD → ok', args: {url: 'http://127.0.0.1:9/', method: 'HEAD', status: [200, 301]}, status: 'ok', msg: 'would HEAD http://127.0.0.1:9/ (expect 200 or 301)'},
  {title: 'POST → changed "would POST"', args: {url: 'http://127.0.0.1:9/items', method: 'POST', body: 'x', status: 201}, status: 'changed', msg: 'would POST http://127.0.0.1:9/items (expect 201)'},
  {title: 'DELETE → changed', args: {url: 'http://127.0.0.1:9/items/1', method: 'DELETE'}, status: 'changed', msg: 'would DELETE http://127.0.0.1:9/items/1 (expect 200)'},
];
for (const c of checkCases) {
  test(`uri check mode: ${c.title}`, async (t) => {
    // The fake host runs probes only; the request step is recorded, not run (port 9 is never asked).
    await assertCheckMode(t, fakeHost('uri', {}, {}), uri(c.args), {status: c.status, msg: c.msg, cmds: ['sh -s']});
  });
}
