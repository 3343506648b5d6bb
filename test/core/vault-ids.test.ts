/**
 * `--vault-id label@source`, repeatable, as Ansible: files written by the real
 * `ansible-vault encrypt --vault-id a@file1` / `b@file2` (headers `$ANSIBLE_VAULT;1.2;AES256;a`) open
 * in provision given both ids; the label a header names is tried first, then the others; sources are
 * files, executable scripts or `prompt`; `!vault` values inside `-e @file.yml` decrypt; a passphrase
 * that fits none is one line naming the file, exit 1. The differential tests skip visibly without
 * ansible-vault.
 */
import test from 'ava';
import {execFileSync} from 'node:child_process';
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {UserError} from '../../src/core/errors.ts';
import {Secrets} from '../../src/core/secret.ts';
import {Keyring, encrypt, encryptAnsible, parseVaultId} from '../../src/core/vault.ts';
import {loadInventory} from '../../src/inventory/index.ts';
import {parseExtraVars} from '../../src/cli/main.ts';
import {commandWorks} from '../helpers/cli.ts';
import {ansibleEnv} from '../helpers/ansible.ts';
import {runMain} from '../helpers/inprocess.ts';

const scratch = mkdtempSync(join(tmpdir(), 'prov-vault-ids-'));
test.after.always(() => rmSync(scratch, {recursive: true, force: true}));
const live = commandWorks('ansible-vault', ['--version']);
const liveTest = live ? test.serial : test.skip;
const why = live ? '' : ' (skipped: ansible-vault is not installed)';

function ansibleVault(args: readonly string[], cwd: string): string {
  return execFileSync('ansible-vault', args, {env: {...process.env, ...ansibleEnv(scratch)}, cwd, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe']});
}

/** A project: an inventory with group_vars encrypted by ansible-vault under ids a and b, and an extra-vars file with an inline value of id b. */
function project(): {dir: string; inv: string; extra: string} {
  const dir = mkdtempSync(join(scratch, 'p-'));
  writeFileSync(join(dir, 'file1'), 'passphrase-of-a\n');
  writeFileSync(join(dir, 'file2'), 'passphrase-of-b\n');
  const inv = join(dir, 'hosts.yml');
  writeFileSync(inv, 'web:\n  hosts:\n    web1:\ndb:\n  hosts:\n    db1:\n');
  mkdirSync(join(dir, 'group_vars'));
  writeFileSync(join(dir, 'group_vars', 'web.yml'), 'web_secret: secret-from-a\n');
  writeFileSync(join(dir, 'group_vars', 'db.yml'), 'db_secret: secret-from-b\n');
  ansibleVault(['encrypt', '--vault-id', 'a@file1', 'group_vars/web.yml'], dir);
  ansibleVault(['encrypt', '--vault-id', 'b@file2', 'group_vars/db.yml'], dir);
  const inline = ansibleVault(['encrypt_string', '--vault-id', 'b@file2', '--name', 'api_token', 'inline-token-of-b'], dir);
  const extra = join(dir, 'extra.yml');
  writeFileSync(extra, `plain: visible\n${inline}`);
  return {dir, inv, extra};
}

liveTest(`files of ansible-vault --vault-id a@file1 and b@file2 open with both ids given${why}`, async (t) => {
  const {dir, inv} = project();
  t.true(readFileSync(join(dir, 'group_vars', 'web.yml'), 'utf8').startsWith('$ANSIBLE_VAULT;1.2;AES256;a\n'));
  const ids = [parseVaultId(`a@${join(dir, 'file1')}`), parseVaultId(`b@${join(dir, 'file2')}`)];
  for (const order of [ids, [...ids].reverse()]) {
    const secrets = new Secrets();
    const loaded = await loadInventory(inv, {keyring: new Keyring({ids: order, env: {}}), secrets});
    t.is(loaded.hostVars('web1').web_secret, 'secret-from-a');
    t.is(loaded.hostVars('db1').db_secret, 'secret-from-b');
    t.is(secrets.mask('secret-from-a secret-from-b'), '*** ***');
  }
  // the CLI: --vault-id twice (and the values masked in --list)
  const r = await runMain(['inventory', '-i', inv, '--vault-id', `a@${join(dir, 'file1')}`, '--vault-id', `b@${join(dir, 'file2')}`, '--list'], {PROVISION_VAULT_PASSWORD: undefined, PROVISION_VAULT_PASSWORD_FILE: undefined});
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(r.stdout)._meta.hostvars.db1.db_secret, '***');
});

liveTest(`!vault values inside -e @file.yml decrypt (ansible-vault encrypt_string --vault-id b@file2)${why}`, async (t) => {
  const {dir, extra} = project();
  const secrets = new Secrets();
  const keyring = new Keyring({ids: [parseVaultId(`a@${join(dir, 'file1')}`), parseVaultId(`b@${join(dir, 'file2')}`)], env: {}});
  t.deepEqual(parseExtraVars([`@${extra}`], {keyring, secrets}), {plain: 'visible', api_token: 'inline-token-of-b'});
  t.is(secrets.mask('inline-token-of-b'), '***');
  t.is(secrets.mask('visible'), 'visible');
});

liveTest(`a passphrase that fits none of the ids: one line naming the file, exit 1${why}`, async (t) => {
  const {dir, inv} = project();
  writeFileSync(join(dir, 'wrong1'), 'nope-1\n');
  writeFileSync(join(dir, 'wrong2'), 'nope-2\n');
  const r = await runMain(['inventory', '-i', inv, '--vault-id', `a@${join(dir, 'wrong1')}`, '--vault-id', `b@${join(dir, 'wrong2')}`, '--list'], {PROVISION_VAULT_PASSWORD: undefined, PROVISION_VAULT_PASSWORD_FILE: undefined});
  t.is(r.code, 1);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /group_vars\/(web|db)\.yml: cannot decrypt with any of the 2 vault passphrases \(vault ids (a, b|b, a)\)/);
});

