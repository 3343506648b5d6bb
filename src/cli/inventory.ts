/**
 * `provision inventory`: the `ansible-inventory` views of an inventory: `--list` (JSON, the shape
 * of CONTRACTS.md), `--graph [GROUP]`, `--host HOST` (one host's variables). Errors are thrown as
 * `UserError`s for the main CLI to print and turn into exit codes.
 */
import type {Command} from 'commander';
import {badOption} from '../core/errors.ts';
import type {Secrets} from '../core/secret.ts';
import {commandKeyring} from './vault.ts';
import {inventoryGraph, inventoryList, loadInventories, sortKeys} from '../inventory/index.ts';

interface InventoryOptions {
  /** `-i`, repeatable: the sources, merged in order. */
  readonly inventory?: readonly string[];
  readonly list?: boolean;
  /** `true` for a bare `--graph`, the group name otherwise. */
  readonly graph?: boolean | string;
  readonly host?: string;
  readonly vaultPasswordFile?: string;
  readonly vaultId?: readonly string[];
}

/** Adds `provision inventory [-i SOURCE]… (--list | --graph [GROUP] | --host HOST)` to `program`. */
export function registerInventory(program: Command, defaultInventory: () => string, secrets: Secrets): void {
  program
    .command('inventory')
    .description('show an inventory as Ansible reads it (like ansible-inventory)')
    .option('-i, --inventory <source>', 'inventory file (YAML, INI), directory of them, or executable script; repeatable: merged in order', (v: string, prev: string[] = []) => [...prev, v])
    .option('--list', 'all groups and host variables, as JSON')
    .option('--graph [group]', 'the group tree, from GROUP (default: all)')
    .option('--host <host>', "one host's variables, as JSON")
    .option('--vault-password-file <file>', 'read the vault passphrase from this file')
    .option('--vault-id <label@source>', 'a vault passphrase: label@file, label@script or label@prompt (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (options: InventoryOptions) => {
      const chosen = [options.list, options.graph, options.host].filter((o) => o !== undefined && o !== false);
      if (chosen.length !== 1) throw badOption('inventory: give exactly one of --list, --graph [GROUP], --host HOST');
      const inv = await loadInventories(options.inventory ?? [defaultInventory()], {keyring: commandKeyring(options.vaultPasswordFile, options.vaultId), secrets});
      for (const w of inv.warnings) process.stderr.write(`[WARNING]: ${w}\n`);
      if (options.list) {
        process.stdout.write(JSON.stringify(secrets.maskValue(inventoryList(inv)), null, 2) + '\n'); // vault values print as ***
      } else if (options.host !== undefined) {
        if (!inv.hostNames.includes(options.host)) throw badOption(`inventory: no host ${options.host} in ${inv.source}`);
        process.stdout.write(JSON.stringify(secrets.maskValue(sortKeys(inv.hostVars(options.host))), null, 2) + '\n');
      } else {
        const group = typeof options.graph === 'string' ? options.graph : 'all';
        process.stdout.write(inventoryGraph(inv, group) + '\n');
      }
    });
}
