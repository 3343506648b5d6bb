/** `provision inventory` as registered on a commander program. */
import test from 'ava';
import {Command} from 'commander';
import {join} from 'node:path';
import {UserError} from '../../src/core/errors.ts';
import {registerInventory} from '../../src/cli/inventory.ts';
import {Secrets} from '../../src/core/secret.ts';

const fixture = join(import.meta.dirname, '..', 'fixtures', 'inventory', 'patterns', 'hosts.yml');

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerInventory(program, () => fixture, new Secrets());
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'provision', 'inventory', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test.serial('--list prints the JSON of ansible-inventory --list with 2-space indent', async (t) => {
  const out = await run(['--list']);
  const json = JSON.parse(out) as Record<string, unknown>;
  t.deepEqual(json.web, {hosts: ['web1', 'web2', 'web3']});
  t.true(out.startsWith('{\n  "_meta"'));
});

test.serial('--graph GROUP and -i', async (t) => {
  t.is(await run(['-i', fixture, '--graph', 'db']), '@db:\n  |--db1\n  |--web2\n');
  t.true((await run(['--graph'])).startsWith('@all:\n  |--@ungrouped:\n  |  |--solo\n'));
});

test.serial('--host prints one host', async (t) => {
  t.deepEqual(JSON.parse(await run(['--host', 'web1'])), {});
});

test.serial('bad usage is exit code 5', async (t) => {
  const none = await t.throwsAsync(run([]), {instanceOf: UserError});
  t.is(none!.exitCode, 5);
  const unknownGroup = await t.throwsAsync(run(['--graph', 'nope']), {instanceOf: UserError});
  t.is(unknownGroup!.exitCode, 5);
  const unknownHost = await t.throwsAsync(run(['--host', 'nope']), {instanceOf: UserError});
  t.is(unknownHost!.exitCode, 5);
});
