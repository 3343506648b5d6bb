/**
 * `npm run bench`: provision vs ansible-playbook on the same hosts, in the same run.
 *
 * A 30-task play (directories, copies, templates, lineinfile, commands with `creates`) against 1 and
 * 10 hosts behind a real OpenSSH sshd on loopback (each host its own folder). Both tools gather facts;
 * Ansible runs with pipelining on, ControlPersist (its default) and forks = the host count.
 * Prints medians of the first (converging) run and of the no-op re-runs, and the ratios.
 *
 *   npm run bench -- [--hosts 1,10] [--runs 5]
 */
import {execFile} from 'node:child_process';
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {startSshd} from '../test/helpers/sshd.ts';

const root = resolve(import.meta.dirname, '..');
const {values} = parseArgs({options: {hosts: {type: 'string', default: '1,10'}, runs: {type: 'string', default: '5'}}});
const hostCounts = values.hosts.split(',').map(Number);
const runs = Number(values.runs);

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ms: number; code: number; out: string}> {
  const t0 = performance.now();
  return new Promise((res) => execFile(cmd, args, {cwd: root, env: {...process.env, ...env}, maxBuffer: 64 << 20}, (err, stdout, stderr) => {
    res({ms: performance.now() - t0, code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr});
  }));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

const sshd = await startSshd({maxStartups: 200, maxSessions: 50});
const rows: string[][] = [];
try {
  for (const n of hostCounts) {
    const dir = mkdtempSync(join(tmpdir(), `prov-bench-${n}-`));
    const hosts = Array.from({length: n}, (_, i) => `h${String(i + 1).padStart(2, '0')}`);
    const inv = (tool: string): string => {
      const lines = ['all:', '  vars:', '    ansible_user: root', `    ansible_ssh_private_key_file: ${sshd.clientKeyPath}`, `    ansible_ssh_known_hosts_file: ${sshd.knownHostsPath}`,
        `    ansible_ssh_common_args: '-o UserKnownHostsFile=${sshd.knownHostsPath} -o StrictHostKeyChecking=yes'`, '    ansible_python_interpreter: /usr/bin/python3', '  hosts:'];
      for (const h of hosts) lines.push(`    ${h}: {ansible_host: 127.0.0.1, ansible_port: ${sshd.port}, root: ${join(dir, tool, h)}}`);
      const p = join(dir, `${tool}.yml`);
      writeFileSync(p, lines.join('\n') + '\n');
      return p;
    };
    const provInv = inv('provision');
    const ansInv = inv('ansible');
    const ansEnv = {ANSIBLE_PIPELINING: 'True', ANSIBLE_FORKS: String(n), ANSIBLE_HOME: join(dir, '.ansible'), ANSIBLE_LOCAL_TEMP: join(dir, '.ansible', 'tmp'), ANSIBLE_NOCOLOR: '1', ANSIBLE_STDOUT_CALLBACK: 'default'};
    const prov = (): ReturnType<typeof timed> => timed(process.execPath, [join(root, 'bin/provision.js'), 'run', join(root, 'bench/playbooks/noop30.ts'), '-i', provInv, '-f', String(n), '--no-tui'], {NO_COLOR: '1'});
    const ans = (): ReturnType<typeof timed> => timed('ansible-playbook', ['-i', ansInv, join(root, 'bench/ansible/noop30.yml')], ansEnv);

    const p1 = await prov();
    const a1 = await ans();
    if (p1.code !== 0 || a1.code !== 0) throw new Error(`first run failed:\n${p1.out.slice(-2000)}\n${a1.out.slice(-2000)}`);
    const pn: number[] = [];
    const an: number[] = [];
    for (let i = 0; i < runs; i++) {
      const p = await prov();
      const a = await ans();
      if (!/changed=0 /.test(p.out) || !/changed=0 /.test(a.out)) throw new Error(`a no-op run changed something:\n${p.out.slice(-1500)}\n${a.out.slice(-1500)}`);
      pn.push(p.ms);
      an.push(a.ms);
    }
    rows.push([`${n} host${n > 1 ? 's' : ''}, first run`, fmt(p1.ms), fmt(a1.ms), `${(a1.ms / p1.ms).toFixed(1)}x`]);
    rows.push([`${n} host${n > 1 ? 's' : ''}, no-op (median of ${runs})`, fmt(median(pn)), fmt(median(an)), `${(median(an) / median(pn)).toFixed(1)}x`]);
    rmSync(dir, {recursive: true, force: true});
  }
} finally {
  await sshd.stop();
}

const head = ['30-task play, loopback sshd', 'provision', 'ansible-playbook', 'ansible / provision'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i])).join(' | ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows) console.log(line(r));
