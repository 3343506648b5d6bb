/**
 * The lab's vault (src/lab/vault.ts): generated passwords, a 0600 passphrase file, idempotent.
 */
import test from 'ava';
import {existsSync, mkdtempSync, readFileSync, statSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parse as parseYaml} from 'yaml';
import {UserError} from '../../src/core/errors.ts';
import {decrypt} from '../../src/core/vault.ts';
import {LAB_VAULT_PASSWORDS, ensureLabVault} from '../../src/lab/vault.ts';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'prov-lab-vault-'));

test('ensureLabVault: creates a 0600 passphrase file and a vault with every password; idempotent; completes missing names', (t) => {
  const dir = tmp();
  const vault = join(dir, 'inventory', 'group_vars', 'all', 'vault.yml');
  const pass = join(dir, '.lab', 'vault-pass');
  const first = ensureLabVault(vault, pass);
  t.true(first.createdPassFile);
  t.true(first.written);
  t.deepEqual([...first.added], [...LAB_VAULT_PASSWORDS]);
  t.is(statSync(pass).mode & 0o777, 0o600);
  t.is(statSync(vault).mode & 0o777, 0o600);
  const clear = parseYaml(decrypt(readFileSync(vault, 'utf8'), readFileSync(pass, 'utf8').trim())) as Record<string, string>;
  for (const n of LAB_VAULT_PASSWORDS) t.regex(clear[n]!, /^[A-Za-z0-9]{24}$/);
  const before = readFileSync(vault, 'utf8');
  const again = ensureLabVault(vault, pass);
  t.deepEqual(again, {createdPassFile: false, written: false, added: []});
  t.is(readFileSync(vault, 'utf8'), before, 'untouched');
  const more = ensureLabVault(vault, pass, [...LAB_VAULT_PASSWORDS, 'grafana_admin_password']);
  t.deepEqual([...more.added], ['grafana_admin_password']);
  const after = parseYaml(decrypt(readFileSync(vault, 'utf8'), readFileSync(pass, 'utf8').trim())) as Record<string, string>;
  t.is(after.mysql_root_password, clear.mysql_root_password, 'existing values kept');
  const lost = join(dir, 'other-pass');
  t.false(existsSync(lost));
  t.throws(() => ensureLabVault(vault, lost), {instanceOf: UserError, message: /passphrase file/});
});
