/**
 * The vault: format, round trip, wrong passphrase and tampering refused, values masked once an
 * inventory loads them, and the `provision vault` commands. `ensureLabVault`: test/lab/vault.test.ts.
 */
import test from 'ava';
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {UserError} from '../../src/core/errors.ts';
import {Secrets} from '../../src/core/secret.ts';
import {
  Keyring, VAULT_HEADER, VaultError, decrypt, encrypt, isVaultText,
} from '../../src/core/vault.ts';
import {loadInventory} from '../../src/inventory/index.ts';
import {runMain} from '../helpers/inprocess.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'prov-vault-'));

test('round trip: any text, fresh salt and iv each time, header then base64 wrapped at 80 columns', (t) => {
  for (const text of ['', 'db_password: hunter2\n', 'ünïcödé: "✓"\n', 'x'.repeat(5000)]) {
    const a = encrypt(text, 'pass phrase');
    const b = encrypt(text, 'pass phrase');
    t.not(a, b, 'a fresh salt and iv every time');
    t.true(isVaultText(a));
    const lines = a.trimEnd().split('\n');
    t.is(lines[0], VAULT_HEADER);
    for (const l of lines.slice(1)) {
      t.true(l.length <= 80);
      t.regex(l, /^[A-Za-z0-9+/=]+$/);
    }
    t.is(decrypt(a, 'pass phrase'), text);
    t.is(decrypt(a.replace(/\n/g, '\r\n'), 'pass phrase'), text, 'CRLF line ends are fine');
  }
  t.false(isVaultText('a: 1\n'));
});

test('a wrong passphrase is refused', (t) => {
  const v = encrypt('secret: 1\n', 'right');
  const e = t.throws(() => decrypt(v, 'wrong'), {instanceOf: VaultError});
  t.regex(e.message, /wrong passphrase/);
});

test('tampering is detected: any flipped byte of salt, iv, tag or body, the header, truncation', (t) => {
  const v = encrypt('api_key: abcdef123456\n', 'pw');
  const [header, ...body] = v.trimEnd().split('\n');
  const blob = Buffer.from(body.join(''), 'base64');
  // First and last byte of salt (0-15), iv (16-27), tag (28-43) and body.
  for (const i of [0, 15, 16, 27, 28, 43, 44, blob.length - 1]) {
    const bad = Buffer.from(blob);
    bad.writeUInt8(bad.readUInt8(i) ^ 0x01, i);
    t.throws(() => decrypt(`${header}\n${bad.toString('base64')}\n`, 'pw'), {instanceOf: VaultError}, `byte ${i}`);
  }
  t.throws(() => decrypt(v.replace('1.0', '1.1'), 'pw'), {instanceOf: VaultError, message: /unsupported vault format/});
  t.throws(() => decrypt(`${header}\n${blob.subarray(0, 20).toString('base64')}\n`, 'pw'), {instanceOf: VaultError, message: /too short/});
  t.throws(() => decrypt(`${header}\n!!not base64!!\n`, 'pw'), {instanceOf: VaultError, message: /not base64/});
  t.throws(() => decrypt('plain: text\n', 'pw'), {instanceOf: VaultError, message: /not a vault file/});
});

function vaultInventory(pass: string, clear: string): {dir: string; inv: string; vault: string} {
  const dir = tmp();
  const inv = join(dir, 'hosts.yml');
  writeFileSync(inv, 'all:\n  children:\n    db:\n      hosts:\n        db1: {ansible_host: 10.0.0.1}\n');
  mkdirSync(join(dir, 'group_vars', 'db'), {recursive: true});
  writeFileSync(join(dir, 'group_vars', 'db', 'plain.yml'), 'mysql_port: 3306\nmysql_user: app\n');
  const vault = join(dir, 'group_vars', 'db', 'vault.yml');
  writeFileSync(vault, encrypt(clear, pass));
  return {dir, inv, vault};
}

test.serial('an inventory loads vault files in group_vars transparently; every string in them is masked', async (t) => {
  const {inv} = vaultInventory('s3cret-pass', 'mysql_root_password: Zq9rootPW\nnested:\n  token: tok-77-abc\n  list: [item-one-secret]\nshort: ab\n');
  process.env.PROVISION_VAULT_PASSWORD = 's3cret-pass';
  try {
    const secrets = new Secrets();
    const loaded = await loadInventory(inv, {keyring: new Keyring(), secrets});
    const {mask} = secrets;
    const vars = loaded.hostVars('db1');
    t.is(vars.mysql_root_password, 'Zq9rootPW');
    t.is(vars.mysql_port, 3306);
    t.deepEqual(vars.nested, {token: 'tok-77-abc', list: ['item-one-secret']});
    t.is(mask('pw=Zq9rootPW token=tok-77-abc x=item-one-secret'), 'pw=*** token=*** x=***');
    t.is(mask('ab stays: strings shorter than 4 characters are not masked'), 'ab stays: strings shorter than 4 characters are not masked');
  } finally {
    delete process.env.PROVISION_VAULT_PASSWORD;
  }
});

