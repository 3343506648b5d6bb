/**
 * `npm run bench`: provision vs ansible-playbook on the same hosts, in the same run.
 *
 * 1. The lab (`provision lab`, 7 real Debian hosts): the `site` playbook (playbooks/site.ts) and its
 *    Ansible twin (bench/ansible/site, run by its run.sh): the first run from a fresh lab (`lab down`,
 *    `lab up`), no-op re-runs and `--check` runs on the converged lab; after Ansible's converge,
 *    `provision run site --check` says how many changes it still sees (0: the same end state). Then
 *    the 30-task play below on the 7 lab hosts: first run, no-op, 5 changes per host.
 * 2. Scaling: the same 30-task play (bench/roles/bench30 and bench/ansible/noop30.yml: directories, copies,
 * templates, lineinfile, packages already present, services running, commands with `creates`) against
 * 1, 10, 50 and 100 hosts. The hosts are one real OpenSSH sshd on loopback (started here, with high
 * MaxStartups and MaxSessions): distinct inventory names, each with its own root folder. Both tools
 * gather facts; Ansible runs with pipelining on and ControlPersist (its default); every tool works on
 * --forks hosts at once (default 100, provision's default).
 *
 * For each host count: the first run (converges from nothing), no-op runs (nothing to change) and
 * runs with changes (`-e value=N`: the 5 templates change on every host), with the controller's CPU
 * time (user + sys, children included), peak RSS, open descriptors and SSH connections (the whole
 * process tree, sampled every 100 ms; Ansible forks a process per host). Beside provision's no-op,
 * plain ssh (bench/plain-ssh.mjs): one OpenSSH session per host replaying the commands a provision
 * no-op sends (recorded once through an sshd whose ForceCommand keeps each session's stdin). At
 * --profile-hosts, the no-op again, provision and plain ssh, with root's own login profile running
 * for every shell (this machine's ~/.bashrc runs `pyenv init`).
 *
 * Writes bench/results/<timestamp>.{md,svg,json} (the tables, the chart, the measures behind them) and
 * latest.{md,svg}; prints the table. The commands' raw output (each run's recap and log) goes to
 * bench/results/raw/<timestamp>.json, which git ignores: look there when a row looks wrong.
 * `--render bench/results/<timestamp>.json` writes the tables and chart of that run again.
 *
 *   npm run bench -- [--scenarios lab,scale] [--hosts 1,10,50,100] [--runs 3] [--site-first-runs 3]
 *                    [--ansible-runs N] [--ansible-change-max-hosts N] [--ansible-max-hosts N]
 *                    [--tools provision,ansible] [--forks 100] [--profile-hosts 100] [--out DIR] [--label NAME]
 *
 * --site-first-runs: first runs of the site per tool, each on a fresh lab (about 1-3 minutes each).
 *
 * --ansible-runs: Ansible's no-op and change runs per host count (default: --runs below 50 hosts, 1
 * from 50 hosts on: Ansible with 100 forks on one machine takes minutes per run).
 * --ansible-change-max-hosts: measure Ansible's runs with changes only up to this many hosts.
 */
