/**
 * Host entries as Ansible reads them: an optional `:port` suffix (`parse_address`) and `[a:b(:step)]`
 * ranges, numeric (zero-padded when the start is) or alphabetic (`expand_hostname_range`).
 */
import {group} from '../shared/match.ts';
import {InventoryRuleError} from './model.ts';

/** The hosts one inventory entry stands for, and the port it gave them, if any. */
export interface ExpandedEntry {
  readonly hosts: readonly string[];
  readonly port?: number;
}

const range = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const label = String.raw`(?:[\p{L}\p{N}_]|${range})(?:[\p{L}\p{N}_-]|${range})*(?<![_-])`;
const hostnameRe = new RegExp(String.raw`^${label}(?:\.${label})*$`, 'iu');
const ipv4Part = String.raw`(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|\[[0-9]+:[0-9]+(?::[0-9]+)?\])`;
const ipv4Re = new RegExp(String.raw`^(?:${ipv4Part}\.){3}${ipv4Part}$`);
/** Loose IPv6 check (hex groups, colons, dots, ranges): enough to tell an address from a pattern. */
const ipv6Re = /^(?:(?=.*::)|(?=[^:]*(?::[^:]*){7}$))[0-9a-f:.[\]]+$/i;
const bracketedHostPort = /^\[(.+)\]:([0-9]+)$/;
const hostPort = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/;

function isAddress(s: string): boolean {
  return ipv4Re.test(s) || ipv6Re.test(s) || hostnameRe.test(s);
}

/** Ansible's `parse_address`: a host (name, IPv4, IPv6, ranges allowed) and optional port, or undefined. */
export function parseAddress(entry: string): {host: string; port?: number} | undefined {
  const m = bracketedHostPort.exec(entry) ?? hostPort.exec(entry);
  const host = m ? group(m, 1) : entry;
  if (!isAddress(host)) return undefined;
  return m ? {host, port: Number.parseInt(group(m, 2), 10)} : {host};
}

/** Splits `host:port` / `[v6]:port`; anything that is not an address is kept whole, without port. */
export function splitPort(entry: string): {host: string; port?: number} {
  return parseAddress(entry) ?? {host: entry};
}

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Most hosts one entry may expand to: `web[0:99999999]` is a typo, not a data centre (and would hang the run). */
export const MAX_RANGE_HOSTS = 100_000;

/** Expands every `[begin:end(:step)]` in a host name, left to right (at most `MAX_RANGE_HOSTS` names). */
export function expandRanges(name: string): string[] {
  return expand(name, 1);
}

function expand(name: string, outer: number): string[] {
  const open = name.indexOf('[');
  if (open < 0) return [name];
  const close = name.indexOf(']', open);
  if (close < 0) throw new InventoryRuleError(`unclosed host range in ${name}`);
  const head = name.slice(0, open);
  const tail = name.slice(close + 1);
  const bounds = name.slice(open + 1, close).split(':');
  if (bounds.length !== 2 && bounds.length !== 3) {
    throw new InventoryRuleError(`bad host range ${name}: must be begin:end or begin:end:step`);
  }
  const [begText = '', end = '', stepText = '1'] = bounds;
  const beg = begText === '' ? '0' : begText;
  if (end === '') throw new InventoryRuleError(`bad host range ${name}: no end value`);
  if (!/^[0-9]+$/.test(stepText) || Number(stepText) === 0) {
    throw new InventoryRuleError(`bad host range ${name}: step must be a positive integer`);
  }
  const step = Number(stepText);

  let seq: string[];
  if (beg.length === 1 && end.length === 1 && letters.includes(beg) && letters.includes(end)) {
    const i = letters.indexOf(beg);
    const j = letters.indexOf(end);
    if (i > j) throw new InventoryRuleError(`bad host range ${name}: begin must be <= end`);
    seq = [];
    for (let k = i; k <= j; k += step) seq.push(letters.charAt(k));
  } else {
    if (!/^[0-9]+$/.test(beg) || !/^[0-9]+$/.test(end)) {
      throw new InventoryRuleError(`bad host range ${name}: begin and end must be numbers or single letters`);
    }
    const pad = beg.length > 1 && beg.startsWith('0') ? beg.length : 0;
    if (pad && end.length !== pad) {
      throw new InventoryRuleError(`bad host range ${name}: begin and end must have the same width`);
    }
    const b = Number.parseInt(beg, 10);
    const e = Number.parseInt(end, 10);
    if (b > e) throw new InventoryRuleError(`bad host range ${name}: begin must be <= end`);
    if (outer * (Math.floor((e - b) / step) + 1) > MAX_RANGE_HOSTS) {
      throw new InventoryRuleError(`host range ${name} expands to more than ${MAX_RANGE_HOSTS} hosts`);
    }
    seq = [];
    for (let k = b; k <= e; k += step) seq.push(pad ? String(k).padStart(pad, '0') : String(k));
  }
  if (outer * seq.length > MAX_RANGE_HOSTS) throw new InventoryRuleError(`host range ${name} expands to more than ${MAX_RANGE_HOSTS} hosts`);
  return seq.flatMap((part) => expand(head + part + tail, outer * seq.length));
}

/** One inventory host entry (`web[01:03]`, `db:2222`) → its hosts and port. */
export function expandHostEntry(entry: string): ExpandedEntry {
  const {host, port} = splitPort(entry);
  const hosts = expandRanges(host);
  return port === undefined ? {hosts} : {hosts, port};
}