/** Records the passphrases `open` tries, in order. */
class Recording extends Keyring {
  readonly tried: string[] = [];
  override decrypt(text: string, passphrase: string): string {
    this.tried.push(passphrase);
    return super.decrypt(text, passphrase);
  }
}

test('the label a 1.2 header names is tried first, then the others in the order given', (t) => {
  const dir = mkdtempSync(join(scratch, 'order-'));
  const script = join(dir, 'pass.sh');
  writeFileSync(script, '#!/bin/sh\necho pw-script\n');
  chmodSync(script, 0o755);
  writeFileSync(join(dir, 'pw-x'), 'pw-x\n');
  const ids = [parseVaultId(`x@${join(dir, 'pw-x')}`), parseVaultId(`s@${script}`)];
  const k = new Recording({ids, env: {PROVISION_VAULT_PASSWORD: 'pw-default'}});
  t.is(k.open(encryptAnsible('v: 1\n', 'pw-script', {vaultId: 's'}), 'f1'), 'v: 1\n');
  t.deepEqual(k.tried, ['pw-script']); // the label s first: one try
  k.tried.length = 0;
  t.is(k.open(encryptAnsible('v: 2\n', 'pw-default', {vaultId: 'nomatch'}), 'f2'), 'v: 2\n');
  t.deepEqual(k.tried, ['pw-x', 'pw-script', 'pw-default']); // no such label: all, in order
  k.tried.length = 0;
  t.is(k.open(encrypt('v: 3\n', 'pw-script'), 'f3'), 'v: 3\n'); // provision's format (no label): in order
  t.deepEqual(k.tried, ['pw-x', 'pw-script']);
});