import {spawn, spawnSync} from 'node:child_process';
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync} from 'node:fs';
import {cpus, loadavg, tmpdir} from 'node:os';
import {join, relative, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {group} from '../src/shared/match.ts';
import {q} from '../src/shared/quote.ts';
import {startSshd, type Sshd} from '../test/helpers/sshd.ts';

const root = resolve(import.meta.dirname, '..');
const {values} = parseArgs({
  options: {
    scenarios: {type: 'string', default: 'lab,scale'},
    hosts: {type: 'string', default: '1,10,50,100'},
    runs: {type: 'string', default: '3'},
    'site-first-runs': {type: 'string', default: '3'},
    'ansible-runs': {type: 'string'},
    'ansible-change-max-hosts': {type: 'string'},
    'ansible-max-hosts': {type: 'string'},
    tools: {type: 'string', default: 'provision,ansible'},
    /** Hosts in parallel for every tool in the scale scenario (provision's default, Ansible's forks, plain ssh's sessions). */
    forks: {type: 'string', default: '100'},
    /** Host count of the heavy-login-profile row (root's own ~/.bashrc runs for every shell); 0: none. */
    'profile-hosts': {type: 'string', default: '100'},
    out: {type: 'string', default: join(root, 'bench', 'results')},
    label: {type: 'string'},
    /** Re-render the table and chart of an earlier run's JSON (no runs). */
    render: {type: 'string'},
  },
});
const scenarios = new Set(values.scenarios.split(',').map((s) => s.trim()));
const siteFirstRuns = Math.max(1, Number(values['site-first-runs']));
const hostCounts = (scenarios.has('scale') ? values.hosts : '').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
const runs = Math.max(1, Number(values.runs));
const tools = new Set(values.tools.split(',').map((s) => s.trim()));
const forks = Math.max(1, Number(values.forks));
const profileHosts = scenarios.has('scale') ? Math.max(0, Number(values['profile-hosts'])) : 0;
const ansibleRuns = (n: number): number => (values['ansible-runs'] !== undefined ? Math.max(1, Number(values['ansible-runs'])) : n >= 50 ? 1 : runs);
/** Ansible only up to this many hosts in the scale scenario (`--ansible-max-hosts`); default: all. */
const ansibleMax = values['ansible-max-hosts'] !== undefined ? Number(values['ansible-max-hosts']) : Infinity;
/** Ansible's runs with changes only up to this many hosts (to keep the bench short); default: all. */
const ansibleChangeMax = values['ansible-change-max-hosts'] !== undefined ? Number(values['ansible-change-max-hosts']) : Infinity;
if (scenarios.has('scale') && hostCounts.length === 0) throw new Error('--hosts: expected host counts like 1,10,50,100');
/** The largest host count: where CPU and memory are measured (set again by --render). */
let maxHosts = hostCounts.length ? Math.max(...hostCounts) : 0;

type Tool = 'provision' | 'ansible';
interface Measure {
  readonly ms: number;
  /** User + system CPU seconds of the tool and every child it waited for (GNU time). */
  readonly cpuS: number;
  /** Peak RSS of the largest single process (GNU time), KiB. */
  readonly maxRssKb: number;
  /** Peak summed RSS of the whole process tree (sampled), KiB. */
  readonly treeRssKb?: number;
  /** Peak open file descriptors of the whole process tree (sampled). */
  readonly fds?: number;
  /** Peak TCP connections from the process tree to the sshd (sampled). */
  readonly conns?: number;
}
interface Scenario {
  readonly first: Measure[];
  readonly noop: Measure[];
  readonly change: Measure[];
}
type Results = Record<number, Partial<Record<Tool, Scenario>>>;
interface LabTool {
  readonly siteFirst: Measure[];
  readonly siteNoop: Measure[];
  readonly siteCheck: Measure[];
  readonly play30: Scenario;
}
interface LabResults {
  readonly hosts: number;
  readonly tools: Partial<Record<Tool, LabTool>>;
  /** Changes `provision run site --check` still sees right after Ansible's first converge. */
  readonly afterAnsible?: {readonly changed: number; readonly byHost: Record<string, number>};
}

// ---------------------------------------------------------------------------------------------------
// Measuring one run

/** Summed RSS (KiB), open descriptors and TCP connections to `port` of `pid`'s descendants, from /proc. */
function treeUsage(pid: number, port: number | undefined): {rssKb: number; fds: number; conns: number} {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const p = Number(name);
    const ppid = Number(f[1]);
    (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(p);
    rss.set(p, Number(f[21]) * 4);
  }
  let sum = 0;
  let fds = 0;
  const sockets = new Set<string>();
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    sum += rss.get(p) ?? 0;
    try {
      for (const fd of readdirSync(`/proc/${p}/fd`)) {
        fds++;
        if (port === undefined) continue;
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
          if (m) sockets.add(m[1]!);
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      // ended meanwhile
    }
    stack.push(...(children.get(p) ?? []));
  }
  let conns = 0;
  if (port !== undefined) {
    // /proc/net/tcp: the sockets whose remote end is the sshd's port, held by the tree.
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[2]?.endsWith(`:${hex}`) && sockets.has(f[9] ?? '')) conns++;
    }
  }
  return {rssKb: sum, fds, conns};
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, sample: boolean, port?: number): Promise<Measure & {code: number; out: string}> {
  const timeFile = join(tmpdir(), `prov-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], {cwd: root, env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']});
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let peak = 0;
    let fds = 0;
    let conns = 0;
    // Every 100 ms, or less often when a sample is dear (it reads /proc of every process: with 1,000
    // hosts, thousands of sshd sessions): the sampler takes at most 5% of one core from what it measures.
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      const s0 = performance.now();
      const u = treeUsage(child.pid!, port);
      peak = Math.max(peak, u.rssKb);
      fds = Math.max(fds, u.fds);
      conns = Math.max(conns, u.conns);
      timer = setTimeout(tick, Math.max(100, 20 * (performance.now() - s0)));
    };
    if (sample) timer = setTimeout(tick, 100);
    child.on('error', rej);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      let cpuS = 0;
      let maxRssKb = 0;
      try {
        const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
        const [, u = 0, s = 0, m = 0] = last.split(' ').map(Number);
        cpuS = u + s;
        maxRssKb = m;
      } catch {
        // GNU time wrote nothing (killed): CPU and memory stay 0.
      }
      rmSync(timeFile, {force: true});
      res({ms, cpuS, maxRssKb, ...(sample ? {treeRssKb: peak, fds, ...(port === undefined ? {} : {conns})} : {}), code: code ?? -1, out});
    });
  });
}

/** `changed=` per host from a PLAY RECAP (both tools print `host : ok=N changed=N unreachable=N failed=N`). */
function recap(out: string): Map<string, {changed: number; bad: number}> {
  const m = new Map<string, {changed: number; bad: number}>();
  for (const r of out.matchAll(/^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    m.set(group(r, 1), {changed: Number(r[2]), bad: Number(r[3]) + Number(r[4])});
  }
  return m;
}

function check(tool: Tool, what: string, r: {code: number; out: string}, hosts: readonly string[], want: (changed: number) => boolean): void {
  const rc = recap(r.out);
  const wrong = hosts.filter((h) => {
    const x = rc.get(h);
    return !x || x.bad > 0 || !want(x.changed);
  });
  if (r.code !== 0 || wrong.length > 0) {
    throw new Error(`${tool}, ${what}: exit ${r.code}, unexpected recap on ${wrong.slice(0, 5).join(', ') || '(none)'}\n${r.out.slice(-3000)}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Formatting

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (i: number): number => s[i] ?? NaN; // no measures: NaN
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? at(mid) : (at(mid - 1) + at(mid)) / 2;
};
const secs = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`);
const mb = (kb: number): string => `${Math.round(kb / 1024)} MB`;

function tableMd(results: Results): string {
  const lines = [
    '| hosts | run | provision | plain ssh, a session per host | ansible-playbook | ansible / provision |',
    '|---:|---|---:|---:|---:|---:|',
  ];
  for (const n of hostCounts) {
    const p = results[n]?.provision;
    const a = results[n]?.ansible;
    const row = (label: string, pick: (s: Scenario) => Measure[]): void => {
      const pm = p ? pick(p) : [];
      const am = a ? pick(a) : [];
      const pv = pm.length ? median(pm.map((m) => m.ms)) : undefined;
      const av = am.length ? median(am.map((m) => m.ms)) : undefined;
      const count = (xs: Measure[]): string => (xs.length > 1 ? ` (median of ${xs.length})` : xs.length === 1 && label !== 'first run' ? ' (1 run)' : '');
      const sm = label === 'no-op' ? (plain[n] ?? []) : [];
      const sv = sm.length ? median(sm.map((m) => m.ms)) : undefined;
      lines.push(`| ${n} | ${label} | ${pv !== undefined ? secs(pv) + count(pm) : '–'} | ${sv !== undefined ? secs(sv) + count(sm) : '–'} | ${av !== undefined ? secs(av) + count(am) : '–'} | ${pv !== undefined && av !== undefined ? `${(av / pv).toFixed(1)}x` : '–'} |`);
    };
    row('first run', (s) => s.first);
    row('no-op', (s) => s.noop);
    row('5 changes per host', (s) => s.change);
  }
  return lines.join('\n');
}

function resourcesMd(results: Results): string {
  const lines = [
    '| no-op | hosts | wall | controller CPU (user+sys) | peak RSS, largest process | peak RSS, process tree | open descriptors | SSH connections |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const row = (label: string, n: number, m: readonly Measure[]): void => {
    if (m.length === 0) return;
    const peak = (f: (x: Measure) => number | undefined): number => Math.max(...m.map((x) => f(x) ?? 0));
    lines.push(`| ${label} | ${n} | ${secs(median(m.map((x) => x.ms)))} | ${median(m.map((x) => x.cpuS)).toFixed(1)} s | ${mb(peak((x) => x.maxRssKb))} | ${mb(peak((x) => x.treeRssKb))} | ${peak((x) => x.fds)} | ${peak((x) => x.conns)} |`);
  };
  for (const n of hostCounts) {
    row('provision', n, results[n]?.provision?.noop ?? []);
    row('plain ssh', n, plain[n] ?? []);
    row('ansible-playbook', n, results[n]?.ansible?.noop ?? []);
  }
  return lines.length > 2 ? lines.join('\n') : '';
}

/** The no-op with a heavy login profile: provision against plain ssh. */
function profileMd(): string {
  if (!profile || profile.provision.length === 0) return '';
  const p = median(profile.provision.map((m) => m.ms));
  const a = median(profile.ssh.map((m) => m.ms));
  return [
    `| ${profile.hosts} hosts, no-op, root's heavy login profile (\`pyenv init\` in ~/.bashrc) | provision | plain ssh, a session per host | provision / plain ssh |`,
    '|---|---:|---:|---:|',
    `| wall (median of ${profile.provision.length}) | ${secs(p)} | ${secs(a)} | ${(p / a).toFixed(2)}x |`,
  ].join('\n');
}

