/**
 * The lab's alert receiver: a tiny HTTP server on the bridge address, where the site's Alertmanager
 * (on the monitoring host) delivers alerts (`alertmanager_webhook_url` in the lab inventory names it).
 * Every POST it receives is appended to `.lab/alerts/received.jsonl` as one JSON line:
 *   {"received_at": ISO time, "path": "/alerts", "from": "10.231.0.41", "body": <the POSTed JSON>}
 * The end-to-end tests read that file: an alert in it went through Prometheus, Alertmanager and the
 * network. It is a Node script run with this Node (`process.execPath`), written next to the file it
 * appends to, started detached like pebble; its PID (and start time) is recorded in state.json.
 */
import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {LabConfig, LabPaths} from './config.ts';
import {spawnDetached, waitFor} from './run.ts';
import {daemonOf, isAlive, type DaemonState} from './state.ts';
import {tcpOpen} from './net-probe.ts';

/** Where the receiver lives and writes. */
export interface ReceiverFiles {
  readonly dir: string;
  readonly script: string;
  /** One JSON line per POST received. */
  readonly received: string;
  readonly log: string;
}

export function receiverFiles(paths: LabPaths): ReceiverFiles {
  const dir = join(paths.lab, 'alerts');
  return {dir, script: join(dir, 'receiver.mjs'), received: join(dir, 'received.jsonl'), log: join(paths.logs, 'alert-receiver.log')};
}

/** The receiver: argv HOST PORT FILE. SIGTERM ends it at once (Alertmanager keeps connections open). */
export const RECEIVER_SOURCE = `// Written by provision lab (src/lab/receiver.ts): the lab's alert receiver.
import {createServer} from 'node:http';
import {appendFileSync} from 'node:fs';
const [host, port, file] = process.argv.slice(2);
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST') {
      res.writeHead(200, {'content-type': 'text/plain'});
      res.end('provision lab alert receiver: POST alerts here\\n');
      return;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    appendFileSync(file, JSON.stringify({received_at: new Date().toISOString(), path: req.url, from: req.socket.remoteAddress, body}) + '\\n');
    res.writeHead(200, {'content-type': 'text/plain'});
    res.end('ok\\n');
  });
});
server.listen(Number(port), host, () => console.log(new Date().toISOString(), 'alert receiver on http://' + host + ':' + port + '/, appending to ' + file));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
`;

/**
 * The port the receiver must listen on: that of `alertmanager_webhook_url` in the inventory's
 * all.vars when it points at the bridge address over plain HTTP; undefined otherwise (no receiver).
 */
export function receiverPort(cfg: LabConfig): number | undefined {
  const v = cfg.vars.alertmanager_webhook_url;
  if (typeof v !== 'string') return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' || u.hostname !== cfg.bridgeIp) return undefined;
  return u.port === '' ? 80 : Number(u.port);
}

/** Start the receiver on `ip:port` unless the recorded one still runs. */
export async function ensureReceiver(paths: LabPaths, ip: string, port: number, current: DaemonState | undefined): Promise<{daemon: DaemonState; started: boolean}> {
  const f = receiverFiles(paths);
  if (current && (await isAlive(current))) return {daemon: current, started: false};
  mkdirSync(f.dir, {recursive: true});
  mkdirSync(paths.logs, {recursive: true});
  writeFileSync(f.script, RECEIVER_SOURCE);
  if (await tcpOpen(ip, port, 500)) throw new Error(`port ${ip}:${port} (alertmanager_webhook_url) is taken by another program`);
  const daemon = await daemonOf(spawnDetached([process.execPath, f.script, ip, String(port), f.received], f.log));
  if (!(await waitFor(async () => (await isAlive(daemon)) && (await tcpOpen(ip, port, 500)), 10_000)))
    throw new Error(`the alert receiver did not start; see ${f.log}`);
  return {daemon, started: true};
}
