import {defineRole, file, copy, template, lineinfile, command, shell, apt, type Task} from '../../../src/index.ts';

/**
 * The benchmark's 30 tasks (bench/ansible/noop30.yml is the same play in Ansible's YAML): 5 directories,
 * 5 copies, 5 templates, 5 lineinfile, 3 packages already present, 2 services running, 5 commands
 * with `creates`. Everything lives under the host's `root` variable, apart from the packages (read
 * only: they are installed already) and the services (read only: a process-table probe).
 *
 * Services: the loopback targets are the bench machine itself, where PID 1 need not be systemd, so
 * "sshd is running" is a read-only probe (`kill -0` of the PID in `sshd_pid_file`, in the probe batch)
 * instead of `service`; Ansible runs the same command with `changed_when: false`. On real systemd
 * hosts use `service`. Not `pgrep -x sshd`: it reads every process of the machine, and with 1,000
 * hosts simulated on one machine (thousands of sshd sessions) the pgreps of both tools took 70% of its
 * CPU, a cost no real host has.
 */
const tasks: Task[] = [];
const r = (ctx: {vars: Record<string, unknown>}) => String(ctx.vars.root);
for (let i = 1; i <= 5; i++) tasks.push(file((ctx) => ({path: `${r(ctx)}/d${i}`, state: 'directory', mode: '0755'}), {name: `dir ${i}`}));
for (let i = 1; i <= 5; i++) tasks.push(copy((ctx) => ({dest: `${r(ctx)}/d${i}/copy.txt`, content: `copy ${i}\n`, mode: '0644'}), {name: `copy ${i}`}));
for (let i = 1; i <= 5; i++) tasks.push(template((ctx) => ({src: 'item.conf.mustache', dest: `${r(ctx)}/d${i}/item.conf`, mode: '0644', vars: {item: i}}), {name: `template ${i}`}));
for (let i = 1; i <= 5; i++) tasks.push(lineinfile((ctx) => ({path: `${r(ctx)}/d${i}/env`, regexp: '^KEY=', line: `KEY=${i}`, create: true}), {name: `lineinfile ${i}`}));
for (const p of ['openssh-client', 'coreutils', 'procps']) tasks.push(apt({packages: [p], state: 'present'}, {name: `package ${p}`}));
for (let i = 1; i <= 2; i++) tasks.push(shell((ctx) => ({script: 'echo "sshd is not running" >&2; exit 1', unless: `kill -0 "$(cat ${String(ctx.vars.sshd_pid_file)})"`}), {name: `service sshd running ${i}`}));
for (let i = 1; i <= 5; i++) tasks.push(command((ctx) => ({argv: ['touch', `${r(ctx)}/d${i}/stamp`], creates: `${r(ctx)}/d${i}/stamp`}), {name: `command ${i}`}));

export default defineRole({name: 'bench30', defaults: {value: 42, sshd_pid_file: '/run/sshd.pid'}, tasks});
