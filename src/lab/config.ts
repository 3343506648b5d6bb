/**
 * What the lab needs from its inventory, read with `yaml` directly (every host under all/children
 * with its `ansible_host`, plus all.vars), and where the lab keeps its state.
 */
import {readFileSync} from 'node:fs';
import {isAbsolute, join, resolve} from 'node:path';
import {parse} from 'yaml';
import {currentProject} from '../core/paths.ts';
import {UserError, parseError} from '../core/errors.ts';

/** The project the lab belongs to (its state is `.lab/` there): the current one, provision's own in its repository. */
export function projectRoot(): string {
  return currentProject();
}

/** Every path the lab writes, under `<project root>/.lab/`. */
export interface LabPaths {
  readonly root: string;
  readonly lab: string;
  readonly base: string;
  readonly baseMarker: string;
  readonly hosts: string;
  readonly sshDir: string;
  readonly clientKey: string;
  readonly knownHosts: string;
  readonly state: string;
  readonly aptCache: string;
  readonly acng: string;
  readonly pebble: string;
  readonly logs: string;
  readonly lock: string;
}

export function labPaths(root = projectRoot()): LabPaths {
  const lab = join(root, '.lab');
  return {
    root,
    lab,
    base: join(lab, 'base'),
    baseMarker: join(lab, 'base', '.provision-lab-base'),
    hosts: join(lab, 'hosts'),
    sshDir: join(lab, 'ssh'),
    clientKey: join(lab, 'ssh', 'id_ed25519'),
    knownHosts: join(lab, 'known_hosts'),
    state: join(lab, 'state.json'),
    aptCache: join(lab, 'apt-cache'),
    acng: join(lab, 'apt-cacher-ng'),
    pebble: join(lab, 'pebble'),
    logs: join(lab, 'logs'),
    lock: join(lab, 'lock'),
  };
}

/** One lab host: its inventory name and address. */
export interface LabHost {
  readonly name: string;
  readonly address: string;
  /** Groups the host is in (directly or through children), for `status`. */
  readonly groups: readonly string[];
}

/** The lab's configuration, from the inventory's all.vars with defaults. */
export interface LabConfig {
  readonly inventoryPath: string;
  readonly hosts: readonly LabHost[];
  readonly bridge: string;
  /** The controller's address on the bridge, e.g. 10.231.0.1. */
  readonly bridgeIp: string;
  readonly prefixLength: number;
  readonly domain: string;
  readonly siteDomain: string | undefined;
  readonly vip: string | undefined;
  readonly vipSecondary: string | undefined;
  /** The non-root user with passwordless sudo. */
  readonly user: string;
  readonly aptProxyPort: number;
  /** Debian suite of the hosts. */
  readonly suite: string;
  readonly vars: Readonly<Record<string, unknown>>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const HOST_NAME = /^[a-z][a-z0-9-]{0,11}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isIpv4(s: string): boolean {
  const m = IPV4.exec(s);
  return !!m && m.slice(1).every((p) => Number(p) <= 255);
}

/** Read the lab inventory. Errors are `UserError`s naming the file and field. */
export function loadLabConfig(inventoryPath: string, root = projectRoot()): LabConfig {
  const file = isAbsolute(inventoryPath) ? inventoryPath : resolve(process.cwd(), inventoryPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`inventory not found: ${inventoryPath}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw parseError(`not valid YAML: ${(e as Error).message.split('\n')[0]}`, {file: inventoryPath});
  }
  if (!isObj(doc) || !isObj(doc.all)) throw parseError('expected a top-level `all` group', {file: inventoryPath});
  const all = doc.all;
  const vars: Obj = isObj(all.vars) ? all.vars : {};
  const hosts = new Map<string, {address?: string; groups: Set<string>}>();

  const walk = (group: Obj, name: string, path: string, ancestors: string[]): void => {
    const groups = name === 'all' ? ancestors : [...ancestors, name];
    if (group.hosts !== undefined && group.hosts !== null) {
      if (!isObj(group.hosts)) throw parseError('expected a mapping of hosts', {file: inventoryPath, field: `${path}.hosts`});
      for (const [h, hv] of Object.entries(group.hosts)) {
        const entry = hosts.get(h) ?? {groups: new Set<string>()};
        groups.forEach((g) => entry.groups.add(g));
        if (isObj(hv) && typeof hv.ansible_host === 'string') entry.address = hv.ansible_host;
        hosts.set(h, entry);
      }
    }
    if (group.children !== undefined && group.children !== null) {
      if (!isObj(group.children)) throw parseError('expected a mapping of groups', {file: inventoryPath, field: `${path}.children`});
      for (const [c, cv] of Object.entries(group.children)) walk(isObj(cv) ? cv : {}, c, `${path}.children.${c}`, groups);
    }
  };
  walk(all, 'all', 'all', []);

  const labHosts: LabHost[] = [];
  const seen = new Set<string>();
  for (const [name, h] of hosts) {
    if (!HOST_NAME.test(name))
      throw parseError(`lab host names must be short lowercase names (a-z, 0-9, -; at most 12 characters, for the veth name): ${name}`, {file: inventoryPath, field: name});
    if (!h.address || !isIpv4(h.address)) throw parseError('every lab host needs an IPv4 `ansible_host`', {file: inventoryPath, field: `${name}.ansible_host`});
    if (seen.has(h.address)) throw parseError(`address ${h.address} used twice`, {file: inventoryPath, field: `${name}.ansible_host`});
    seen.add(h.address);
    labHosts.push({name, address: h.address, groups: [...h.groups]});
  }
  if (labHosts.length === 0) throw parseError('no hosts', {file: inventoryPath, field: 'all'});

  const str = (k: string, dflt: string): string => (typeof vars[k] === 'string' ? (vars[k] as string) : dflt);
  const bridgeAddr = str('lab_bridge_address', '10.231.0.1/24');
  const [bridgeIp, prefix = '24'] = bridgeAddr.split('/');
  if (!bridgeIp || !isIpv4(bridgeIp)) throw parseError('expected an IPv4 address with prefix, e.g. 10.231.0.1/24', {file: inventoryPath, field: 'all.vars.lab_bridge_address'});
  const bridge = str('lab_bridge', 'provlab0');
  if (!/^[a-zA-Z0-9_-]{1,15}$/.test(bridge)) throw parseError('not a valid interface name', {file: inventoryPath, field: 'all.vars.lab_bridge'});
  const user = str('ansible_user', 'provision');
  const optStr = (k: string): string | undefined => (typeof vars[k] === 'string' ? (vars[k] as string) : undefined);
  void root;
  return {
    inventoryPath: file,
    hosts: labHosts,
    bridge,
    bridgeIp,
    prefixLength: Number(prefix),
    domain: str('lab_domain', 'lab.test'),
    siteDomain: optStr('site_domain'),
    vip: optStr('vip'),
    vipSecondary: optStr('vip_secondary'),
    user: user === 'root' ? 'provision' : user,
    aptProxyPort: typeof vars.lab_apt_proxy_port === 'number' ? vars.lab_apt_proxy_port : 3143,
    suite: str('lab_suite', 'bookworm'),
    vars,
  };
}
