/**
 * `provision run --list-hosts/--list-tasks/--list-tags` (src/cli/list.ts) as tables, the
 * `--start-at-task` check, the flags through the CLI (nothing connects), and a differential test
 * against `ansible-playbook` on the same playbook written in YAML.
 */
import test from 'ava';
import {execFile} from 'node:child_process';
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {block, definePlaybook, defineRole} from '../../src/core/task.ts';
import {command} from '../../src/modules/command.ts';
import {file} from '../../src/modules/files.ts';
import {listedPlays, listing, startAtTaskFound, type ListedPlay, type ListSelection, type ListWhat} from '../../src/cli/list.ts';
import {loadInventory, selectHosts} from '../../src/inventory/index.ts';
import {fakeInventory} from '../helpers/engine.ts';
import {commandWorks} from '../helpers/cli.ts';
import {runMain} from '../helpers/inprocess.ts';

const web = defineRole({
  name: 'web',
  tasks: [
    command({argv: ['true']}, {name: 'install nginx', tags: ['pkg']}),
    command({argv: ['true']}, {name: 'configure', tags: ['conf', 'never']}),
  ],
});

/** The playbook of every test here; `ansibleYaml` below is the same in Ansible's words. */
const playbook = definePlaybook({
  name: 'site',
  plays: [
    {
      name: 'Web', hosts: 'web', gatherFacts: false, tags: ['webplay'], roles: ['web'],
      tasks: [
        command({argv: ['echo', 'hi']}, {name: 'hello', tags: ['x', 'always']}),
        file({path: '/tmp/x', state: 'touch'}),
      ],
    },
    {
      name: 'DB', hosts: 'db:web', gatherFacts: false,
      tasks: [
        command({argv: ['true']}, {name: 'db task', tags: ['dbt']}),
        block({
          tasks: [command({argv: ['true']}, {name: 'in block', tags: ['inner']})],
          rescue: [command({argv: ['true']}, {name: 'rescue step'})],
          always: [command({argv: ['true']}, {name: 'always step'})],
        }, {name: 'guarded', tags: ['blk']}),
      ],
    },
  ],
});

const loadRole = async (name: string) => {
  if (name !== 'web') throw new Error(`no role ${name}`);
  return {role: web, dir: ''};
};

const inv = fakeInventory({web: ['w1', 'w2'], db: ['d1']});
const sel = (o: Partial<Omit<ListSelection, 'select' | 'limit'>> & {limit?: string[]} = {}): ListSelection => ({
  select: inv.select, limit: o.limit && new Set(o.limit), tags: o.tags, skipTags: o.skipTags,
});
const all: ListWhat = {hosts: true, tasks: true, tags: true};

test('listedPlays: role tasks first, then the play\'s, with the play\'s tags; a task without a name shows module and label', async (t) => {
  const plays = await listedPlays(playbook, loadRole);
  t.deepEqual(plays.map((p) => [p.name, p.hosts, p.tags]), [['Web', 'web', ['webplay']], ['DB', 'db:web', []]]);
  t.deepEqual(plays[0]!.tasks, [
    {name: 'install nginx', role: 'web', tags: ['webplay', 'pkg']},
    {name: 'configure', role: 'web', tags: ['webplay', 'conf', 'never']},
    {name: 'hello', role: null, tags: ['webplay', 'x', 'always']},
    {name: 'file /tmp/x (touch)', role: null, tags: ['webplay']},
  ]);
  t.deepEqual(plays[1]!.tasks[1], {
    name: 'guarded', role: null, tags: ['blk'],
    block: {tasks: [{name: 'in block', role: null, tags: ['blk', 'inner']}], rescue: [{name: 'rescue step', role: null, tags: ['blk']}], always: [{name: 'always step', role: null, tags: ['blk']}]},
  });
});

