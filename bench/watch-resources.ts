/**
 * What `provision watch` costs while it runs: CPU seconds and memory of the watcher process over a
 * period of checks on the lab (which must be up and converged: `provision lab up && provision run site`).
 *
 *   npx tsx bench/watch-resources.ts [--minutes 60] [--every 30s]
 *
 * Samples /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS, VmHWM) every 30 s and prints
 * the figures: CPU seconds in all and per check, average CPU %, RSS at start / end / peak.
 */
import {spawn} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {parseArgs} from 'node:util';

const {values} = parseArgs({options: {minutes: {type: 'string', default: '60'}, every: {type: 'string', default: '30s'}}});
const root = join(import.meta.dirname, '..');
const minutes = Number(values.minutes);
const tick = 100; // USER_HZ on Linux: /proc's CPU times are in 1/100 s

const child = spawn(process.execPath, [join(root, 'bin/provision.js'), 'watch', 'site', '-i', join(root, 'inventory/lab.yml'), '--every', String(values.every), '--json', '--state', '/tmp/provision-watch-bench.json'], {cwd: root, stdio: ['ignore', 'pipe', 'inherit']});
let checks = 0;
let failed = 0;
let durations: number[] = [];
child.stdout.setEncoding('utf8').on('data', (d: string) => {
  for (const line of d.split('\n')) {
    if (!line.includes('"type":"check"')) continue;
    const c = JSON.parse(line) as {duration_ms: number; drifted_hosts: number; unreachable_hosts: number};
    checks++;
    durations.push(c.duration_ms);
    if (c.drifted_hosts !== 0 || c.unreachable_hosts !== 0) failed++;
  }
});

function sample(): {cpu: number; rss: number; hwm: number} {
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / tick;
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return {cpu, rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024};
}

const samples: {t: number; cpu: number; rss: number; hwm: number}[] = [];
const t0 = Date.now();
await new Promise((r) => setTimeout(r, 5000));
const timer = setInterval(() => {
  samples.push({t: (Date.now() - t0) / 1000, ...sample()});
  if (Date.now() - t0 >= minutes * 60_000) {
    clearInterval(timer);
    child.kill('SIGTERM');
  }
}, 30_000);
samples.push({t: 5, ...sample()});
await new Promise((r) => child.once('exit', r));
const first = samples[0]!;
const last = samples.at(-1)!;
const cpu = last.cpu - first.cpu;
durations = durations.sort((a, b) => a - b);
console.log(`watch every ${values.every} for ${((last.t - first.t) / 60).toFixed(1)} min on the lab: ${checks} checks (${failed} with drift or unreachable hosts), check duration median ${(durations[durations.length >> 1] ?? 0) / 1000} s, max ${(durations.at(-1) ?? 0) / 1000} s`);
console.log(`CPU: ${cpu.toFixed(1)} s in ${((last.t - first.t) / 60).toFixed(1)} min = ${((cpu / (last.t - first.t)) * 100).toFixed(2)} % of one core, ${(cpu / Math.max(1, checks - 1)).toFixed(2)} s per check`);
console.log(`memory (RSS): ${first.rss.toFixed(0)} MiB at start, ${last.rss.toFixed(0)} MiB at the end, peak ${Math.max(...samples.map((s) => s.hwm)).toFixed(0)} MiB`);
