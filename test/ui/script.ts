/**
 * Scripted run events for the UI tests and the renderer benchmark: a play of `tasks` tasks on `hosts`
 * hosts, run in step like the engine does, with chosen failures, unreachable hosts and check mode.
 */
import type {HostCounts, RunEvent, Status} from '../../src/core/events.ts';

export interface ScriptOptions {
  readonly hosts: number | readonly string[];
  readonly tasks?: number;
  readonly check?: boolean;
  readonly diff?: boolean;
  /** host → 1-based task index where it fails. */
  readonly fail?: Readonly<Record<string, number>>;
  /** Hosts that cannot be reached (fail at connect, before any task). */
  readonly unreachable?: readonly string[];
  /** Stop the script after this many task events (no recap): a frame mid-run. */
  readonly stopAfterTask?: number;
  /** Within the last task, only this many hosts have answered. */
  readonly answered?: number;
  readonly interrupted?: boolean;
}

export const TASKS = ['config dir', 'log dir', 'app config', 'motd', 'host file', 'env line', 'current link', 'log file', 'backup motd', 'initialise', 'old stuff gone'];

export function hostNames(n: number): string[] {
  const w = String(n).length;
  return Array.from({length: n}, (_, i) => `web${String(i + 1).padStart(w, '0')}`);
}

/** Status of task `t` (1-based) on host `h`: a fixed pattern with changes, oks and skips. */
function statusOf(t: number): Status {
  if (t % 4 === 0) return 'ok';
  if (t % 5 === 0) return 'skipped';
  return 'changed';
}

export function script(o: ScriptOptions): RunEvent[] {
  const names = typeof o.hosts === 'number' ? hostNames(o.hosts) : [...o.hosts];
  const tasks = o.tasks ?? TASKS.length;
  const check = !!o.check;
  const ev: RunEvent[] = [];
  const counts: Record<string, HostCounts> = {};
  for (const n of names) counts[n] = {ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0};
  const countsOf = (host: string): HostCounts => {
    const c = counts[host];
    if (!c) throw new Error(`script: ${host} is not one of the hosts`);
    return c;
  };
  ev.push({type: 'start', playbook: 'site', inventory: 'inventory/lab.yml', check, diff: !!o.diff, hosts: names});
  const dead = new Set<string>();
  for (const u of o.unreachable ?? []) {
    dead.add(u);
    countsOf(u).unreachable = 1;
  }
  ev.push({type: 'play', name: 'web servers', hosts: names, tasks});
  for (const u of o.unreachable ?? []) {
    ev.push({type: 'result', host: u, task: 'Gathering Facts', play: '', role: null, status: 'unreachable', duration_ms: 3000, diff: null, msg: `ssh: connect to host ${u} port 22: Connection refused`, pending: false});
  }
  const pending = new Set<string>();
  for (let t = 1; t <= tasks; t++) {
    const name = TASKS[(t - 1) % TASKS.length] + (t > TASKS.length ? ` ${t}` : '');
    ev.push({type: 'task', play: 'web servers', name, role: 'nginx'});
    const live = names.filter((n) => !dead.has(n));
    const last = o.stopAfterTask !== undefined && t === o.stopAfterTask;
    const answering = last && o.answered !== undefined ? live.slice(0, o.answered) : live;
    for (const host of answering) {
      let status = statusOf(t);
      if (o.fail?.[host] === t) status = 'failed';
      countsOf(host)[status]++;
      const isPending = check && status !== 'skipped' && pending.has(host);
      ev.push({
        type: 'result', host, task: name, play: 'web servers', role: 'nginx', status, duration_ms: 40 + t,
        diff: status === 'changed' && t === 3 ? {before: 'port=80\nworkers=2\n', after: 'port=8080\nworkers=2\n', path: '/etc/nginx/app.conf'} : null,
        msg: status === 'failed' ? 'exit 2: nginx: [emerg] unknown directive "lsten"' : status === 'changed' ? (check ? 'would change' : 'changed') : status === 'skipped' ? 'condition false' : 'ok',
        pending: isPending,
        ...(status === 'failed' ? {cmd: 'nginx -t -c /etc/nginx/nginx.conf', stdout: '', stderr: 'nginx: [emerg] unknown directive "lsten" in /etc/nginx/sites-enabled/app:3\nnginx: configuration file /etc/nginx/nginx.conf test failed\n', rc: 2} : {}),
      });
      if (status === 'changed' && check) pending.add(host);
      if (status === 'failed') dead.add(host);
    }
    if (last) return ev;
  }
  ev.push({type: 'recap', hosts: counts, duration_ms: 12_345, check, ...(o.interrupted ? {interrupted: true} : {})});
  return ev;
}
