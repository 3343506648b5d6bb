/**
 * The lab's apt cache: our own apt-cacher-ng instance on the bridge address, with its own config,
 * cache and log directories, remapping Debian requests to the mirror the machine itself uses (the
 * stock backends may not resolve here, and apt in the hosts then hangs; see LAB.md).
 */
import {existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {LabPaths} from './config.ts';
import {spawnDetached, waitFor} from './run.ts';
import {daemonOf, isAlive, type DaemonState} from './state.ts';
import {tcpOpen} from './net-probe.ts';

/** The Debian mirrors the hosts use (through the cache). */
export interface Mirrors {
  /** e.g. http://deb.debian.org/debian */
  readonly debian: string;
  /** e.g. http://deb.debian.org/debian-security */
  readonly security: string;
}

interface SourceEntry {
  readonly uri: string;
  readonly suites: readonly string[];
}

/** One-line `deb [opts] URI SUITE COMPONENTS...` entries. */
export function parseOneLineSources(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line.startsWith('deb ')) continue;
    const rest = line.slice(4).replace(/\[[^\]]*\]/, '').trim().split(/\s+/);
    if (rest.length >= 2 && rest[0] && rest[1]) out.push({uri: rest[0], suites: [rest[1]]});
  }
  return out;
}

/** deb822 `.sources` stanzas. */
export function parseDeb822Sources(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      if (/^\s/.test(line) && last) {
        fields.set(last, `${fields.get(last)} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m && m[1] && m[2] !== undefined) {
        last = m[1].toLowerCase();
        fields.set(last, m[2].trim());
      }
    }
    if (fields.get('enabled') === 'no') continue;
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb')) continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) out.push({uri, suites});
  }
  return out;
}

/** Every apt source entry of this machine (both formats). */
export function machineSources(etcApt = '/etc/apt'): SourceEntry[] {
  const entries: SourceEntry[] = [];
  const list = join(etcApt, 'sources.list');
  if (existsSync(list)) entries.push(...parseOneLineSources(readFileSync(list, 'utf8')));
  const dir = join(etcApt, 'sources.list.d');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const p = join(dir, f);
      if (f.endsWith('.list')) entries.push(...parseOneLineSources(readFileSync(p, 'utf8')));
      else if (f.endsWith('.sources')) entries.push(...parseDeb822Sources(readFileSync(p, 'utf8')));
    }
  }
  return entries;
}

const trimSlash = (u: string): string => u.replace(/\/+$/, '');

/** The machine's Debian mirrors for `suite`, or deb.debian.org when the machine uses none. */
export function pickMirrors(entries: readonly SourceEntry[], suite: string): Mirrors {
  const debian = entries.find((e) => e.suites.includes(suite) && /^https?:/.test(e.uri));
  const security = entries.find((e) => e.suites.some((s) => s === `${suite}-security` || s === `${suite}/updates`) && /^https?:/.test(e.uri));
  return {
    debian: trimSlash(debian?.uri ?? 'http://deb.debian.org/debian'),
    security: trimSlash(security?.uri ?? 'http://deb.debian.org/debian-security'),
  };
}

/** The URL the hosts write in sources.list: always plain http (the cache fetches https backends itself). */
export const clientUrl = (u: string): string => u.replace(/^https:/, 'http:');
const hostPath = (u: string): string => u.replace(/^https?:\/\//, '');

/** apt-cacher-ng's config for the lab. */
export function acngConfig(paths: LabPaths, bindIp: string, port: number, mirrors: Mirrors): string {
  return [
    '# Written by `provision lab up`: the lab\'s own apt-cacher-ng instance.',
    `CacheDir: ${paths.aptCache}`,
    `LogDir: ${join(paths.acng, 'log')}`,
    'SupportDir: /usr/lib/apt-cacher-ng',
    `Port: ${port}`,
    `BindAddress: ${bindIp}`,
    `PidFile: ${join(paths.acng, 'apt-cacher-ng.pid')}`,
    `SocketPath: ${join(paths.acng, 'socket')}`,
    'ForeGround: 1',
    `Remap-debrep: file:deb_mirror*.gz /debian ${hostPath(mirrors.debian)} ; ${mirrors.debian}/`,
    `Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security /debian-security ${hostPath(mirrors.security)} ; ${mirrors.security}/`,
    'ReportPage: acng-report.html',
    'ExThreshold: 4',
    'FollowIndexFileRemoval: 1',
    'DlMaxRetries: 3',
    'NetworkTimeout: 30',
    '',
  ].join('\n');
}

/** Start our apt-cacher-ng unless the recorded one still runs. Returns its record. */
export async function ensureAptCacher(
  paths: LabPaths,
  bindIp: string,
  port: number,
  mirrors: Mirrors,
  current: DaemonState | undefined,
): Promise<{daemon: DaemonState; started: boolean}> {
  if (current && (await isAlive(current)) && (await tcpOpen(bindIp, port, 1000))) return {daemon: current, started: false};
  for (const d of [paths.aptCache, paths.acng, join(paths.acng, 'log'), paths.logs]) mkdirSync(d, {recursive: true});
  writeFileSync(join(paths.acng, 'acng.conf'), acngConfig(paths, bindIp, port, mirrors));
  if (await tcpOpen(bindIp, port, 500)) throw new Error(`port ${bindIp}:${port} is taken by another program (set lab_apt_proxy_port)`);
  const pid = spawnDetached(['apt-cacher-ng', '-c', paths.acng], join(paths.logs, 'apt-cacher-ng.log'));
  const daemon = await daemonOf(pid);
  const up = await waitFor(async () => (await isAlive(daemon)) && (await tcpOpen(bindIp, port, 500)), 15_000, 100);
  if (!up) throw new Error(`apt-cacher-ng did not start on ${bindIp}:${port}; see ${join(paths.logs, 'apt-cacher-ng.log')}`);
  return {daemon, started: true};
}
