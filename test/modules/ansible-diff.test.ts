/**
 * Differential tests of the file modules against real Ansible (ansible-core, `-c local`): seeded random
 * cases of `lineinfile`, `blockinfile`, `replace`, `file` and `copy`, each on its own file, applied once
 * by Ansible and once by provision to identical starting files. The resulting files must be byte-identical
 * (and have the same mode), the `changed` and `failed` flags the same; a second provision run changes
 * nothing, or (where Ansible's is not idempotent either) what a second Ansible run changes. Two known
 * differences are named and tolerated (`joinedLastLine`, `absentBlockOfMissingFile`). Ansible's modules run in a few `ansible-playbook` processes with the json callback, each a
 * playbook of many literal tasks (`ignore_errors`), alongside provision's runs.
 *
 * The seed is printed; `PROVISION_DIFF_SEED=<n>` replays one, `PROVISION_DIFF_CASES=<n>` sets the cases
 * per module. Without a working `ansible-playbook` the test fails: it never skips.
 */
import test from 'ava';
import {execFile} from 'node:child_process';
import {chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import type {Task} from '../../src/core/types.ts';
import {blockinfile} from '../../src/modules/blockinfile.ts';
import {copy, file, lineinfile} from '../../src/modules/files.ts';
import {replace} from '../../src/modules/replace.ts';
import {ansibleEnv} from '../helpers/ansible.ts';
import {runFake} from '../helpers/engine.ts';
import {rng} from '../helpers/rng.ts';

const SEED = Number(process.env['PROVISION_DIFF_SEED'] ?? 20261129);
/** Cases per module; `PROVISION_DIFF_CASES=<n>` gives every module n. */
const EACH = process.env['PROVISION_DIFF_CASES'] === undefined ? undefined : Number(process.env['PROVISION_DIFF_CASES']);
const COUNTS: Readonly<Record<ModuleName, number>> = EACH === undefined
  ? {lineinfile: 90, blockinfile: 70, replace: 60, file: 50, copy: 50}
  : {lineinfile: EACH, blockinfile: EACH, replace: EACH, file: EACH, copy: EACH};


type ModuleName = 'lineinfile' | 'blockinfile' | 'replace' | 'file' | 'copy';

/** What is at a case's path: before (the starting state) and after (compared). */
type Node = {kind: 'missing'} | {kind: 'file'; content: string; mode: number} | {kind: 'directory'; mode: number};

interface Case {
  readonly id: number;
  readonly module: ModuleName;
  readonly start: Node;
  /** Ansible's module arguments, without the path. */
  readonly ansible: Record<string, unknown>;
  /** Provision's task on a path. */
  readonly task: (path: string) => Task;
  /** Shown on a difference. */
  readonly describe: string;
}

function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number): boolean => r() < p;
  const int = (n: number): number => Math.floor(r() * n);

  // No `{`: Ansible would template it. No `\r`: not every line ending is compared here.
  const lineWords = ['a=1', 'a=2', 'b=2', '#b=3', 'b = 4', 'c', 'c=3', '', ' x', 'key: val', 'x', 'a=1', 'last', '# comment', 'tab\there'];
  const lines = (min = 0): string[] => Array.from({length: min + int(6)}, () => pick(lineWords));
  /** A text file's content: empty, with or without its last newline. */
  const text = (extra: readonly string[] = [], noLastNewline = 0.3): string => {
    if (chance(0.1)) return '';
    const ls = lines(1);
    for (const e of extra) ls.splice(int(ls.length + 1), 0, e);
    return ls.join('\n') + (chance(noLastNewline) ? '' : '\n');
  };
  const fileModes = ['0644', '0600', '0640', '0755', '0444'];
  const dirModes = ['0755', '0700', '0750', '0775'];
  const startFile = (extra: readonly string[] = []): Node => ({kind: 'file', content: text(extra), mode: parseInt(pick(['0644', '0644', '0600', '0755']), 8)});
  // Python `re` and JavaScript agree on these, as searches of one line (with or without its newline).
  const lineRegexps = ['^a=', '^#?b\\s*=', '=', '^c$', 'b', '^x', '1$', '^$', '^ ', 'val', '^#', 'nomatch', '^(a|c)', 'a=[0-9]'];
  const anchorRegexps = ['^a=', '^#?b', '^c', 'x', '^last', 'nomatch', '^#'];

  function lineinfileCase(): Omit<Case, 'id' | 'module'> {
    const start: Node = chance(0.15) ? {kind: 'missing'} : {kind: 'file', content: text([], 0.45), mode: parseInt(pick(['0644', '0644', '0600', '0755']), 8)};
    const absent = chance(0.25);
    const create = start.kind === 'missing' ? chance(0.6) : chance(0.2);
    const regexp = chance(0.6) ? pick(lineRegexps) : undefined;
    const line = absent && regexp !== undefined && chance(0.5) ? undefined : pick([...lineWords.filter((w) => w !== ''), 'new=1', 'a=1']);
    const where = absent ? 'none' : pick(['none', 'none', 'after', 'before']);
    const insertAfter = where === 'after' ? pick(['EOF', 'BOF', ...anchorRegexps]) : undefined;
    const insertBefore = where === 'before' ? pick(['BOF', ...anchorRegexps]) : undefined;
    const mode = chance(0.2) ? pick(fileModes) : undefined;
    const args = {
      line, regexp, state: absent ? 'absent' as const : undefined, insertAfter, insertBefore, create: create || undefined, mode,
    };
    const ansible = clean({line, regexp, state: absent ? 'absent' : undefined, insertafter: insertAfter, insertbefore: insertBefore, create: create || undefined, mode});
    return {start, ansible, task: (path) => lineinfile(clean({path, ...args}) as Parameters<typeof lineinfile>[0], {ignoreErrors: true}), describe: JSON.stringify(ansible)};
  }

  function blockinfileCase(): Omit<Case, 'id' | 'module'> {
    const marker = pick([undefined, '# {mark} PROVISION MANAGED BLOCK', '<!-- {mark} web -->', '// {mark}', '; {mark} cfg']);
    const markerBegin = chance(0.2) ? pick(['START', 'OPEN']) : undefined;
    const markerEnd = chance(0.2) ? pick(['STOP', 'CLOSE']) : undefined;
    const m = marker ?? '# {mark} PROVISION MANAGED BLOCK';
    const begin = m.split('{mark}').join(markerBegin ?? 'BEGIN');
    const end = m.split('{mark}').join(markerEnd ?? 'END');
    const blockText = (): string => {
      if (chance(0.12)) return '';
      const b = lines(1).join('\n');
      return chance(0.6) ? `${b}\n` : b;
    };
    // The start: no block, the block as wanted, another block, reversed or lone markers.
    const block = blockText();
    let start: Node;
    const shape = pick(['none', 'none', 'same', 'other', 'other', 'reversed', 'lone', 'missing']);
    const body = (b: string): string[] => (b.replace(/\n$/, '') === '' ? [] : b.replace(/\n$/, '').split('\n'));
    if (shape === 'missing') start = {kind: 'missing'};
    else if (shape === 'none') start = startFile();
    else if (shape === 'lone') start = startFile([pick([begin, end])]);
    else {
      const inner = shape === 'same' ? body(block) : body(blockText());
      const fenced = shape === 'reversed' ? [end, ...inner, begin] : [begin, ...inner, end];
      const before = chance(0.7) ? lines(0) : [];
      const after = chance(0.7) ? lines(0) : [];
      const content = [...before, ...fenced, ...after].join('\n') + (chance(0.25) ? '' : '\n');
      start = {kind: 'file', content, mode: 0o644};
    }
    const absent = chance(0.2);
    const create = start.kind === 'missing' ? chance(0.6) : chance(0.15);
    const where = pick(['none', 'none', 'after', 'before']);
    const insertAfter = where === 'after' ? pick(['EOF', ...anchorRegexps]) : undefined;
    const insertBefore = where === 'before' ? pick(['BOF', ...anchorRegexps]) : undefined;
    const mode = chance(0.15) ? pick(fileModes) : undefined;
    const args = clean({block, marker, markerBegin, markerEnd, state: absent ? 'absent' as const : undefined, insertAfter, insertBefore, create: create || undefined, mode});
    // Provision's default marker is its own: Ansible is given it.
    const ansible = clean({block, marker: m, marker_begin: markerBegin, marker_end: markerEnd, state: absent ? 'absent' : undefined, insertafter: insertAfter, insertbefore: insertBefore, create: create || undefined, mode});
    return {start, ansible, task: (path) => blockinfile({path, ...args} as Parameters<typeof blockinfile>[0], {ignoreErrors: true}), describe: JSON.stringify(ansible)};
  }

  function replaceCase(): Omit<Case, 'id' | 'module'> {
    const start: Node = chance(0.06) ? {kind: 'missing'} : startFile();
    const [regexp, replacements] = pick([
      ['^(\\w+)=(\\d+)$', ['\\2=\\1', '\\1: \\2', '\\g<1>=0', '', 'X']],
      ['^(#)?b(\\s*)=', ['\\1B\\2=', 'b=', '#b=']],
      ['(?P<k>[a-z]+)=', ['\\g<k>:', '[\\g<k>]=']],
      ['=', [' = ', ':', '']],
      ['^#\\s*', ['', '; ']],
      ['\\d', ['N', '\\g<0>\\g<0>']],
      ['^c$', ['c', 'C', 'c\\nc']],
      ['a', ['a', 'A']],
      ['(x)$', ['\\1\\1', 'y']],
      ['^$\\n', ['']],
      ['nomatch', ['z']],
      ['\\s+$', ['']],
    ] as const);
    const replacement = pick(replacements);
    const section = pick(['none', 'none', 'after', 'before', 'both']);
    const after = section === 'after' || section === 'both' ? pick(['^a=', 'b', '#', 'c\\n', 'nomatch']) : undefined;
    const before = section === 'before' || section === 'both' ? pick(['^last', 'c', 'x', '# comment', 'nomatch']) : undefined;
    const mode = chance(0.15) ? pick(fileModes) : undefined;
    const args = clean({regexp, replace: replacement === '' && chance(0.5) ? undefined : replacement, after, before, mode});
    const ansible = {...args};
    return {start, ansible, task: (path) => replace({path, ...args} as Parameters<typeof replace>[0], {ignoreErrors: true}), describe: JSON.stringify(ansible)};
  }

  function fileCase(): Omit<Case, 'id' | 'module'> {
    const start: Node = pick<Node>([
      {kind: 'missing'},
      {kind: 'file', content: pick(['', 'data\n', 'x']), mode: parseInt(pick(['0644', '0600', '0755']), 8)},
      {kind: 'directory', mode: parseInt(pick(dirModes), 8)},
    ]);
    const state = pick(['file', 'directory', 'touch', 'absent'] as const);
    const mode = state !== 'absent' && chance(0.6) ? pick(state === 'directory' ? dirModes : fileModes) : undefined;
    const args = clean({state, mode});
    // Provision's touch leaves an existing path's times alone: Ansible's spelling of that.
    const ansible = clean({state, mode, ...(state === 'touch' ? {modification_time: 'preserve', access_time: 'preserve'} : {})});
    return {start, ansible, task: (path) => file({path, ...args} as Parameters<typeof file>[0], {ignoreErrors: true}), describe: JSON.stringify(ansible)};
  }

  function copyCase(): Omit<Case, 'id' | 'module'> {
    const content = pick(['', 'hello\n', 'hello', 'a=1\nb=2\n', 'x\n\n', 'unicode é ✓\n']);
    const start: Node = pick<Node>([
      {kind: 'missing'},
      {kind: 'file', content: pick(['', 'hello\n', 'hello', 'other\n', content]), mode: parseInt(pick(['0644', '0600', '0755']), 8)},
      {kind: 'file', content, mode: parseInt(pick(['0644', '0600']), 8)},
    ]);
    const mode = chance(0.6) ? pick(fileModes) : undefined;
    const args = clean({content, mode});
    return {start, ansible: args, task: (path) => copy({dest: path, ...args} as Parameters<typeof copy>[0], {ignoreErrors: true}), describe: JSON.stringify(args)};
  }

  return {lineinfile: lineinfileCase, blockinfile: blockinfileCase, replace: replaceCase, file: fileCase, copy: copyCase};
}