test('the three listings together: Ansible\'s text, byte for byte', async (t) => {
  const plays = await listedPlays(playbook, loadRole);
  t.is(listing('playbooks/site.ts', plays, all, sel()), [
    '',
    'playbook: playbooks/site.ts',
    '',
    '  play #1 (web): Web\tTAGS: [webplay]',
    "    pattern: ['web']",
    '    hosts (2):',
    '      w1',
    '      w2',
    '    tasks:',
    '      web : install nginx\tTAGS: [pkg, webplay]',
    '      hello\tTAGS: [always, webplay, x]',
    '      file /tmp/x (touch)\tTAGS: [webplay]',
    '      TASK TAGS: [always, pkg, webplay, x]',
    '',
    '  play #2 (db:web): DB\tTAGS: []',
    "    pattern: ['db:web']",
    '    hosts (3):',
    '      d1',
    '      w1',
    '      w2',
    '    tasks:',
    '      db task\tTAGS: [dbt]',
    '      in block\tTAGS: [blk, inner]',
    '      TASK TAGS: [blk, dbt, inner]',
    '',
  ].join('\n'));
});

/** The listing reduced to what a row of the table checks: per play, its hosts, tasks and tags. */
function digest(text: string): string[] {
  return text.split('\n').filter((l) => /^ {6}|^ {4}hosts/.test(l)).map((l) => l.trim().replace(/\tTAGS: /, ' '));
}

const table: readonly {readonly title: string; readonly what: ListWhat; readonly sel: ListSelection; readonly want: readonly string[]}[] = [
  {title: '--list-hosts: pattern, then --limit', what: {hosts: true, tasks: false, tags: false}, sel: sel({limit: ['w2', 'd1']}), want: ['hosts (1):', 'w2', 'hosts (2):', 'd1', 'w2']},
  {title: '--list-hosts: a play --limit leaves empty', what: {hosts: true, tasks: false, tags: false}, sel: sel({limit: ['d1']}), want: ['hosts (0):', 'hosts (1):', 'd1']},
  {title: '--list-tasks --tags pkg: always-tagged tasks stay', what: {hosts: false, tasks: true, tags: false}, sel: sel({tags: ['pkg']}), want: ['web : install nginx [pkg, webplay]', 'hello [always, webplay, x]']},
  {title: '--list-tasks --tags never: the never-tagged task shows', what: {hosts: false, tasks: true, tags: false}, sel: sel({tags: ['never']}), want: ['web : configure [conf, never, webplay]', 'hello [always, webplay, x]']},
  {title: '--list-tasks --tags webplay: a play tag selects its tasks, never-tagged ones too (Ansible\'s never only holds against all)', what: {hosts: false, tasks: true, tags: false}, sel: sel({tags: ['webplay']}), want: ['web : install nginx [pkg, webplay]', 'web : configure [conf, never, webplay]', 'hello [always, webplay, x]', 'file /tmp/x (touch) [webplay]']},
  {title: '--list-tasks --skip-tags x,dbt', what: {hosts: false, tasks: true, tags: false}, sel: sel({skipTags: ['x', 'dbt']}), want: ['web : install nginx [pkg, webplay]', 'file /tmp/x (touch) [webplay]', 'in block [blk, inner]']},
  {title: '--list-tasks --tags inner: a block\'s task (its tasks only, as Ansible: not rescue and always)', what: {hosts: false, tasks: true, tags: false}, sel: sel({tags: ['inner']}), want: ['hello [always, webplay, x]', 'in block [blk, inner]']},
  {title: '--list-tags: the play\'s tags and its selected tasks\'', what: {hosts: false, tasks: false, tags: true}, sel: sel(), want: ['TASK TAGS: [always, pkg, webplay, x]', 'TASK TAGS: [blk, dbt, inner]']},
  {title: '--list-tags --skip-tags dbt,blk: a play left without tasks', what: {hosts: false, tasks: false, tags: true}, sel: sel({skipTags: ['dbt', 'blk']}), want: ['TASK TAGS: [always, pkg, webplay, x]', 'TASK TAGS: []']},
];

for (const row of table) {
  test(`listing: ${row.title}`, async (t) => {
    t.deepEqual(digest(listing('pb', await listedPlays(playbook, loadRole), row.what, row.sel)), row.want);
  });
}

test('listing: a pattern holding a quote prints as Python\'s repr', (t) => {
  const plays: ListedPlay[] = [{name: 'p', hosts: "it's", tags: ['b', 'a'], tasks: []}];
  const out = listing('pb', plays, {hosts: true, tasks: false, tags: false}, {select: () => []});
  t.true(out.includes(`  play #1 (it's): p\tTAGS: [a,b]\n    pattern: ["it's"]\n    hosts (0):\n`));
});

