/**
 * The lab's alert receiver (src/lab/receiver.ts), on loopback: started detached with its PID and start
 * time, kept when it runs, one JSON line per POST (as Alertmanager's webhook sends), ended by SIGTERM
 * at once even with a kept-alive connection; and the port it takes from the inventory's webhook URL.
 */
import test from 'ava';
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {request, Agent} from 'node:http';
import {createServer} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {labPaths, type LabConfig} from '../../src/lab/config.ts';
import {ensureReceiver, receiverFiles, receiverPort} from '../../src/lab/receiver.ts';
import {isAlive} from '../../src/lab/state.ts';
import {waitFor} from '../../src/lab/run.ts';

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number};
      s.close(() => resolve(port));
    });
  });

function post(port: number, path: string, body: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({host: '127.0.0.1', port, path, method: 'POST', agent, headers: {'content-type': 'application/json'}}, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('receiverPort: the port of alertmanager_webhook_url when it points at the bridge over http', (t) => {
  const cfg = (url: unknown): LabConfig => ({bridgeIp: '10.231.0.1', vars: {alertmanager_webhook_url: url}}) as unknown as LabConfig;
  t.is(receiverPort(cfg('http://10.231.0.1:19093/alerts')), 19093);
  t.is(receiverPort(cfg('http://10.231.0.1/alerts')), 80);
  t.is(receiverPort(cfg('https://hooks.example.com/x')), undefined);
  t.is(receiverPort(cfg(undefined)), undefined);
  t.is(receiverPort(cfg('not a url')), undefined);
});

test('ensureReceiver: a daemon appending one JSON line per POST; kept when running; SIGTERM ends it at once', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'prov-lab-receiver-'));
  t.teardown(() => rmSync(root, {recursive: true, force: true}));
  const paths = labPaths(root);
  const port = await freePort();
  const r = await ensureReceiver(paths, '127.0.0.1', port, undefined);
  t.teardown(() => {
    try {
      process.kill(r.daemon.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  t.true(r.started);
  t.true(r.daemon.startTime !== '');
  const again = await ensureReceiver(paths, '127.0.0.1', port, r.daemon);
  t.false(again.started);
  t.is(again.daemon.pid, r.daemon.pid);

  const agent = new Agent({keepAlive: true});
  const alert = {receiver: 'site', status: 'firing', alerts: [{labels: {alertname: 'WebServerDown', instance: 'web1'}}]};
  t.is(await post(port, '/alerts', JSON.stringify(alert), agent), 200);
  t.is(await post(port, '/watchdog', 'not json', agent), 200);
  const lines = readFileSync(receiverFiles(paths).received, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {path: string; body: unknown; received_at: string});
  t.is(lines.length, 2);
  t.like(lines[0], {path: '/alerts', body: alert});
  t.like(lines[1], {path: '/watchdog', body: 'not json'});
  t.false(Number.isNaN(Date.parse(lines[0]!.received_at)));

  process.kill(r.daemon.pid, 'SIGTERM');
  t.true(await waitFor(async () => !(await isAlive(r.daemon)), 2000, 50), 'gone within 2 s despite the kept-alive connection');
  agent.destroy();
});
