/**
 * The become password on the command line: `-K/--ask-become-pass` asks for it once per command
 * (without echo on a terminal; else the first line of stdin, as Ansible's getpass falls back to) and
 * every host gets it as `ansible_become_password`, unless the host sets its own (a host's variable
 * wins, as in Ansible). Every become password joins the command's secrets before anything runs:
 * the one typed, and those the inventory holds, from a vault or not.
 */
import {BECOME_PASSWORD_VARS} from '../core/become.ts';
import {ExitCode, UserError} from '../core/errors.ts';
import type {Secrets} from '../core/secret.ts';
import type {Inventory} from '../inventory/index.ts';
import {promptHidden} from './vault.ts';

/** The first line of a stdin that is not a terminal (`echo "$PASS" | provision run -K …`). */
function stdinLine(): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (result: () => void): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      // Nothing else reads stdin off a terminal: let the process end.
      stdin.destroy();
      result();
    };
    const onData = (chunk: string): void => {
      text += chunk;
      const nl = text.search(/\r?\n/);
      if (nl >= 0) finish(() => resolve(text.slice(0, nl)));
    };
    const onEnd = (): void => finish(() => (text === '' ? reject(new UserError('-K: no become password on stdin (it is not a terminal)', ExitCode.badOptions)) : resolve(text)));
    const onError = (e: Error): void => finish(() => reject(new UserError(`-K: cannot read stdin: ${e.message}`, ExitCode.badOptions)));
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    stdin.resume();
  });
}

/** `-K`: ask for the become password (once), and add it to the command's secrets. */
export async function askBecomePassword(secrets: Secrets): Promise<string> {
  const password = process.stdin.isTTY ? await promptHidden('BECOME password: ') : await stdinLine();
  secrets.add(password);
  return password;
}

/**
 * The inventory as the run sees it: with `password` (from `-K`) as every host's become password unless
 * the host has one. The inventory's own become passwords join `secrets` (a vault's already have).
 */
export function becomeInventory(inv: Inventory, password: string | undefined, secrets: Secrets): Inventory {
  const own = (vars: Record<string, unknown>): boolean => BECOME_PASSWORD_VARS.some((k) => vars[k] !== undefined && vars[k] !== null);
  for (const host of inv.hostNames) {
    const vars = inv.hostVars(host);
    for (const k of BECOME_PASSWORD_VARS) if (typeof vars[k] === 'string') secrets.add(vars[k]);
  }
  if (password === undefined || password === '') return inv;
  return {
    source: inv.source,
    hostNames: inv.hostNames,
    groups: inv.groups,
    warnings: inv.warnings,
    hostVars: (host) => {
      const vars = inv.hostVars(host);
      return own(vars) ? vars : {...vars, ansible_become_password: password};
    },
    groupsOf: (host) => inv.groupsOf(host),
    groupHosts: (group) => inv.groupHosts(group),
  };
}