/** The object without its undefined values. */
function clean<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function makeCases(seed: number, counts: Readonly<Record<ModuleName, number>>): Case[] {
  const gen = generator(seed);
  const modules: ModuleName[] = ['lineinfile', 'blockinfile', 'replace', 'file', 'copy'];
  return modules.flatMap((module) => Array.from({length: counts[module]}, () => ({module, ...gen[module]()}))).map((c, id) => ({id, ...c}));
}

function setUp(path: string, node: Node): void {
  if (node.kind === 'file') {
    writeFileSync(path, node.content);
    chmodSync(path, node.mode);
  } else if (node.kind === 'directory') {
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x\n');
    chmodSync(path, node.mode);
  }
}

function observe(path: string): Node {
  if (!existsSync(path)) return {kind: 'missing'};
  const st = lstatSync(path);
  if (st.isDirectory()) return {kind: 'directory', mode: st.mode & 0o7777};
  return {kind: 'file', content: readFileSync(path, 'latin1'), mode: st.mode & 0o7777};
}

const show = (n: Node): string => (n.kind === 'missing' ? 'missing' : n.kind === 'directory' ? `directory ${n.mode.toString(8)}` : `file ${n.mode.toString(8)} ${JSON.stringify(Buffer.from(n.content, 'latin1').toString('utf8'))}`);

