/**
 * Host facts, gathered in one round trip: a shell probe and a pure parser.
 */
import {group} from '../shared/match.ts';
import type {Probe} from '../shared/probe.ts';

export interface Facts {
  /** `Debian`, like Ansible's ansible_os_family (from ID_LIKE/ID). */
  readonly osFamily: string;
  /** `debian`, `ubuntu` (os-release ID). */
  readonly distribution: string;
  /** `12`, `22.04` (os-release VERSION_ID). */
  readonly distributionVersion: string;
  /** `bookworm`, `jammy`. */
  readonly distributionRelease: string;
  /** `x86_64`, `aarch64` (uname -m). */
  readonly architecture: string;
  /** Short hostname. */
  readonly hostname: string;
  readonly fqdn: string;
  /** Address of the interface holding the default route, else the first global IPv4. */
  readonly defaultIpv4: {readonly address: string; readonly interface: string} | null;
  /** Every global IPv4 address by interface. */
  readonly ipv4: Readonly<Record<string, readonly string[]>>;
  readonly processorCount: number;
  readonly memTotalMb: number;
  /** `systemd` when PID 1 is systemd. */
  readonly serviceManager: string;
  /** The remote user the connection logged in as. */
  readonly userId: string;
}

// Few processes (6, where `cat`, `grep` and `head` made 11): facts are gathered on every host at every
// run, and on a busy host every process started counts. Files are read with the shell's `read`.
const script = [
  `echo "@os"; while IFS= read -r l || [ -n "$l" ]; do echo "$l"; done < /etc/os-release 2>/dev/null`,
  `echo "@uname"; uname -m`,
  `echo "@hostname"; read -r h < /proc/sys/kernel/hostname 2>/dev/null || h=$(hostname); echo "$h"; hostname -f 2>/dev/null || echo "$h"`,
  `echo "@route"; ip -4 route show default 2>/dev/null`,
  `echo "@addr"; ip -4 -o addr show scope global 2>/dev/null`,
  `echo "@cpu"; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN`,
  `echo "@mem"; while read -r k v _; do [ "$k" = MemTotal: ] && { echo "$k $v kB"; break; }; done < /proc/meminfo`,
  `echo "@init"; read -r c < /proc/1/comm 2>/dev/null; echo "$c"`,
  `echo "@user"; id -un`,
].join('\n');

function sections(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('@') && /^@[a-z]+$/.test(line)) {
      current = [];
      out.set(line.slice(1), current);
    } else if (current && line !== '') {
      current.push(line);
    }
  }
  return out;
}

function unquote(v: string): string {
  return v.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
}

/** Pure parser of the facts probe's output. */
export function parseFacts(stdout: string): Facts {
  const s = sections(stdout);
  const os: Record<string, string> = {};
  for (const line of s.get('os') ?? []) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) os[group(m, 1)] = unquote(group(m, 2));
  }
  const id = os.ID ?? 'unknown';
  const like = (os.ID_LIKE ?? '').split(/\s+/);
  const family = id === 'debian' || like.includes('debian') ? 'Debian' : like.includes('rhel') || like.includes('fedora') || id === 'fedora' ? 'RedHat' : id;
  const ipv4: Record<string, string[]> = {};
  for (const line of s.get('addr') ?? []) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line);
    if (m) (ipv4[group(m, 1)] ??= []).push(group(m, 2));
  }
  const route = (s.get('route') ?? [])[0] ?? '';
  const dev = /\bdev\s+(\S+)/.exec(route)?.[1];
  const src = /\bsrc\s+([\d.]+)/.exec(route)?.[1];
  let defaultIpv4: Facts['defaultIpv4'] = null;
  const routeAddress = src ?? (dev ? ipv4[dev]?.[0] : undefined);
  if (dev && routeAddress) defaultIpv4 = {interface: dev, address: routeAddress};
  else {
    const [iface, addresses] = Object.entries(ipv4)[0] ?? [];
    const address = addresses?.[0];
    if (iface !== undefined && address !== undefined) defaultIpv4 = {interface: iface, address};
  }
  const host = s.get('hostname') ?? [];
  const mem = /(\d+)/.exec((s.get('mem') ?? [])[0] ?? '')?.[1];
  const [shortName = ''] = (host[0] ?? '').split('.');
  return {
    osFamily: family,
    distribution: id,
    distributionVersion: os.VERSION_ID ?? '',
    distributionRelease: os.VERSION_CODENAME ?? '',
    architecture: s.get('uname')?.[0] ?? '',
    hostname: shortName,
    fqdn: host[1] ?? host[0] ?? '',
    defaultIpv4,
    ipv4,
    processorCount: Number((s.get('cpu') ?? ['0'])[0]) || 0,
    memTotalMb: mem ? Math.round(Number(mem) / 1024) : 0,
    serviceManager: s.get('init')?.[0] ?? 'unknown',
    userId: s.get('user')?.[0] ?? '',
  };
}

export const factsProbe: Probe<Facts> = {script, parse: (out) => parseFacts(out.stdout)};

/** Facts for a host that was not gathered (gatherFacts: false). */
export const noFacts: Facts = {
  osFamily: '', distribution: '', distributionVersion: '', distributionRelease: '', architecture: '',
  hostname: '', fqdn: '', defaultIpv4: null, ipv4: {}, processorCount: 0, memTotalMb: 0, serviceManager: '', userId: '',
};