/** A line chart: seconds (log scale) against host count, both tools, no-op solid and with changes dashed. */
function chartSvg(results: Results, title: string): string {
  const W = 820;
  const H = 440;
  const m = {l: 64, r: 240, t: 40, b: 48};
  const series: {name: string; color: string; dash: string; pts: [number, number][]}[] = [];
  const add = (tool: Tool, which: 'noop' | 'change', name: string, color: string, dash: string): void => {
    const pts = hostCounts.flatMap((n): [number, number][] => {
      const ms = results[n]?.[tool]?.[which];
      return ms && ms.length ? [[n, median(ms.map((x) => x.ms)) / 1000]] : [];
    });
    if (pts.length) series.push({name, color, dash, pts});
  };
  add('ansible', 'change', 'ansible-playbook, 5 changes', '#d95f02', '6 4');
  add('ansible', 'noop', 'ansible-playbook, no-op', '#d95f02', '');
  add('provision', 'change', 'provision, 5 changes', '#1b6ac9', '6 4');
  add('provision', 'noop', 'provision, no-op', '#1b6ac9', '');
  const all = series.flatMap((s) => s.pts.map((p) => p[1]));
  const ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
  const lo = ticks.filter((t) => t <= Math.min(...all, 1)).pop() ?? 0.1;
  const hi = ticks.find((t) => t >= Math.max(...all, 1)) ?? 5000;
  const xMax = Math.max(...hostCounts);
  const x = (n: number): number => m.l + (n / xMax) * (W - m.l - m.r);
  const y = (s: number): number => m.t + (1 - (Math.log10(s) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - m.t - m.b);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${m.l}" y="22" font-size="14" font-weight="600">${esc(title)}</text>`,
  ];
  for (const t of ticks.filter((t) => t >= lo && t <= hi)) {
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.l - 8}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" fill="#555">${t} s</text>`);
  }
  for (const n of hostCounts) {
    out.push(`<line x1="${x(n).toFixed(1)}" x2="${x(n).toFixed(1)}" y1="${m.t}" y2="${H - m.b}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${x(n).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle" fill="#555">${n}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle" fill="#333">hosts</text>`);
  out.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" fill="#333">seconds, median (log scale)</text>`);
  series.forEach((s, i) => {
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}" ` : ''}points="${s.pts.map(([n, v]) => `${x(n).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`);
    for (const [n, v] of s.pts) {
      out.push(`<circle cx="${x(n).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${s.color}"/>`);
      if (!s.dash) out.push(`<text x="${(x(n) + 5).toFixed(1)}" y="${(y(v) - 6).toFixed(1)}" fill="${s.color}" font-size="11">${v < 10 ? v.toFixed(2) : v.toFixed(1)}</text>`);
    }
    const ly = m.t + 10 + i * 20;
    out.push(`<line x1="${W - m.r + 14}" x2="${W - m.r + 40}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${W - m.r + 46}" y="${ly + 4}" fill="#333">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, {encoding: 'utf8'});
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n')[0]?.trim() || 'unknown';
}

// ---------------------------------------------------------------------------------------------------
// The lab: the site and the 30-task play on 7 real Debian hosts

const bin = join(root, 'bin/provision.js');
const ansibleLab = join(root, 'bench/ansible/site/run.sh');

async function labSection(): Promise<LabResults> {
  const must = async (args: string[]): Promise<void> => {
    const r = await timed(process.execPath, [bin, ...args], {NO_COLOR: '1'}, false);
    if (r.code !== 0) throw new Error(`provision ${args.join(' ')}: exit ${r.code}\n${r.out.slice(-2000)}`);
  };
  await must(['lab', 'up']);
  const inv = spawnSync(process.execPath, [bin, 'inventory', '--list'], {cwd: root, encoding: 'utf8'});
  const hosts = Object.keys((JSON.parse(inv.stdout) as {_meta: {hostvars: Record<string, unknown>}})._meta.hostvars);
  const fresh = async (): Promise<void> => {
    await must(['lab', 'down']);
    await must(['lab', 'up']);
  };
  const site = (tool: Tool, extra: string[] = []): ReturnType<typeof timed> => tool === 'provision'
    ? timed(process.execPath, [bin, 'run', 'site', '--no-tui', ...extra], {NO_COLOR: '1'}, false)
    : timed('bash', [ansibleLab, ...extra], {}, false);
  const play30 = (tool: Tool, value?: number): ReturnType<typeof timed> => {
    const vars = ['-e', `root=/var/tmp/bench30-${tool}`, ...(value === undefined ? [] : ['-e', `value=${value}`])];
    return tool === 'provision'
      ? timed(process.execPath, [bin, 'run', join(root, 'bench/playbooks/noop30.ts'), '--no-tui', ...vars], {NO_COLOR: '1'}, false)
      : timed('bash', [ansibleLab, ...vars], {PLAYBOOK: join(root, 'bench/ansible/noop30.yml')}, false);
  };
  const out: {hosts: number; tools: Partial<Record<Tool, LabTool>>; afterAnsible?: LabResults['afterAnsible']} = {hosts: hosts.length, tools: {}};
  for (const tool of (['provision', 'ansible'] as const).filter((t) => tools.has(t))) {
    const t: LabTool = {siteFirst: [], siteNoop: [], siteCheck: [], play30: {first: [], noop: [], change: []}};
    out.tools[tool] = t;
    try {
      for (let i = 0; i < siteFirstRuns; i++) {
        await fresh();
        const r = await site(tool);
        check(tool, 'lab, site first run', r, hosts, (c) => c > 0);
        t.siteFirst.push(r);
        log(`${tool} lab: site first run ${secs(r.ms)}`);
        if (tool === 'ansible' && i === 0 && tools.has('provision')) {
          // The same end state? provision's dry run right after Ansible's converge.
          const c = await site('provision', ['--check']);
          const byHost = Object.fromEntries([...recap(c.out)].map(([h, x]) => [h, x.changed]));
          out.afterAnsible = {changed: Object.values(byHost).reduce((a, b) => a + b, 0), byHost};
          log(`provision --check after ansible's converge: ${out.afterAnsible.changed} changes`);
        }
      }
      for (let i = 0; i < runs; i++) {
        const r = await site(tool);
        check(tool, 'lab, site no-op', r, hosts, (c) => c === 0);
        t.siteNoop.push(r);
        log(`${tool} lab: site no-op ${secs(r.ms)}`);
      }
      for (let i = 0; i < runs; i++) {
        const r = await site(tool, ['--check']);
        check(tool, 'lab, site --check', r, hosts, (c) => c === 0);
        t.siteCheck.push(r);
        log(`${tool} lab: site --check ${secs(r.ms)}`);
      }
      const first = await play30(tool);
      check(tool, 'lab, 30-task play first run', first, hosts, (c) => c > 0);
      t.play30.first.push(first);
      for (let i = 0; i < runs; i++) {
        const r = await play30(tool);
        check(tool, 'lab, 30-task play no-op', r, hosts, (c) => c === 0);
        t.play30.noop.push(r);
        log(`${tool} lab: 30-task no-op ${secs(r.ms)}`);
      }
      for (let i = 0; i < runs; i++) {
        const r = await play30(tool, 100 + i);
        check(tool, 'lab, 30-task play with changes', r, hosts, (c) => c === 5);
        t.play30.change.push(r);
        log(`${tool} lab: 30-task 5 changes ${secs(r.ms)}`);
      }
    } catch (e) {
      // One tool's failure (a host's apt stalled, a package server gone) does not lose the others' rows.
      failures.push(`${tool}, lab: ${(e as Error).message.split('\n')[0]}`);
      log(`FAILED: ${(e as Error).message.slice(0, 4000)}`);
    }
  }
  return out;
}

