/**
 * `provision ping` and `provision exec`: ad-hoc work on many hosts at once, Ansible-style output.
 */
import pLimit from 'p-limit';
import {ExitCode, badOption, type ExitCodeValue} from '../core/errors.ts';
import type {Secrets} from '../core/secret.ts';
import type {Keyring} from '../core/vault.ts';
import {becomeIdentity, runCommand, type Identity} from '../core/remote.ts';
import {BecomeError, becomeVars, needsFraming} from '../core/become.ts';
import {truthy} from '../shared/vars.ts';
import {UnreachableError} from '../transport/types.ts';
import {loadInventories, selectHosts} from '../inventory/index.ts';
import {askBecomePassword, becomeInventory} from './become.ts';
import {connectHost} from './connect.ts';

interface AdhocFlags {
  /** `-i`, repeatable: the sources, merged in order. */
  inventory?: readonly string[];
  limit?: string;
  become?: boolean;
  acceptNewHostKeys?: boolean;
  json?: boolean;
  /** -K: ask for the become password once. */
  askBecomePass?: boolean;
  forks: number;
}

/** What one host answered to `ping` or `exec`: raw, unmasked (`formatOutcome` masks). */
export type Outcome = {host: string; status: 'ok' | 'changed' | 'failed' | 'unreachable'; rc?: number; stdout?: string; stderr?: string; msg?: string};

export async function adhoc(
  kind: 'ping' | 'exec', pattern: string, command: string | undefined, flags: AdhocFlags, defaultInventory: () => string,
  vault: {readonly keyring: Keyring; readonly secrets: Secrets},
): Promise<ExitCodeValue> {
  const {secrets} = vault;
  const becomePassword = flags.askBecomePass ? await askBecomePassword(secrets) : undefined;
  const inv = becomeInventory(await loadInventories(flags.inventory ?? [defaultInventory()], vault), becomePassword, secrets);
  let hosts = selectHosts(inv, pattern);
  if (flags.limit !== undefined) {
    const allowed = new Set(selectHosts(inv, flags.limit, process.cwd()));
    hosts = hosts.filter((h) => allowed.has(h));
  }
  if (hosts.length === 0) throw badOption(`pattern '${pattern}' matches no host of ${inv.source}`);
  const limit = pLimit(flags.forks);
  const outcomes = await Promise.all(hosts.map((host) => limit(async (): Promise<Outcome> => {
    const vars = inv.hostVars(host);
    let t;
    try {
      t = await connectHost(host, vars, {acceptNewHostKeys: !!flags.acceptNewHostKeys, inventoryDir: inv.source});
    } catch (e) {
      return {host, status: 'unreachable', msg: e instanceof Error ? e.message : String(e)};
    }
    try {
      const becomeUser = typeof vars.ansible_become_user === 'string' ? vars.ansible_become_user : 'root';
      const wantBecome = kind === 'ping' ? truthy(vars.ansible_become) : flags.become ?? truthy(vars.ansible_become);
      const how = becomeVars(vars);
      if (wantBecome && 'error' in how) return {host, status: 'failed', msg: `become failed: ${how.error}`};
      const who: Identity = wantBecome ? becomeIdentity(vars, becomeUser) : {become: false};
      const method = 'error' in how ? 'sudo' : how.method;
      // `check`: a wrong sudo password fails after one attempt (one command per host: worth a second authentication).
      if (kind === 'ping') {
        const r = await runCommand(t, who, 'echo pong', undefined, {check: true});
        if (r.code === 0 && r.stdout.trim() === 'pong') return {host, status: 'ok', msg: wantBecome ? `pong (${method} to ${becomeUser} works)` : 'pong'};
        const said = r.stderr.trim() || r.stdout.trim();
        const hint = /a password is required/.test(said) ? ' (set ansible_become_password, or use -K)' : '';
        return {host, status: 'failed', rc: r.code, msg: who.become && !needsFraming(who) ? `sudo -n failed: ${said}${hint}` : `failed: ${said}`};
      }
      const r = await runCommand(t, who, command ?? 'true', undefined, {check: true});
      return {host, status: r.code === 0 ? 'changed' : 'failed', rc: r.code, stdout: r.stdout, stderr: r.stderr};
    } catch (e) {
      if (e instanceof UnreachableError) return {host, status: 'unreachable', msg: e.message};
      if (e instanceof BecomeError) return {host, status: 'failed', msg: e.message};
      throw e;
    } finally {
      await t.close();
    }
  })));
  for (const o of outcomes) process.stdout.write(formatOutcome(kind, o, !!flags.json, secrets));
  if (outcomes.some((o) => o.status === 'unreachable')) return ExitCode.unreachable;
  if (outcomes.some((o) => o.status === 'failed')) return ExitCode.hostFailed;
  return ExitCode.ok;
}

/**
 * The output for one host: a JSON line under `--json`, Ansible's ad-hoc lines otherwise. Pure.
 * The outcome's values are masked first, then shaped (serialised, joined, ended with a newline).
 */
export function formatOutcome(kind: 'ping' | 'exec', outcome: Outcome, json: boolean, secrets: Pick<Secrets, 'mask' | 'maskValue'>): string {
  const o = secrets.maskValue(outcome);
  if (json) return JSON.stringify({type: 'result', host: o.host, task: kind, status: o.status, rc: o.rc ?? null, stdout: o.stdout ?? '', stderr: o.stderr ?? '', msg: o.msg ?? ''}) + '\n';
  if (o.status === 'unreachable') return `${o.host} | UNREACHABLE! => ${o.msg ?? ''}\n`;
  if (kind === 'ping') return `${o.host} | ${o.status === 'ok' ? 'SUCCESS' : 'FAILED'} => ${o.msg ?? ''}\n`;
  // Both streams, as a terminal shows them; a secret split across the two shows whole once they are
  // joined, so the joined text (plain text, not yet shaped) is masked too.
  const output = secrets.mask((o.stdout ?? '') + (o.stderr ?? ''));
  return `${o.host} | ${o.status === 'failed' ? 'FAILED' : 'CHANGED'} | rc=${o.rc} >>\n${output}${output === '' || output.endsWith('\n') ? '' : '\n'}`;
}
