/**
 * Executable inventory scripts, read as Ansible's `script` inventory plugin reads them
 * (`plugins/inventory/script.py`): `SCRIPT --list` prints a JSON object with one key per group
 * (`{hosts, vars, children}`, a bare list of hosts, or a mapping without those keys, which Ansible
 * reads as a host named like the group with those variables) and `_meta.hostvars`; without
 * `_meta.hostvars`, `SCRIPT --host HOST` is asked for each host's variables. A script that cannot run,
 * fails, or prints something else than that JSON is a parse error (exit 4) naming the script.
 */
import {execFile} from 'node:child_process';
import {accessSync, constants, closeSync, openSync, readSync, statSync} from 'node:fs';
import {extname} from 'node:path';
import {parseError} from '../core/errors.ts';
import {InventoryRuleError, type InventoryData} from './model.ts';

/** Files never taken for scripts, whatever their mode (a checkout on a FAT or SMB share is all 0777). */
const dataExtensions = ['.yml', '.yaml', '.json', '.ini', '.cfg', '.toml'];

function startsWithShebang(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head.toString('latin1') === '#!';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * How a file is to be read: `script` for an executable file whose extension is not a data format's
 * (Ansible tries its script plugin first on any executable file), `not-executable` for a file starting
 * with `#!` that cannot be run, `data` for everything else (YAML or INI).
 */
export function scriptKind(file: string): 'script' | 'not-executable' | 'data' {
  if (dataExtensions.includes(extname(file).toLowerCase())) return 'data';
  let executable = false;
  try {
    executable = statSync(file).isFile() && (statSync(file).mode & 0o111) !== 0;
    if (executable) accessSync(file, constants.X_OK);
  } catch {
    executable = false;
  }
  if (executable) return 'script';
  return startsWithShebang(file) ? 'not-executable' : 'data';
}

/** The last non-empty line of a script's stderr, for a one-line error. */
function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines[lines.length - 1] ?? '';
  return line.length > 300 ? line.slice(0, 300) + '…' : line;
}

/** Runs `file args…`; its stdout, or a located parse error. */
function runScript(file: string, args: readonly string[]): Promise<string> {
  const shown = args.join(' ');
  return new Promise((res, rej) => {
    execFile(file, [...args], {maxBuffer: 512 << 20, encoding: 'utf8', windowsHide: true}, (err, stdout, stderr) => {
      if (!err) {
        res(stdout);
        return;
      }
      const e = err as NodeJS.ErrnoException & {code?: number | string; signal?: string | null};
      let why: string;
      if (typeof e.code === 'string') {
        why = e.code === 'EACCES' ? 'permission denied' : e.code === 'ENOENT' ? 'no such file or interpreter' : e.code === 'ENOEXEC' ? 'exec format error (no #! line?)' : e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' ? 'output too large' : e.code;
        why = `cannot run it: ${why}`;
      } else if (e.signal) {
        why = `${shown} was killed by ${e.signal}`;
      } else {
        why = `${shown} failed (exit ${e.code ?? '?'})`;
      }
      const said = lastLine(String(stderr ?? ''));
      rej(parseError(said ? `inventory script: ${why}: ${said}` : `inventory script: ${why}`, {file}));
    });
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseJson(text: string, file: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = text.trim() === '' ? 'it printed nothing' : (e as Error).message;
    throw parseError(`inventory script: ${what} is not JSON: ${why}`, {file});
  }
}

/** Runs an inventory script and adds its groups, hosts and variables to `data`. */
export async function loadScriptInventory(file: string, data: InventoryData): Promise<void> {
  const listed = parseJson(await runScript(file, ['--list']), file, 'the output of --list');
  if (!isObject(listed)) throw parseError(`inventory script: --list must print a JSON object, got ${Array.isArray(listed) ? 'an array' : typeof listed}`, {file});
  const guard = <T>(field: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof InventoryRuleError) throw parseError(e.message, {file, field});
      throw e;
    }
  };
  const hosts = new Set<string>();
  let metaVars: Record<string, unknown> | undefined;
  for (const [name, value] of Object.entries(listed)) {
    if (name === '_meta') {
      if (isObject(value) && 'hostvars' in value) {
        if (!isObject(value.hostvars)) throw parseError('hostvars must be an object of host names to variables', {file, field: '_meta.hostvars'});
        metaVars = value.hostvars;
      }
      continue;
    }
    guard(name, () => data.addGroup(name));
    // Ansible's shapes: a list is the hosts; a mapping without hosts/vars/children is one host's variables.
    let group: Record<string, unknown>;
    if (!isObject(value)) group = {hosts: value};
    else if (!('hosts' in value || 'vars' in value || 'children' in value)) group = {hosts: [name], vars: value};
    else group = value;
    if ('hosts' in group) {
      if (!Array.isArray(group.hosts)) throw parseError(`hosts must be a list of host names, got ${JSON.stringify(group.hosts)}`, {file, field: `${name}.hosts`});
      for (const h of group.hosts) {
        if (typeof h !== 'string') throw parseError(`a host name must be a string, got ${JSON.stringify(h)}`, {file, field: `${name}.hosts`});
        guard(`${name}.hosts`, () => data.addHost(h, name));
        hosts.add(h);
      }
    }
    if ('vars' in group) {
      if (!isObject(group.vars)) throw parseError(`vars must be an object, got ${JSON.stringify(group.vars)}`, {file, field: `${name}.vars`});
      for (const [k, v] of Object.entries(group.vars)) guard(`${name}.vars.${k}`, () => data.setGroupVar(name, k, v));
    }
    if ('children' in group) {
      if (!Array.isArray(group.children)) throw parseError(`children must be a list of group names, got ${JSON.stringify(group.children)}`, {file, field: `${name}.children`});
      for (const child of group.children) {
        if (typeof child !== 'string') throw parseError(`a group name must be a string, got ${JSON.stringify(child)}`, {file, field: `${name}.children`});
        guard(`${name}.children`, () => {
          data.addGroup(child);
          data.addChild(name, child);
        });
      }
    }
  }
  for (const host of hosts) {
    let vars: unknown;
    if (metaVars !== undefined) {
      vars = Object.hasOwn(metaVars, host) ? metaVars[host] : {};
    } else {
      const out = await runScript(file, ['--host', host]);
      vars = out.trim() === '' ? {} : parseJson(out, file, `the output of --host ${host}`);
    }
    if (!isObject(vars)) throw parseError(`the variables of host ${host} must be an object, got ${JSON.stringify(vars)}`, {file, field: metaVars ? `_meta.hostvars.${host}` : `--host ${host}`});
    for (const [k, v] of Object.entries(vars)) data.setHostVar(host, k, v);
  }
}