function labMd(lab: LabResults): string {
  const p = lab.tools.provision;
  const a = lab.tools.ansible;
  const cell = (ms: Measure[] | undefined): string => (ms && ms.length ? `${secs(median(ms.map((m) => m.ms)))}${ms.length > 1 ? ` (median of ${ms.length})` : ''}` : '–');
  const ratio = (pm: Measure[] | undefined, am: Measure[] | undefined): string =>
    pm?.length && am?.length ? `${(median(am.map((m) => m.ms)) / median(pm.map((m) => m.ms))).toFixed(1)}x` : '–';
  const rows: [string, (t: LabTool) => Measure[]][] = [
    ['site: first run, fresh lab', (t) => t.siteFirst],
    ['site: no-op re-run', (t) => t.siteNoop],
    ['site: `--check`, converged lab', (t) => t.siteCheck],
    ['30-task play: first run', (t) => t.play30.first],
    ['30-task play: no-op', (t) => t.play30.noop],
    ['30-task play: 5 changes per host', (t) => t.play30.change],
  ];
  const lines = [
    `| lab, ${lab.hosts} hosts | provision | ansible-playbook | ansible / provision |`,
    '|---|---:|---:|---:|',
    ...rows.map(([label, pick]) => `| ${label} | ${cell(p && pick(p))} | ${cell(a && pick(a))} | ${ratio(p && pick(p), a && pick(a))} |`),
  ];
  if (lab.afterAnsible) {
    const per = Object.entries(lab.afterAnsible.byHost).filter(([, c]) => c > 0).map(([h, c]) => `${h} ${c}`).join(', ');
    lines.push('', `After ansible-playbook's first converge of a fresh lab, \`provision run site --check\` saw ${lab.afterAnsible.changed} change${lab.afterAnsible.changed === 1 ? '' : 's'}${per ? ` (${per})` : ''}: ${lab.afterAnsible.changed === 0 ? 'the two playbooks leave the same end state' : 'where the two playbooks differ'}.`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// The run

/** What bench/results/<timestamp>.json holds: the measures (no raw output), enough for `--render`. */
interface Saved {
  readonly started: string;
  readonly machine: string;
  readonly load: [number, number];
  readonly hosts: number[];
  readonly runs?: number;
  /** `--ansible-change-max-hosts` (null: every host count). Missing in files written before it was kept. */
  readonly ansibleChangeMax?: number | null;
  readonly results: Results;
  readonly lab?: LabResults;
  /** Plain ssh's no-op replay per host count. */
  readonly plain?: Record<number, Measure[]>;
  /** The no-op with a heavy login profile. */
  readonly profile?: {readonly hosts: number; readonly provision: Measure[]; readonly ssh: Measure[]};
}
const earlier = values.render !== undefined ? (JSON.parse(readFileSync(values.render, 'utf8')) as Saved) : undefined;
if (earlier) {
  hostCounts.splice(0, hostCounts.length, ...earlier.hosts);
  maxHosts = hostCounts.length ? Math.max(...hostCounts) : 0;
}
const started = earlier ? new Date(earlier.started) : new Date();
/** This machine's load average over the last minute (`loadavg()` always gives three; 0 where unknown). */
function oneMinuteLoad(): number {
  const [one = 0] = loadavg();
  return one;
}
const load0 = earlier ? earlier.load[0] : oneMinuteLoad();
const machine = earlier ? earlier.machine : `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}, ${version('ansible-playbook', ['--version']).replace(/^ansible-playbook /, 'ansible-playbook ')}, ${version('ssh', ['-V']).split(',')[0]}`;
const results: Results = earlier?.results ?? {};
const log = (s: string): void => void process.stderr.write(`${s}\n`);
/** Scenarios that failed (their rows show what was measured before): listed under the tables. */
const failures: string[] = [];
const lab: LabResults | undefined = earlier ? earlier.lab : scenarios.has('lab') ? await labSection() : undefined;
const sshd = earlier || hostCounts.length === 0 ? undefined : await startSshd({maxStartups: 1000, maxSessions: 64});
/** Plain OpenSSH, one session per host replaying provision's commands: no-op measures per host count. */
const plain: Record<number, Measure[]> = earlier?.plain ?? {};
/** The no-op with root's heavy login profile running for every shell: provision and plain ssh. */
let profile: Saved['profile'] = earlier?.profile;

/** The inventory of `n` loopback hosts behind `server` for `tool` (each host its own root folder under `dir`). */
function scaleInventory(server: Sshd, dir: string, hosts: readonly string[], tool: Tool, name: string = tool, extra: readonly string[] = []): string {
  const lines = ['all:', '  vars:', ...extra.map((v) => `    ${v}`), '    ansible_user: root', `    ansible_ssh_private_key_file: ${server.clientKeyPath}`, `    ansible_ssh_known_hosts_file: ${server.knownHostsPath}`,
    `    ansible_ssh_common_args: '-o UserKnownHostsFile=${server.knownHostsPath} -o StrictHostKeyChecking=yes'`, '    ansible_python_interpreter: /usr/bin/python3',
    // provision's run lock and audit log: on, as in real use, but inside the bench's folder.
    `    provision_lock_file: ${join(dir, 'provision.lock')}`, `    provision_audit_log: ${join(dir, 'audit.log')}`,
    // "sshd is running": this sshd's PID (bench/roles/bench30).
    `    sshd_pid_file: ${join(server.tmp, 'sshd.pid')}`,
    // Every host is this one sshd (MaxStartups 1000 for the scale runs): up to --forks handshakes at once.
    `    provision_ssh_max_startups: ${forks}`, '  hosts:'];
  for (const h of hosts) lines.push(`    ${h}: {ansible_host: 127.0.0.1, ansible_port: ${server.port}, root: ${join(dir, tool, h)}}`);
  const p = join(dir, `${name}.yml`);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

/**
 * The commands a provision no-op of the 30-task play sends to one host, as a shell script for plain
 * ssh: a converged host behind an sshd whose ForceCommand records each session's stdin (the mux's
 * frames: transport/mux.ts), then every command of those frames, in order, with its stdin. The run
 * lock's control session is left out: plain ssh takes no lock. `ROOT` stands for the host's folder.
 */
async function recordReplay(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'prov-bench-record-'));
  const rec = join(dir, 'rec');
  mkdirSync(rec);
  writeFileSync(join(dir, 'record.sh'), `#!/bin/sh\ntee "${rec}/$$.in" | bash -c "$SSH_ORIGINAL_COMMAND"\n`, {mode: 0o755});
  const recorder = await startSshd({maxStartups: 100, maxSessions: 64, forceCommand: join(dir, 'record.sh')});
  try {
    // Through the command shell (its frames are what is recorded), whatever the login shell costs.
    const inv = scaleInventory(recorder, dir, ['h001'], 'provision', 'provision', ['provision_multiplex: true']);
    const args = [join(root, 'bin/provision.js'), 'run', join(root, 'bench/playbooks/noop30.ts'), '-i', inv, '--no-tui'];
    for (const what of ['first run', 'no-op']) {
      if (what === 'no-op') for (const f of readdirSync(rec)) rmSync(join(rec, f));
      const r = spawnSync(process.execPath, args, {cwd: root, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}});
      if (r.status !== 0) throw new Error(`recording the replay (${what}): exit ${r.status}\n${r.stdout}${r.stderr}`);
    }
    const commands: string[] = [];
    for (const f of readdirSync(rec)) {
      const b = readFileSync(join(rec, f));
      let at = 0;
      const take = (n: number): Buffer => b.subarray(at, (at += n));
      while (at < b.length) {
        const nl = b.indexOf(10, at);
        if (nl < 0) break;
        const [kind, , x, y, mode] = b.subarray(at, nl).toString('latin1').split(' ');
        at = nl + 1;
        if (kind === 'X') {
          const cmd = take(Number(x)).toString('utf8');
          const stdin = mode === 'n' ? undefined : take(Number(y)).toString('utf8');
          commands.push(stdin === undefined ? `sh -c ${q(cmd)} </dev/null` : `printf %s ${q(stdin)} | sh -c ${q(cmd)}`);
        } else if (kind === 'S' || kind === 'W') take(Number(x));
      }
    }
    if (commands.length === 0) throw new Error('recording the replay: no command recorded (is the mux off?)');
    log(`plain ssh replays the ${commands.length} commands of a provision no-op on one host`);
    return commands.join('\n').replaceAll(join(dir, 'provision', 'h001'), 'ROOT') + '\n';
  } finally {
    await recorder.stop();
    rmSync(dir, {recursive: true, force: true});
  }
}

/** Plain ssh: `replay` for each host (its folder in place of ROOT), one session per host, `forks` at once. */
function plainSsh(server: Sshd, dir: string, hosts: readonly string[], replay: string, sample: boolean): ReturnType<typeof timed> {
  const scripts = join(dir, 'plain');
  rmSync(scripts, {recursive: true, force: true});
  mkdirSync(scripts);
  for (const h of hosts) writeFileSync(join(scripts, `${h}.sh`), replay.replaceAll('ROOT', join(dir, 'provision', h)));
  return timed(process.execPath, [join(root, 'bench/plain-ssh.mjs'), '--dir', scripts, '--port', String(server.port), '--key', server.clientKeyPath, '--known-hosts', server.knownHostsPath, '--forks', String(forks)], {}, sample, server.port);
}

try {
  const replay = sshd && tools.has('provision') ? await recordReplay() : undefined;
  for (const n of sshd ? hostCounts : []) {
    if (!sshd) break;
    const dir = mkdtempSync(join(tmpdir(), `prov-bench-${n}-`));
    const hosts = Array.from({length: n}, (_, i) => `h${String(i + 1).padStart(3, '0')}`);
    const sample = true;
    const extra = (value: number | undefined): string[] => (value === undefined ? [] : ['-e', `value=${value}`]);
    const provInv = scaleInventory(sshd, dir, hosts, 'provision');
    const ansInv = scaleInventory(sshd, dir, hosts, 'ansible');
    const ansEnv = {
      ANSIBLE_PIPELINING: 'True', ANSIBLE_FORKS: String(Math.min(n, forks)), ANSIBLE_HOME: join(dir, '.ansible'), ANSIBLE_LOCAL_TEMP: join(dir, '.ansible', 'tmp'),
      ANSIBLE_NOCOLOR: '1', ANSIBLE_STDOUT_CALLBACK: 'default', ANSIBLE_RETRY_FILES_ENABLED: 'False', ANSIBLE_TIMEOUT: '60',
    };
    const provision = (inv: string, value?: number, port = sshd.port): ReturnType<typeof timed> =>
      timed(process.execPath, [join(root, 'bin/provision.js'), 'run', join(root, 'bench/playbooks/noop30.ts'), '-i', inv, '-f', String(forks), '--no-tui', ...extra(value)], {NO_COLOR: '1'}, sample, port);
    const run = (tool: Tool, value?: number): ReturnType<typeof timed> => tool === 'provision'
      ? provision(provInv, value)
      : timed('ansible-playbook', ['-i', ansInv, join(root, 'bench/ansible/noop30.yml'), ...extra(value)], ansEnv, sample, sshd.port);

    const active = (['provision', 'ansible'] as const).filter((t) => tools.has(t) && (t !== 'ansible' || n <= ansibleMax));
    for (const tool of active) {
      const times = tool === 'ansible' ? ansibleRuns(n) : runs;
      const s: Scenario = {first: [], noop: [], change: []};
      (results[n] ??= {})[tool] = s;
      try {
        const first = await run(tool);
        check(tool, `${n} hosts, first run`, first, hosts, (c) => c > 0);
        s.first.push(first);
        log(`${tool} ${n} hosts: first run ${secs(first.ms)}`);
        for (let i = 0; i < times; i++) {
          const r = await run(tool);
          check(tool, `${n} hosts, no-op run`, r, hosts, (c) => c === 0);
          s.noop.push(r);
          log(`${tool} ${n} hosts: no-op ${secs(r.ms)} (cpu ${r.cpuS.toFixed(1)} s, rss ${mb(r.maxRssKb)}, tree ${mb(r.treeRssKb ?? 0)}, fds ${r.fds}, connections ${r.conns})`);
        }
        if (tool === 'provision' && replay) {
          for (let i = 0; i < runs; i++) {
            const r = await plainSsh(sshd, dir, hosts, replay, sample);
            if (r.code !== 0) throw new Error(`plain ssh, ${n} hosts: exit ${r.code}\n${r.out.slice(-2000)}`);
            (plain[n] ??= []).push(r);
            log(`plain ssh ${n} hosts: ${secs(r.ms)} (cpu ${r.cpuS.toFixed(1)} s, tree ${mb(r.treeRssKb ?? 0)}, fds ${r.fds}, connections ${r.conns})`);
          }
          if (n === profileHosts) {
            // The same no-op with root's own login profile (pyenv init in ~/.bashrc) for every shell.
            const heavy = await startSshd({maxStartups: 1000, maxSessions: 64, loginProfile: true});
            try {
              const inv = scaleInventory(heavy, dir, hosts, 'provision', 'profile');
              profile = {hosts: n, provision: [], ssh: []};
              for (let i = 0; i < runs; i++) {
                const r = await provision(inv, undefined, heavy.port);
                check(tool, `${n} hosts, no-op with a heavy login profile`, r, hosts, (c) => c === 0);
                profile.provision.push(r);
                const p = await plainSsh(heavy, dir, hosts, replay, sample);
                if (p.code !== 0) throw new Error(`plain ssh with the login profile: exit ${p.code}\n${p.out.slice(-2000)}`);
                profile.ssh.push(p);
                log(`heavy login profile, ${n} hosts: provision ${secs(r.ms)}, plain ssh ${secs(p.ms)}`);
              }
            } finally {
              await heavy.stop();
            }
          }
        }
        for (let i = 0; i < (tool === 'ansible' && n > ansibleChangeMax ? 0 : times); i++) {
          const r = await run(tool, 100 + i);
          check(tool, `${n} hosts, run with changes`, r, hosts, (c) => c === 5);
          s.change.push(r);
          log(`${tool} ${n} hosts: 5 changes ${secs(r.ms)}`);
        }
      } catch (e) {
        failures.push(`${tool}, ${n} hosts: ${(e as Error).message.split('\n')[0]}`);
        log(`FAILED: ${(e as Error).message.slice(0, 4000)}`);
      }
    }
    rmSync(dir, {recursive: true, force: true});
  }
} finally {
  await sshd?.stop();
}

// ---------------------------------------------------------------------------------------------------
// Results

const load1 = earlier ? earlier.load[1] : oneMinuteLoad();
const changeMax = earlier ? (earlier.ansibleChangeMax ?? Infinity) : ansibleChangeMax;
const stamp = started.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
const title = `30-task play on ${hostCounts.join(' / ')} loopback hosts: provision vs ansible-playbook`;
const md = [
  `## provision vs ansible-playbook`,
  '',
  `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC · ${machine} · load average ${load0.toFixed(1)} → ${load1.toFixed(1)}`,
  '',
  ...(lab ? [
    '### The lab: the site and the 30-task play on real Debian hosts',
    '',
    labMd(lab),
    '',
    'Site: playbooks/site.ts and its Ansible twin bench/ansible/site (same plays, same end state), run on `provision lab` (systemd-nspawn hosts on this machine). ' +
      'First runs start from a fresh lab (`lab down`, `lab up`); packages come through the lab\'s apt cache. Ansible: pipelining on, ControlPersist, forks = hosts.',
    '',
  ] : []),
  ...(hostCounts.length ? [
    `### ${title}`,
    '',
    tableMd(results),
    '',
    resourcesMd(results),
    '',
    ...(profile ? [profileMd(), ''] : []),
  `Medians of the runs shown, ${forks} hosts in parallel for every tool. No-op: nothing to change; 5 changes: every host gets 5 re-rendered templates (\`-e value=N\`). ` +
    'Plain ssh: one OpenSSH session per host (no ControlMaster) replaying, with `sh -s`, the commands a provision no-op sent to a host (recorded from its command shell; the run lock left out). ' +
    'Ansible: pipelining on, ControlPersist; from 50 hosts on it runs once per row unless `--ansible-runs` says otherwise' +
    (Number.isFinite(changeMax) ? `; its runs with changes were measured up to ${changeMax} hosts only` : '') + '. ' +
    'Hosts are one sshd on loopback (the controller and the "hosts" share the CPUs). CPU: user + system time of the tool and its children; ' +
    'RSS of the process tree sampled every 100 ms.',
    '',
  ] : []),
  ...(failures.length ? ['Failed (rows above hold what was measured before the failure):', '', ...failures.map((f) => `- ${f}`), ''] : []),
].join('\n');
// The measures alone: each run's raw output (`out`, up to 20 KB a run, over 1 MB a bench) stays out
// of the committed results.
const numbers = (ms: readonly Measure[]): Measure[] => ms.map((m) => ({ms: m.ms, cpuS: m.cpuS, maxRssKb: m.maxRssKb, ...(m.treeRssKb !== undefined ? {treeRssKb: m.treeRssKb} : {}), ...(m.fds !== undefined ? {fds: m.fds} : {}), ...(m.conns !== undefined ? {conns: m.conns} : {})}));
const scenarioNumbers = (s: Scenario): Scenario => ({first: numbers(s.first), noop: numbers(s.noop), change: numbers(s.change)});
const perTool = <T>(byTool: Partial<Record<Tool, T>>, f: (t: T) => T): Partial<Record<Tool, T>> =>
  Object.fromEntries((Object.entries(byTool) as [Tool, T][]).map(([tool, t]) => [tool, f(t)]));
const saved: Saved = {
  started: started.toISOString(), machine, load: [load0, load1], hosts: hostCounts, runs: earlier ? earlier.runs : runs,
  ansibleChangeMax: Number.isFinite(changeMax) ? changeMax : null,
  results: Object.fromEntries(Object.entries(results).map(([n, byTool]) => [n, perTool(byTool, scenarioNumbers)])),
  plain: Object.fromEntries(Object.entries(plain).map(([n, m]) => [n, numbers(m)])),
  ...(profile ? {profile: {hosts: profile.hosts, provision: numbers(profile.provision), ssh: numbers(profile.ssh)}} : {}),
  ...(lab ? {lab: {...lab, tools: perTool(lab.tools, (t) => ({siteFirst: numbers(t.siteFirst), siteNoop: numbers(t.siteNoop), siteCheck: numbers(t.siteCheck), play30: scenarioNumbers(t.play30)}))}} : {}),
};
mkdirSync(values.out, {recursive: true});
const name = values.label ?? stamp;
const base = join(values.out, name);
writeFileSync(`${base}.md`, md);
if (hostCounts.length) writeFileSync(`${base}.svg`, chartSvg(results, title));
writeFileSync(`${base}.json`, JSON.stringify(saved, null, 1) + '\n');
// latest.{md,svg}: what README shows (no latest.json: it would only repeat <timestamp>.json).
for (const ext of hostCounts.length ? ['md', 'svg'] : ['md']) copyFileSync(`${base}.${ext}`, join(values.out, `latest.${ext}`));
if (!earlier) {
  // Raw output, for a look after the run (git ignores raw/): results and lab as measured, `out` included.
  mkdirSync(join(values.out, 'raw'), {recursive: true});
  writeFileSync(join(values.out, 'raw', `${name}.json`), JSON.stringify({started: saved.started, results, lab}, null, 1) + '\n');
}
console.log(md);
console.log(`written: ${relative(process.cwd(), base)}.{${hostCounts.length ? 'md,svg,json' : 'md,json'}} and latest.{${hostCounts.length ? 'md,svg' : 'md'}}${earlier ? '' : `; raw output: ${relative(process.cwd(), join(values.out, 'raw', `${name}.json`))}`}`);
