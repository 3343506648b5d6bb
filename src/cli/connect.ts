/**
 * From an inventory host to an open transport: paths in the inventory (keys, known_hosts) are
 * resolved against the cwd, the inventory's folder, then provision's own folder (CONTRACTS.md: the lab
 * inventory names its key relative to the project root).
 */
import {dirname} from 'node:path';
import {connectSsh, resolveConnection} from '../transport/ssh.ts';
import {UnreachableError, type Transport} from '../transport/types.ts';
import type {Vars} from '../core/types.ts';
import {resolveUserPath} from './load.ts';

export interface ConnectOptions {
  readonly acceptNewHostKeys: boolean;
  /** The inventory file (its folder is a base for relative paths). */
  readonly inventoryDir: string;
  readonly connectTimeoutMs?: number;
  /** Waits before each new attempt after a transient failure (default 0.5 s, 1 s, 2 s; `ansible_ssh_retries` sets how many). */
  readonly retryDelaysMs?: readonly number[];
}

/** Backoff before the 2nd, 3rd, 4th attempt. */
export const RETRY_DELAYS_MS = [500, 1000, 2000] as const;

/**
 * Call `attempt` again after a transient failure (refused, timed out, no route, reset before the
 * handshake), waiting `delays[i]` before retry i. Host key and authentication failures, and anything
 * not an `UnreachableError` marked transient, fail at once.
 */
export async function withConnectRetries<T>(attempt: () => Promise<T>, delays: readonly number[]): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof UnreachableError) || !e.transient || i >= delays.length) throw e;
      await new Promise((r) => setTimeout(r, delays[i]));
    }
  }
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

export async function connectHost(host: string, vars: Vars, opts: ConnectOptions): Promise<Transport> {
  const spec = resolveConnection(host, connectionVars(vars, opts.inventoryDir), {
    acceptNewHostKeys: opts.acceptNewHostKeys,
    ...(opts.connectTimeoutMs ? {connectTimeoutMs: opts.connectTimeoutMs} : {}),
  });
  let delays: readonly number[] = opts.retryDelaysMs ?? RETRY_DELAYS_MS;
  const retries = Number(vars.ansible_ssh_retries);
  if (vars.ansible_ssh_retries !== undefined && Number.isInteger(retries) && retries >= 0) {
    delays = Array.from({length: retries}, (_, i) => delays[Math.min(i, delays.length - 1)] ?? 500 * 2 ** i);
  }
  return withConnectRetries(() => connectSsh(spec), delays);
}
