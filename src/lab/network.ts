/** The lab's bridge: created by the lab, the controller's address on it, no forwarding, no NAT. */
import {existsSync} from 'node:fs';
import {runCmd} from './run.ts';

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Create the bridge with `ip/prefix` and bring it up; a bridge that already has the address is kept. */
export async function ensureBridge(name: string, ip: string, prefix: number): Promise<'created' | 'kept'> {
  let created = false;
  if (!linkExists(name)) {
    await runCmd(['ip', 'link', 'add', name, 'type', 'bridge']);
    created = true;
  }
  const addrs = await runCmd(['ip', '-o', '-4', 'addr', 'show', 'dev', name]);
  if (!addrs.stdout.includes(` ${ip}/${prefix} `)) await runCmd(['ip', 'addr', 'add', `${ip}/${prefix}`, 'dev', name]);
  await runCmd(['ip', 'link', 'set', name, 'up']);
  return created ? 'created' : 'kept';
}

export async function deleteLink(name: string): Promise<void> {
  if (linkExists(name)) await runCmd(['ip', 'link', 'del', name], {allowFail: true});
}

/** Names of links whose name starts with `prefix` (e.g. `vb-` veths left by nspawn). */
export async function linksWithPrefix(prefix: string): Promise<string[]> {
  const {stdout} = await runCmd(['ip', '-o', 'link', 'show']);
  return stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && n.startsWith(prefix));
}