test.serial('a wrong passphrase is one line naming the file, exit 1; no passphrase at all is exit 5', async (t) => {
  const {inv, vault} = vaultInventory('right-pass', 'a_secret: value-1234\n');
  process.env.PROVISION_VAULT_PASSWORD = 'wrong-pass';
  try {
    const e = await t.throwsAsync(loadInventory(inv), {instanceOf: UserError});
    t.is(e.exitCode, 1);
    t.true(e.oneLine().includes(vault));
    t.notRegex(e.oneLine(), /\n/);
    delete process.env.PROVISION_VAULT_PASSWORD;
    const none = await t.throwsAsync(loadInventory(inv), {instanceOf: UserError});
    t.is(none.exitCode, 5);
    t.regex(none.message, /PROVISION_VAULT_PASSWORD_FILE/);
    // The file variant, through the CLI.
    const passFile = join(tmp(), 'pass');
    writeFileSync(passFile, 'right-pass\n', {mode: 0o600});
    const ok = await runMain(['inventory', '-i', inv, '--host', 'db1'], {PROVISION_VAULT_PASSWORD_FILE: passFile});
    t.is(ok.code, 0, ok.stderr);
    t.is(JSON.parse(ok.stdout).a_secret, '***', 'opened with the passphrase file, and masked in the output');
    writeFileSync(passFile, 'nope\n');
    const bad = await runMain(['inventory', '-i', inv, '--list'], {PROVISION_VAULT_PASSWORD_FILE: passFile});
    t.is(bad.code, 1);
    t.is(bad.stderr.trim().split('\n').length, 1);
    t.regex(bad.stderr, /vault\.yml: cannot decrypt: wrong passphrase/);
  } finally {
    delete process.env.PROVISION_VAULT_PASSWORD;
  }
});

test.serial('provision vault encrypt, view, edit, decrypt, create', async (t) => {
  const dir = tmp();
  const file = join(dir, 'secrets.yml');
  writeFileSync(file, 'db_password: plain-at-first\n');
  const env = {PROVISION_VAULT_PASSWORD: 'cli-pass', PROVISION_VAULT_PASSWORD_FILE: undefined};
  const run = async (...args: string[]) => {
    return runMain(['vault', ...args], env);
  };
  const enc = await run('encrypt', file);
  t.is(enc.code, 0, enc.stderr);
  t.true(readFileSync(file, 'utf8').startsWith(VAULT_HEADER));
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is((await run('encrypt', file)).code, 1, 'already encrypted');

  const view = await run('view', file);
  t.is(view.stdout, 'db_password: plain-at-first\n');

  // edit: the editor is a script that rewrites the (0600) temp file it is given.
  const editor = join(dir, 'editor.sh');
  writeFileSync(editor, '#!/bin/sh\nstat -c %a "$1" > "$(dirname "$0")/seen-mode"\nsed -i s/plain-at-first/edited-value/ "$1"\n');
  chmodSync(editor, 0o755);
  process.env.EDITOR = editor;
  try {
    const ed = await run('edit', file);
    t.is(ed.code, 0, ed.stderr);
    t.is(readFileSync(join(dir, 'seen-mode'), 'utf8').trim(), '600');
    t.is((await run('view', file)).stdout, 'db_password: edited-value\n');

    const created = join(dir, 'new.yml');
    writeFileSync(editor, '#!/bin/sh\necho "api_token: from-create" > "$1"\n');
    const cr = await run('create', created);
    t.is(cr.code, 0, cr.stderr);
    t.is((await run('view', created)).stdout, 'api_token: from-create\n');
    t.is((await run('create', created)).code, 1, 'create refuses an existing file');
  } finally {
    delete process.env.EDITOR;
  }

  const wrong = await runMain(['vault', 'view', file], {PROVISION_VAULT_PASSWORD: 'not-it'});
  t.is(wrong.code, 1);
  t.is(wrong.stderr.trim().split('\n').length, 1);

  const dec = await run('decrypt', file);
  t.is(dec.code, 0);
  t.is(readFileSync(file, 'utf8'), 'db_password: edited-value\n');
  t.is((await run('view', file)).code, 1, 'not a vault any more');
  const noPass = await runMain(['vault', 'view', file], {PROVISION_VAULT_PASSWORD: undefined, PROVISION_VAULT_PASSWORD_FILE: undefined});
  t.is(noPass.code, 1, 'not a vault file: said before any passphrase is needed');
  t.regex(noPass.stderr, /is not a vault file/);
});

test.serial('-e @vault.yml is decrypted and masked', async (t) => {
  const dir = tmp();
  const file = join(dir, 'extra.yml');
  writeFileSync(file, encrypt('extra_secret: xyzzy-4242\n', 'e-pass'));
  const {parseExtraVars} = await import('../../src/cli/main.ts');
  process.env.PROVISION_VAULT_PASSWORD = 'e-pass';
  try {
    const secrets = new Secrets();
    t.deepEqual(parseExtraVars([`@${file}`], {keyring: new Keyring(), secrets}), {extra_secret: 'xyzzy-4242'});
    t.is(secrets.mask('got xyzzy-4242'), 'got ***');
  } finally {
    delete process.env.PROVISION_VAULT_PASSWORD;
  }
});
