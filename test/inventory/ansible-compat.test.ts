/**
 * Our reading of the fixture inventories must equal `ansible-inventory --list` / `--graph`. When
 * `ansible-inventory` is installed the tests run it; otherwise they use the outputs recorded from it
 * in `test/fixtures/inventory/expected/`, and a test checks those recordings against the live tool.
 */
import test from 'ava';
import {commandWorks} from '../helpers/cli.ts';
import {ansibleEnv} from '../helpers/ansible.ts';
import {execFile} from 'node:child_process';
import {mkdtempSync, readFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {inventoryGraph, inventoryList, loadInventory} from '../../src/inventory/index.ts';

const run = promisify(execFile);
const fixtures = join(import.meta.dirname, '..', 'fixtures', 'inventory');
const expectedDir = join(fixtures, 'expected');

const live = commandWorks('ansible-inventory', ['--version']);
const scratch = mkdtempSync(join(tmpdir(), 'provision-ansible-'));
const env = {...process.env, ...ansibleEnv(scratch)};

async function ansible(file: string, args: string[]): Promise<string> {
  const {stdout} = await run('ansible-inventory', ['-i', join(fixtures, file), ...args], {env, cwd: scratch});
  return stdout;
}

function recorded(file: string, suffix: string): string {
  return readFileSync(join(expectedDir, `${file.replaceAll('/', '_')}.${suffix}`), 'utf8');
}

async function expected(file: string, args: string[], suffix: string): Promise<string> {
  return live ? ansible(file, args) : recorded(file, suffix);
}

const cases = ['yaml/site.yml', 'ini/hosts.ini', 'ini-noext/hosts', 'json/inventory.json'];

for (const file of cases) {
  test(`--list of ${file} equals ansible-inventory's`, async (t) => {
    const inv = await loadInventory(join(fixtures, file));
    t.deepEqual(inventoryList(inv), JSON.parse(await expected(file, ['--list'], 'list.json')));
  });

  test(`--graph of ${file} equals ansible-inventory's`, async (t) => {
    const inv = await loadInventory(join(fixtures, file));
    t.is(inventoryGraph(inv), (await expected(file, ['--graph'], 'graph.txt')).trimEnd());
  });

  // Without ansible-inventory the recordings cannot be checked: skipped, and the title says why.
  (live ? test : test.skip)(`recorded outputs of ${file} are still ansible-inventory's${live ? '' : ' (skipped: ansible-inventory not installed)'}`, async (t) => {
    t.deepEqual(JSON.parse(await ansible(file, ['--list'])), JSON.parse(recorded(file, 'list.json')));
    t.is((await ansible(file, ['--graph'])).trimEnd(), recorded(file, 'graph.txt').trimEnd());
  });
}

test('--graph of one group equals ansible-inventory --graph GROUP', async (t) => {
  const inv = await loadInventory(join(fixtures, 'yaml/site.yml'));
  const want = await expected('yaml/site.yml', ['--graph', 'staging'], 'graph-staging.txt');
  t.is(inventoryGraph(inv, 'staging'), want.trimEnd());
});
