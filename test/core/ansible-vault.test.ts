/**
 * Ansible's vault format: provision reads what the real `ansible-vault` writes (files 1.1 and 1.2,
 * `encrypt_string` inline values), differentially over seeded random texts; a wrong passphrase and a
 * tampered ciphertext are refused; inline `!vault` values load at inventory time and are masked;
 * `provision vault rekey` converts. The differential tests skip visibly when ansible-vault is missing.
 */
import test from 'ava';
import {execFileSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {UserError} from '../../src/core/errors.ts';
import {Secrets} from '../../src/core/secret.ts';
import {
  Keyring, VAULT_HEADER, VaultError, ansibleVaultHeader, decrypt, decryptAnsible, encrypt, encryptAnsible,
} from '../../src/core/vault.ts';
import {loadInventory} from '../../src/inventory/index.ts';
import {commandWorks} from '../helpers/cli.ts';
import {runMain} from '../helpers/inprocess.ts';
import {rng} from '../helpers/rng.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'prov-avault-'));
const scratch = tmp();
const ansibleEnv = {
  ...process.env,
  ANSIBLE_HOME: join(scratch, 'home'),
  ANSIBLE_LOCAL_TEMP: join(scratch, 'tmp'),
  ANSIBLE_CONFIG: join(scratch, 'none.cfg'),
  ANSIBLE_NOCOLOR: '1',
};
const live = commandWorks('ansible-vault', ['--version']);
const liveTest = live ? test.serial : test.skip;
const why = live ? '' : ' (SKIPPED: ansible-vault is not installed)';

function ansibleVault(args: readonly string[], input?: string): string {
  return execFileSync('ansible-vault', args, {env: ansibleEnv, cwd: scratch, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe']});
}


const alphabet = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :-_#"\'\\{}[]\n\t', 'é', 'ü', '✓', '日本', '🔑'];
function randomText(seed: number): string {
  const r = rng(seed);
  // Lengths around the 16-byte AES block (padding edges) and some long ones.
  const lengths = [1, 15, 16, 17, 31, 32, 33, 80, 200, 1000, 4000];
  const n = lengths[seed % lengths.length]!;
  let s = '';
  while (s.length < n) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

test('encryptAnsible/decryptAnsible: round trip, header, padding edges', (t) => {
  for (const text of ['', 'a', 'x'.repeat(15), 'x'.repeat(16), 'x'.repeat(17), 'ünïcödé ✓\nline 2\n']) {
    const v = encryptAnsible(text, 'pw');
    t.is(v.split('\n')[0], '$ANSIBLE_VAULT;1.1;AES256');
    for (const l of v.trimEnd().split('\n').slice(1)) t.regex(l, /^[0-9a-f]{1,80}$/);
    t.is(decryptAnsible(v, 'pw'), text);
    t.is(decrypt(v, 'pw'), text, 'decrypt dispatches on the header');
  }
  const withId = encryptAnsible('k: v\n', 'pw', {vaultId: 'prod'});
  t.deepEqual(ansibleVaultHeader(withId), {version: '1.2', cipher: 'AES256', vaultId: 'prod'});
  t.is(decrypt(withId, 'pw'), 'k: v\n');
  t.is(decrypt(withId.replace(/\n/g, '\r\n'), 'pw'), 'k: v\n', 'CRLF line ends');
  t.throws(() => decrypt(withId.replace('1.2;AES256', '1.3;AES256'), 'pw'), {instanceOf: VaultError, message: /unsupported Ansible vault format/});
  t.throws(() => decrypt(withId.replace('AES256', 'AES128'), 'pw'), {instanceOf: VaultError, message: /unsupported/});
});

test('Ansible format: a wrong passphrase and any tampering of salt, hmac or ciphertext are refused', (t) => {
  const v = encryptAnsible('api_key: abcdef123456\n', 'pw');
  t.throws(() => decrypt(v, 'wrong'), {instanceOf: VaultError, message: /wrong passphrase/});
  const [header, ...body] = v.trimEnd().split('\n');
  const [salt, hmac, ct] = Buffer.from(body.join(''), 'hex').toString('latin1').split('\n') as [string, string, string];
  const flip = (hex: string, i: number): string => hex.slice(0, i) + (hex[i] === '0' ? '1' : '0') + hex.slice(i + 1);
  const make = (s: string, h: string, c: string): string => `${header}\n${Buffer.from([s, h, c].join('\n'), 'latin1').toString('hex')}\n`;
  for (const i of [0, salt.length - 1]) t.throws(() => decrypt(make(flip(salt, i), hmac, ct), 'pw'), {instanceOf: VaultError}, `salt ${i}`);
  for (const i of [0, hmac.length - 1]) t.throws(() => decrypt(make(salt, flip(hmac, i), ct), 'pw'), {instanceOf: VaultError}, `hmac ${i}`);
  for (const i of [0, ct.length - 1]) t.throws(() => decrypt(make(salt, hmac, flip(ct, i)), 'pw'), {instanceOf: VaultError, message: /altered/}, `ciphertext ${i}`);
  t.throws(() => decrypt(make(salt, hmac, ct.slice(0, -32)), 'pw'), {instanceOf: VaultError}, 'truncated');
  t.throws(() => decrypt(`${header}\nzz-not-hex\n`, 'pw'), {instanceOf: VaultError, message: /not hex/});
  t.throws(() => decrypt(`${header}\n`, 'pw'), {instanceOf: VaultError});
});

liveTest(`differential: provision decrypts what ansible-vault encrypt writes, 1.1 and 1.2 (--vault-id)${why}`, (t) => {
  const dir = tmp();
  const pass = join(dir, 'pass');
  writeFileSync(pass, 'diff-Pässphrase-1\n');
  const texts = Array.from({length: 22}, (_, i) => randomText(1000 + i));
  const files = texts.map((text, i) => {
    const f = join(dir, `t${i}.txt`);
    writeFileSync(f, text);
    return f;
  });
  const half = Math.floor(files.length / 2);
  ansibleVault(['encrypt', '--vault-password-file', pass, ...files.slice(0, half)]);
  ansibleVault(['encrypt', '--vault-id', `label@${pass}`, ...files.slice(half)]);
  files.forEach((f, i) => {
    const vaulted = readFileSync(f, 'utf8');
    t.is(ansibleVaultHeader(vaulted).version, i < half ? '1.1' : '1.2');
    if (i >= half) t.is(ansibleVaultHeader(vaulted).vaultId, 'label');
    t.is(decrypt(vaulted, 'diff-Pässphrase-1'), texts[i]!, `text seed ${1000 + i}`);
    t.throws(() => decrypt(vaulted, 'diff-Pässphrase-2'), {instanceOf: VaultError}, 'a wrong passphrase');
  });
  // And the other way: ansible-vault reads what encryptAnsible writes.
  const back = texts.slice(0, 4).map((text, i) => {
    const f = join(dir, `back${i}.txt`);
    writeFileSync(f, encryptAnsible(text, 'diff-Pässphrase-1', i % 2 ? {vaultId: 'label'} : {}));
    return f;
  });
  ansibleVault(['decrypt', '--vault-password-file', pass, ...back]);
  back.forEach((f, i) => t.is(readFileSync(f, 'utf8'), texts[i]!));
});

/** An inventory with inline `!vault` values from `ansible-vault encrypt_string`, and a group_vars file `ansible-vault encrypt`ed. */
function inlineInventory(): {dir: string; inv: string; pass: string; values: Record<string, string>} {
  const dir = tmp();
  const pass = join(dir, 'pass');
  writeFileSync(pass, 'inline-pass\n');
  const values = {db_password: 'Zq9-inline-root', api_token: randomText(2003).replace(/\n/g, ' ').trim() || 'fallback-token', ssh_key: 'line-one-of-key\nline-two-of-key\n'};
  const snippet = (name: string, value: string): string => ansibleVault(['encrypt_string', '--vault-password-file', pass, '--name', name, value]);
  const inv = join(dir, 'hosts.yml');
  writeFileSync(inv, [
    'all:',
    '  children:',
    '    db:',
    '      hosts:',
    '        db1:',
    '          ansible_host: 10.0.0.1',
    ...snippet('db_password', values.db_password).trimEnd().split('\n').map((l) => `          ${l}`),
    '      vars:',
    ...snippet('ssh_key', values.ssh_key).trimEnd().split('\n').map((l) => `        ${l}`),
    '',
  ].join('\n'));
  mkdirSync(join(dir, 'group_vars'), {recursive: true});
  writeFileSync(join(dir, 'group_vars', 'all.yml'), `plain: visible-value\n${snippet('api_token', values.api_token)}\n`);
  const vaulted = join(dir, 'group_vars', 'db.yml');
  writeFileSync(vaulted, 'whole_file_secret: from-ansible-vault-file\n');
  ansibleVault(['encrypt', '--vault-password-file', pass, vaulted]);
  return {dir, inv, pass, values};
}

liveTest(`inline !vault values (ansible-vault encrypt_string) and Ansible vault files load and are masked${why}`, async (t) => {
  const {inv, pass, values} = inlineInventory();
  const secrets = new Secrets();
  const loaded = await loadInventory(inv, {keyring: new Keyring({file: pass}), secrets});
  const vars = loaded.hostVars('db1');
  t.is(vars.db_password, values.db_password);
  t.is(vars.ssh_key, values.ssh_key);
  t.is(vars.api_token, values.api_token);
  t.is(vars.whole_file_secret, 'from-ansible-vault-file');
  t.is(vars.plain, 'visible-value');
  t.is(secrets.mask(`a ${values.db_password} b line-two-of-key`), 'a *** b ***');

  const list = await runMain(['inventory', '-i', inv, '--list'], {PROVISION_VAULT_PASSWORD_FILE: pass, PROVISION_VAULT_PASSWORD: undefined});
  t.is(list.code, 0, list.stderr);
  for (const v of [values.db_password, values.api_token, 'line-one-of-key', 'from-ansible-vault-file']) t.false(list.stdout.includes(v!), v);
  const hostvars = JSON.parse(list.stdout)._meta.hostvars.db1;
  t.is(hostvars.db_password, '***');
  t.is(hostvars.whole_file_secret, '***');
  t.is(hostvars.plain, 'visible-value');
});

liveTest(`inline !vault: a wrong passphrase is one line with file and line, exit 1; a tampered value is refused${why}`, async (t) => {
  const {dir, inv} = inlineInventory();
  const wrong = join(dir, 'wrong');
  writeFileSync(wrong, 'not-the-pass\n');
  const bad = await runMain(['inventory', '-i', inv, '--list'], {PROVISION_VAULT_PASSWORD_FILE: wrong, PROVISION_VAULT_PASSWORD: undefined});
  t.is(bad.code, 1);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  t.regex(bad.stderr, /hosts\.yml:7: !vault value: cannot decrypt: wrong passphrase/);

  // One hex digit of the ciphertext changed (the last line of the first value): the HMAC refuses it.
  const lines = readFileSync(inv, 'utf8').split('\n');
  const i = lines.findIndex((l, n) => n > 7 && /^\s+[0-9a-f]+$/.test(l) && !/^\s+[0-9a-f]+$/.test(lines[n + 1] ?? ''));
  const last = lines[i]!;
  lines[i] = last.slice(0, -1) + (last.endsWith('0') ? '1' : '0');
  writeFileSync(inv, lines.join('\n'));
  const e = await t.throwsAsync(loadInventory(inv, {keyring: new Keyring({file: join(dir, 'pass')}), secrets: new Secrets()}), {instanceOf: UserError});
  t.is(e.exitCode, 1);
  t.regex(e.oneLine(), /hosts\.yml:\d+: !vault value: (cannot decrypt|damaged)/);
});

test.serial('provision vault rekey: Ansible → provision (same passphrase), provision → provision (--new-vault-password-file)', async (t) => {
  const dir = tmp();
  const file = join(dir, 'secrets.yml');
  writeFileSync(file, encryptAnsible('db_password: from-ansible\n', 'old-pass', {vaultId: 'prod'}));
  const env = {PROVISION_VAULT_PASSWORD: 'old-pass', PROVISION_VAULT_PASSWORD_FILE: undefined};
  t.is((await runMain(['vault', 'view', file], env)).stdout, 'db_password: from-ansible\n', 'view reads Ansible files');
  t.is((await runMain(['vault', 'edit', file], env)).code, 1, 'edit asks for a rekey first');
  const conv = await runMain(['vault', 'rekey', file], env);
  t.is(conv.code, 0, conv.stderr);
  t.true(readFileSync(file, 'utf8').startsWith(VAULT_HEADER));
  t.is(decrypt(readFileSync(file, 'utf8'), 'old-pass'), 'db_password: from-ansible\n');

  const noNew = await runMain(['vault', 'rekey', file], env);
  t.is(noNew.code, 5, 'provision → provision needs the new passphrase');
  const newPass = join(dir, 'new-pass');
  writeFileSync(newPass, 'new-pass\n');
  const re = await runMain(['vault', 'rekey', file, '--new-vault-password-file', newPass], env);
  t.is(re.code, 0, re.stderr);
  t.is(decrypt(readFileSync(file, 'utf8'), 'new-pass'), 'db_password: from-ansible\n');
  t.throws(() => decrypt(readFileSync(file, 'utf8'), 'old-pass'), {instanceOf: VaultError});
  t.is((await runMain(['vault', 'rekey', file], env)).code, 1, 'the old passphrase no longer opens it');
  // A provision vault still opens as before.
  t.is(decrypt(encrypt('x: 1\n', 'p'), 'p'), 'x: 1\n');
});
