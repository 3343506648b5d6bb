import {defineRole, file, copy, template, lineinfile, command, type Task} from '../../../src/index.ts';

/** 30 tasks: 6 directories, 6 copies, 6 templates, 6 lineinfile, 6 commands with `creates` (bench/ansible/noop30.yml is the same in YAML). */
const tasks: Task[] = [];
const r = (ctx: {vars: Record<string, unknown>}) => String(ctx.vars.root);
for (let i = 1; i <= 6; i++) tasks.push(file((ctx) => ({path: `${r(ctx)}/d${i}`, state: 'directory', mode: '0755'}), {name: `dir ${i}`}));
for (let i = 1; i <= 6; i++) tasks.push(copy((ctx) => ({dest: `${r(ctx)}/d${i}/copy.txt`, content: `copy ${i}\n`, mode: '0644'}), {name: `copy ${i}`}));
for (let i = 1; i <= 6; i++) tasks.push(template((ctx) => ({src: 'item.conf.mustache', dest: `${r(ctx)}/d${i}/item.conf`, mode: '0644', vars: {item: i}}), {name: `template ${i}`}));
for (let i = 1; i <= 6; i++) tasks.push(lineinfile((ctx) => ({path: `${r(ctx)}/d${i}/env`, regexp: '^KEY=', line: `KEY=${i}`, create: true}), {name: `lineinfile ${i}`}));
for (let i = 1; i <= 6; i++) tasks.push(command((ctx) => ({argv: ['touch', `${r(ctx)}/d${i}/stamp`], creates: `${r(ctx)}/d${i}/stamp`}), {name: `command ${i}`}));

export default defineRole({name: 'bench30', defaults: {value: 42}, tasks});
