/**
 * From an inventory host to an open transport: paths in the inventory (keys, known_hosts) are
 * resolved against the cwd, the inventory's folder, then provision's own folder (CONTRACTS.md: the lab
 * inventory names its key relative to the project root).
 */
import {dirname} from 'node:path';
import {connectSsh, resolveConnection} from '../transport/ssh.ts';
import type {Transport} from '../transport/types.ts';
import type {Vars} from '../core/types.ts';
import {resolveUserPath} from './load.ts';

export interface ConnectOptions {
  readonly acceptNewHostKeys: boolean;
  /** The inventory file (its folder is a base for relative paths). */
  readonly inventoryDir: string;
  readonly connectTimeoutMs?: number;
}

const pathVars = ['ansible_ssh_private_key_file', 'ansible_private_key_file', 'ansible_ssh_known_hosts_file', 'provision_known_hosts_file'];

export function connectionVars(vars: Vars, inventoryFile: string): Record<string, unknown> {
  const out: Record<string, unknown> = {...vars};
  for (const k of pathVars) {
    const v = out[k];
    if (typeof v === 'string' && !v.startsWith('~')) out[k] = resolveUserPath(v, dirname(inventoryFile));
  }
  return out;
}

export function connectHost(host: string, vars: Vars, opts: ConnectOptions): Promise<Transport> {
  const spec = resolveConnection(host, connectionVars(vars, opts.inventoryDir), {
    acceptNewHostKeys: opts.acceptNewHostKeys,
    ...(opts.connectTimeoutMs ? {connectTimeoutMs: opts.connectTimeoutMs} : {}),
  });
  return connectSsh(spec);
}