const starts: readonly (readonly [pattern: string, tags: Partial<ListSelection>, found: boolean])[] = [
  ['hello', {}, true],
  ['install nginx', {}, true],
  ['web : install nginx', {}, true],
  ['web : *', {}, true],
  ['db*', {}, true],
  ['file /tmp/x (touch)', {}, true],
  ['h?llo', {}, true],
  ['[!h]ello', {}, false],
  ['Hello', {}, false],
  ['nosuch', {}, false],
  ['configure', {}, false], // tagged never: not selected
  ['configure', {tags: ['never']}, true],
  ['db task', {skipTags: ['dbt']}, false],
  ['web : install', {}, false],
  // A block by its own name, as the engine starts at it (Ansible starts inside blocks instead).
  ['guarded', {}, true],
  ['guarded', {skipTags: ['blk']}, false],
  ['guarded', {tags: ['inner']}, true],
  ['in block', {}, false],
];
for (const [pattern, tags, found] of starts) {
  test(`startAtTaskFound: '${pattern}' ${JSON.stringify(tags)} → ${found}`, async (t) => {
    t.is(startAtTaskFound(await listedPlays(playbook, loadRole), pattern, tags), found);
  });
}

const fixture = 'test/fixtures/project/playbooks/files.ts';
function fixtureInventory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'prov-list-'));
  // Addresses nobody answers (TEST-NET-1): a listing that connected would fail, not pass.
  writeFileSync(join(dir, 'hosts.yml'), 'all:\n  children:\n    targets:\n      hosts:\n        t1: {ansible_host: 192.0.2.1}\n        t2: {ansible_host: 192.0.2.2}\n');
  return join(dir, 'hosts.yml');
}