interface Outcome {
  readonly changed: boolean;
  readonly failed: boolean;
  readonly msg: string;
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{code: number; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    execFile(cmd, args, {env, cwd, maxBuffer: 256 * 1024 * 1024}, (err, stdout, stderr) => {
      const code = err ? (typeof (err as {code?: unknown}).code === 'number' ? (err as {code: number}).code : -1) : 0;
      resolve({code, stdout, stderr: stderr || (err && code === -1 ? String(err) : '')});
    });
  });
}

/** The cases through Ansible on the files of `side`: `procs` playbooks run side by side; the outcome of each case in order. */
async function runAnsible(scratch: string, side: string, cases: readonly Case[], procs: number): Promise<Outcome[]> {
  const env = {...process.env, ...ansibleEnv(scratch), ANSIBLE_STDOUT_CALLBACK: 'json', ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3'};
  const chunks = Array.from({length: procs}, (_, p) => cases.filter((_, i) => i % procs === p)).filter((c) => c.length > 0);
  const outs = await Promise.all(chunks.map(async (chunk, p) => {
    const tasks = chunk.map((c) => ({
      name: `case ${c.id}`,
      [`ansible.builtin.${c.module}`]: {...c.ansible, [c.module === 'copy' ? 'dest' : 'path']: join(scratch, side, String(c.id), 'f')},
      ignore_errors: true,
    }));
    const pb = join(scratch, `playbook-${side}-${p}.json`);
    writeFileSync(pb, JSON.stringify([{name: 'diff', hosts: 'localhost', gather_facts: false, tasks}], null, 1));
    const res = await run('ansible-playbook', ['-i', 'localhost,', '-c', 'local', pb], env, scratch);
    let parsed: {plays: {tasks: {task: {name: string}; hosts: Record<string, {changed?: boolean; failed?: boolean; msg?: string}>}[]}[]};
    try {
      parsed = JSON.parse(res.stdout);
    } catch {
      throw new Error(`ansible-playbook did not run (exit ${res.code}): ${res.stderr.slice(0, 2000)}${res.stdout.slice(0, 2000)}`);
    }
    const byName = new Map(parsed.plays[0]!.tasks.map((t) => [t.task.name, t.hosts['localhost']!]));
    return chunk.map((c): [number, Outcome] => {
      const h = byName.get(`case ${c.id}`);
      if (!h) throw new Error(`ansible-playbook gave no result for case ${c.id}: ${res.stderr.slice(0, 2000)}`);
      return [c.id, {changed: h.changed === true && h.failed !== true, failed: h.failed === true, msg: String(h.msg ?? '')}];
    });
  }));
  const byId = new Map(outs.flat());
  return cases.map((c) => byId.get(c.id)!);
}

/** Every case through provision, in plays of a few tasks (a change re-probes the rest of its play). */
async function runProvision(scratch: string, cases: readonly Case[]): Promise<Outcome[]> {
  const size = 8;
  const plays = [];
  for (let i = 0; i < cases.length; i += size) {
    plays.push({name: `p${i}`, hosts: 'all_hosts', gatherFacts: false, tasks: cases.slice(i, i + size).map((c) => c.task(join(scratch, 'p', String(c.id), 'f')))});
  }
  const res = await runFake(definePlaybook({name: 'diff', plays}));
  const results = res.results();
  if (results.length !== cases.length) throw new Error(`provision gave ${results.length} results for ${cases.length} cases`);
  return results.map((r) => ({changed: r.status === 'changed', failed: r.status === 'failed', msg: r.msg}));
}

/**
 * The one difference kept on purpose (see `editLines`): ansible-core 2.14's lineinfile appends a line
 * inserted after a matching last line that has no newline onto that line (`b` + `x\n` → `bx\n`);
 * provision ends the last line first. True when that is all that separates the two results.
 */
function joinedLastLine(c: Case, ansible: Node, provision: Node): boolean {
  if (c.module !== 'lineinfile' || c.start.kind !== 'file' || c.start.content.endsWith('\n') || c.start.content === '') return false;
  if (ansible.kind !== 'file' || provision.kind !== 'file' || ansible.mode !== provision.mode) return false;
  const at = c.start.content.length;
  return provision.content.slice(0, at) === c.start.content && provision.content.charAt(at) === '\n' && provision.content.slice(0, at) + provision.content.slice(at + 1) === ansible.content;
}

/**
 * The other, documented in docs/modules/blockinfile.md: blockinfile `state: absent` on a missing file
 * without `create` is `ok` (nothing to remove); ansible-core fails it ("does not exist").
 */
function absentBlockOfMissingFile(c: Case, a: Outcome, p: Outcome): boolean {
  return c.module === 'blockinfile' && c.start.kind === 'missing' && c.ansible['state'] === 'absent' && c.ansible['create'] === undefined && a.failed && !p.failed && !p.changed;
}

test('the file modules do what Ansible does, case by case', async (t) => {
  t.timeout(400_000, 'Ansible runs 320 tasks: under a minute alone, minutes on a loaded machine');
  const started = Date.now();
  const cases = makeCases(SEED, COUNTS);
  t.log(`seed ${SEED} (PROVISION_DIFF_SEED), cases ${JSON.stringify(COUNTS)}, ${cases.length} in all`);
  const scratch = mkdtempSync(join(tmpdir(), 'prov-ansible-diff-'));
  for (const side of ['a', 'p']) {
    mkdirSync(join(scratch, side));
    for (const c of cases) {
      mkdirSync(join(scratch, side, String(c.id)));
      setUp(join(scratch, side, String(c.id), 'f'), c.start);
    }
  }
  let ansibleDone = 0;
  let provisionDone = 0;
  const [ansible, first] = await Promise.all([
    runAnsible(scratch, 'a', cases, 2).then((r) => { ansibleDone = Date.now(); return r; }),
    runProvision(scratch, cases).then((r) => { provisionDone = Date.now(); return r; }),
  ]);
  const want = cases.map((c) => observe(join(scratch, 'a', String(c.id), 'f')));
  const got = cases.map((c) => observe(join(scratch, 'p', String(c.id), 'f')));

  // A second run changes nothing, unless Ansible's second run also changes something (lineinfile with
  // a regexp the line does not match, replace whose result matches again, …): then both again.
  const second = await runProvision(scratch, cases);
  const again = cases.filter((_, i) => second[i]!.changed || second[i]!.failed !== first[i]!.failed);
  const ansibleAgain = new Map((await runAnsible(scratch, 'a', again, 2)).map((o, i) => [again[i]!.id, o]));

  const diffs: string[] = [];
  const perModule = new Map<ModuleName, number>();
  const tolerated: number[] = [];
  for (const [i, c] of cases.entries()) {
    const a = ansible[i]!;
    const p = first[i]!;
    const problems: string[] = [];
    if (absentBlockOfMissingFile(c, a, p)) tolerated.push(c.id);
    else if (a.failed !== p.failed) problems.push(`failed: ansible ${a.failed} (${a.msg}), provision ${p.failed} (${p.msg})`);
    else if (a.changed !== p.changed) problems.push(`changed: ansible ${a.changed} (${a.msg}), provision ${p.changed} (${p.msg})`);
    if (show(want[i]!) !== show(got[i]!)) {
      if (joinedLastLine(c, want[i]!, got[i]!)) tolerated.push(c.id);
      else problems.push(`result: ansible ${show(want[i]!)}, provision ${show(got[i]!)}`);
    }
    const a2 = ansibleAgain.get(c.id);
    if (a2 === undefined ? second[i]!.changed : a2.changed !== second[i]!.changed || a2.failed !== second[i]!.failed) {
      problems.push(`second run: ansible ${a2 ? `changed ${a2.changed}, failed ${a2.failed}` : 'not run'}, provision changed ${second[i]!.changed}, failed ${second[i]!.failed} (${second[i]!.msg})`);
    }
    if (a2 !== undefined && !tolerated.includes(c.id)) {
      const w = observe(join(scratch, 'a', String(c.id), 'f'));
      const g = observe(join(scratch, 'p', String(c.id), 'f'));
      if (show(w) !== show(g)) problems.push(`result of the second run: ansible ${show(w)}, provision ${show(g)}`);
    }
    if (problems.length > 0) {
      perModule.set(c.module, (perModule.get(c.module) ?? 0) + 1);
      diffs.push(`case ${c.id} ${c.module} ${c.describe}\n  start: ${show(c.start)}\n  ${problems.join('\n  ')}`);
    }
  }
  t.log(`ansible ${((ansibleDone - started) / 1000).toFixed(1)} s, provision ${((provisionDone - started) / 1000).toFixed(1)} s (side by side), second runs ${again.length} cases again by Ansible, ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
  t.log(`tolerated (the two documented differences): ${tolerated.length === 0 ? 'none' : tolerated.join(', ')}`);
  t.log(`differences per module: ${JSON.stringify(Object.fromEntries(perModule))}`);
  if (diffs.length === 0) rmSync(scratch, {recursive: true, force: true});
  t.deepEqual(diffs, [], `seed ${SEED}: ${diffs.length} of ${cases.length} cases differ (files kept in ${scratch})\n${diffs.join('\n')}`);
});