test('--vault-id sources: label@file, label@script (a -client script gets --vault-id LABEL), label@prompt, a bare source is "default"', async (t) => {
  const dir = mkdtempSync(join(scratch, 'src-'));
  const client = join(dir, 'pass-client.sh');
  writeFileSync(client, '#!/bin/sh\n[ "$1" = --vault-id ] && echo "pw-for-$2"\n');
  chmodSync(client, 0o755);
  t.deepEqual(parseVaultId('prompt'), {label: 'default', source: 'prompt'});
  t.deepEqual(parseVaultId('dev@a@b'), {label: 'dev', source: 'a@b'});
  t.throws(() => parseVaultId('@file'), {instanceOf: UserError, message: /expected label@source/});
  const asked: string[] = [];
  const k = new Keyring({ids: [parseVaultId('p@prompt'), parseVaultId(`c@${client}`)], env: {}, prompt: async (q) => (asked.push(q), 'pw-prompted')});
  t.is(await k.passphrase('test'), 'pw-prompted');
  t.deepEqual(asked, ['Vault password (p): ']);
  t.is(k.open(encryptAnsible('ok\n', 'pw-for-c', {vaultId: 'c'}), 'f'), 'ok\n');
  t.is(k.open(encryptAnsible('ok2\n', 'pw-prompted', {vaultId: 'p'}), 'f'), 'ok2\n');
  // a failing script and a missing file are one-line errors
  const failing = join(dir, 'fails.sh');
  writeFileSync(failing, '#!/bin/sh\nexit 3\n');
  chmodSync(failing, 0o755);
  t.throws(() => new Keyring({ids: [parseVaultId(`f@${failing}`)], env: {}}).passphraseSync(), {instanceOf: UserError, message: /--vault-id f@.*fails\.sh: the passphrase script exited with 3/});
  t.throws(() => new Keyring({ids: [parseVaultId(`m@${join(dir, 'missing')}`)], env: {}}).passphraseSync(), {instanceOf: UserError, message: /cannot read the passphrase file: ENOENT/});
});

liveTest(`provision run --vault-id twice, with -e @file holding a !vault value (--list-hosts: nothing runs)${why}`, async (t) => {
  const {dir, extra} = project();
  const inv = join(dir, 'targets.yml');
  writeFileSync(inv, 'targets:\n  children:\n    web:\n      hosts:\n        web1:\n    db:\n      hosts:\n        db1:\n');
  const playbook = join(import.meta.dirname, '..', 'fixtures', 'project', 'playbooks', 'files.ts');
  const env = {PROVISION_VAULT_PASSWORD: undefined, PROVISION_VAULT_PASSWORD_FILE: undefined};
  const args = ['run', playbook, '-i', inv, '-e', `@${extra}`, '--no-typecheck', '--list-hosts'];
  const ok = await runMain([...args, '--vault-id', `a@${join(dir, 'file1')}`, '--vault-id', `b@${join(dir, 'file2')}`], env);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /db1/);
  const one = await runMain([...args, '--vault-id', `a@${join(dir, 'file1')}`], env); // b's files cannot open
  t.is(one.code, 1);
  t.regex(one.stderr, /(db\.yml|extra\.yml)(:\d+)?: .*cannot decrypt: wrong passphrase/);
});

test('provision vault view --vault-id tries every id', async (t) => {
  const dir = mkdtempSync(join(scratch, 'view-'));
  const file = join(dir, 'v.yml');
  writeFileSync(file, encryptAnsible('k: v\n', 'second', {vaultId: 'two'}));
  writeFileSync(join(dir, 'one'), 'first\n');
  writeFileSync(join(dir, 'two'), 'second\n');
  const env = {PROVISION_VAULT_PASSWORD: undefined, PROVISION_VAULT_PASSWORD_FILE: undefined};
  const r = await runMain(['vault', 'view', file, '--vault-id', `one@${join(dir, 'one')}`, '--vault-id', `two@${join(dir, 'two')}`], env);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'k: v\n');
});