test.serial('the CLI: --list-* print the listing (also under --json) and connect nothing; exit 0', async (t) => {
  const i = fixtureInventory();
  const r = await runMain(['run', fixture, '-i', i, '--no-typecheck', '--list-hosts', '--list-tasks', '--json', '-l', 't2']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.true(r.stdout.startsWith(`\nplaybook: ${fixture}\n\n  play #1 (targets): demo files\tTAGS: []\n    pattern: ['targets']\n    hosts (1):\n      t2\n    tasks:\n      demo : config dir\tTAGS: []\n`), r.stdout);
  const tags = await runMain(['run', fixture, '-i', i, '--no-typecheck', '--list-tags']);
  t.is(tags.code, 0);
  t.regex(tags.stdout, /^ {6}TASK TAGS: \[\]$/m);
});

test.serial('the CLI: --start-at-task naming no task: Ansible\'s error line and exit code (0), nothing runs', async (t) => {
  const i = fixtureInventory();
  const r = await runMain(['run', fixture, '-i', i, '--no-typecheck', '--json', '--start-at-task', 'nosuch']);
  t.is(r.code, 0);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^provision: No matching task "nosuch" found: --start-at-task takes a task's name, or 'role : name', or a glob of them/);
  t.is(r.stderr.trim().split('\n').length, 1);
  const bad = await runMain(['run', fixture, '-i', i, '--no-typecheck', '--start-at-task']);
  t.is(bad.code, 5, 'a missing value is a bad option');
});

// ---- Differential: ansible-playbook lists the same hosts and tags for the same playbook in YAML.

const ansibleYaml = `
- name: Web
  hosts: web
  gather_facts: false
  tags: [webplay]
  roles: [web]
  tasks:
    - name: hello
      command: echo hi
      tags: [x, always]
    - file: {path: /tmp/x, state: touch}
- name: DB
  hosts: db:web
  gather_facts: false
  tasks:
    - name: db task
      command: 'true'
      tags: [dbt]
    - name: guarded
      tags: [blk]
      block:
        - name: in block
          command: 'true'
          tags: [inner]
      rescue:
        - name: rescue step
          command: 'true'
      always:
        - name: always step
          command: 'true'
`;
const ansibleRole = `
- name: install nginx
  command: 'true'
  tags: [pkg]
- name: configure
  command: 'true'
  tags: [conf, never]
`;
const inventoryYaml = 'all:\n  children:\n    web:\n      hosts: {w1: {}, w2: {}, w3: {}}\n    db:\n      hosts: {d1: {}, w3: {}}\n';

interface Parsed {
  readonly plays: {pattern: string; hosts: string[]; tasks: {name: string; tags: string}[]; taskTags: string | null}[];
}

/** Either listing (Ansible's or provision's) read back: hosts as a sorted set (Ansible prints set order). */
function parse(text: string): Parsed {
  const plays: Parsed['plays'] = [];
  let section: 'hosts' | 'tasks' | null = null;
  for (const line of text.split('\n')) {
    const play = /^ {2}play #\d+ \((.*)\): .*\tTAGS: \[.*\]$/.exec(line);
    const cur = plays.at(-1);
    if (play) {
      plays.push({pattern: play[1]!, hosts: [], tasks: [], taskTags: null});
      section = null;
    } else if (!cur) continue;
    else if (/^ {4}hosts \(\d+\):$/.test(line)) section = 'hosts';
    else if (line === '    tasks:') section = 'tasks';
    else if (line.startsWith('      TASK TAGS: ')) cur.taskTags = line.trim();
    else if (section === 'tasks' && line.startsWith('      ')) {
      const [name = '', tags = ''] = line.trim().split('\tTAGS: ');
      cur.tasks.push({name, tags});
    } else if (section === 'hosts' && line.startsWith('      ')) cur.hosts.push(line.trim());
  }
  for (const p of plays) p.hosts.sort();
  return {plays};
}

function ansiblePlaybook(dir: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ansible-playbook', ['-i', 'hosts.yml', 'site.yml', ...args], {cwd: dir, env: {...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCALHOST_WARNING: '0', ANSIBLE_HOME: join(dir, '.ansible')}}, (err, stdout, stderr) => {
      if (err) reject(new Error(`ansible-playbook ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

const hasAnsible = commandWorks('ansible-playbook', ['--version']);
const differential = hasAnsible ? test : test.skip;
if (!hasAnsible) console.log('skipped: the differential test against ansible-playbook needs ansible-playbook on the PATH');

differential('differential: the same hosts, tasks and tags as ansible-playbook --list-hosts --list-tasks --list-tags', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-list-ansible-'));
  mkdirSync(join(dir, 'roles', 'web', 'tasks'), {recursive: true});
  writeFileSync(join(dir, 'site.yml'), ansibleYaml);
  writeFileSync(join(dir, 'roles', 'web', 'tasks', 'main.yml'), ansibleRole);
  writeFileSync(join(dir, 'hosts.yml'), inventoryYaml);
  const inventory = await loadInventory(join(dir, 'hosts.yml'));
  const plays = await listedPlays(playbook, loadRole);
  const cases: readonly {limit?: string; tags?: string; skipTags?: string}[] = [
    {}, {limit: 'w1:d1'}, {limit: 'db'}, {limit: 'w*:!w2'}, {tags: 'pkg'}, {tags: 'never'}, {tags: 'webplay,dbt'},
    {skipTags: 'dbt'}, {skipTags: 'always'}, {tags: 'conf', skipTags: 'pkg'}, {tags: 'inner'}, {skipTags: 'blk'}, {tags: 'blk', skipTags: 'inner'},
  ];
  const split = (v: string | undefined) => v?.split(',');
  const runs = await Promise.all(cases.map((c) => ansiblePlaybook(dir, [
    '--list-hosts', '--list-tasks', '--list-tags',
    ...(c.limit ? ['--limit', c.limit] : []), ...(c.tags ? ['--tags', c.tags] : []), ...(c.skipTags ? ['--skip-tags', c.skipTags] : []),
  ])));
  for (const [i, c] of cases.entries()) {
    const ours = parse(listing('site.yml', plays, all, {
      select: (p) => selectHosts(inventory, p), limit: c.limit === undefined ? undefined : new Set(selectHosts(inventory, c.limit)),
      tags: split(c.tags), skipTags: split(c.skipTags),
    }));
    const theirs = parse(runs[i]!);
    t.is(ours.plays.length, 2);
    t.true(theirs.plays.every((p) => p.taskTags !== null) && theirs.plays.some((p) => p.hosts.length > 0), `Ansible's listing read back: ${runs[i]}`);
    // Ansible names a task without a name by its module alone; provision adds what it acts on.
    const names = (p: Parsed) => p.plays.map((pl) => ({...pl, tasks: pl.tasks.map((k) => ({...k, name: k.name.split(' /')[0]}))}));
    t.deepEqual(names(ours), names(theirs), JSON.stringify(c));
  }
});
