/**
 * How plans and probes become remote commands: the probe batch (every pending probe in one round
 * trip), privilege escalation, and the atomic write (temp file beside the target, validate, rename).
 */
import {randomBytes} from 'node:crypto';
import {posix} from 'node:path';
import {becomeWrap, display, q, render} from './cmd.ts';
import type {ProbeOutput, Step} from './types.ts';
import type {ExecResult, Transport} from '../transport/types.ts';

/** Who runs a command: the login user, or `sudo -n -u user`. */
export type Identity = {readonly become: false} | {readonly become: true; readonly user: string};

/** Run a shell script on the host as `who`, passing the script on stdin (no argv limits, no quoting). */
export async function runScript(t: Transport, who: Identity, script: string): Promise<ExecResult> {
  const sh = who.become ? `sudo -n -H -u ${q(who.user)} -- sh -s` : 'sh -s';
  return t.exec(sh, {stdin: script});
}

/** Run one command string as `who`, with optional stdin. */
export async function runCommand(t: Transport, who: Identity, command: string, stdin?: Buffer | string): Promise<ExecResult> {
  return t.exec(who.become ? becomeWrap(command, who.user) : command, stdin === undefined ? {} : {stdin});
}

/** Every probe in one script; each probe's stdout is fenced by a random marker with its exit status. */
export function batchScript(scripts: readonly string[], marker: string): string {
  return scripts
    .map((s, i) => `echo '${marker} ${i}'\n(\n${s}\n) </dev/null 2>/dev/null\n__rc=$?\necho\necho "${marker} end ${i} $__rc"`)
    .join('\n') + '\n';
}

export function parseBatch(stdout: string, count: number, marker: string): ProbeOutput[] {
  const out: ProbeOutput[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const begin = `${marker} ${i}\n`;
    const start = stdout.indexOf(begin, pos);
    if (start < 0) throw new Error(`probe batch output is missing probe ${i}`);
    const endRe = new RegExp(`\\n${marker} end ${i} (\\d+)\\n`, 'g');
    endRe.lastIndex = start + begin.length - 1;
    const m = endRe.exec(stdout);
    if (!m) throw new Error(`probe batch output is missing the end of probe ${i}`);
    out.push({stdout: stdout.slice(start + begin.length, m.index), code: Number(m[1])});
    pos = m.index + m[0].length - 1;
  }
  return out;
}

/** Run many probes in one round trip. */
export async function runProbes(t: Transport, who: Identity, scripts: readonly string[]): Promise<ProbeOutput[]> {
  if (scripts.length === 0) return [];
  const marker = `__provision_${randomBytes(6).toString('hex')}__`;
  const r = await runScript(t, who, batchScript(scripts, marker));
  return parseBatch(r.stdout, scripts.length, marker);
}

/** The shell that writes stdin to a temp file beside `dest`, validates it and renames it over `dest`. */
export function writeScript(step: Extract<Step, {kind: 'write'}>): string {
  const dir = posix.dirname(step.dest);
  const lines = [
    'set -e',
    `t=$(mktemp ${q(`${dir}/.${posix.basename(step.dest)}.provision.XXXXXX`)})`,
    `trap 'rm -f "$t"' EXIT`,
    'cat > "$t"',
  ];
  if (step.owner || step.group) lines.push(`chown ${q(`${step.owner ?? ''}${step.group ? `:${step.group}` : ''}`)} "$t"`);
  lines.push(`chmod ${q(step.mode ?? '0644')} "$t"`);
  if (step.validate) lines.push(step.validate.split('%s').join('"$t"') + ' 1>&2');
  lines.push(`mv -f "$t" ${q(step.dest)}`, 'trap - EXIT');
  return lines.join('\n');
}

/** The command a step runs (for failure messages). Secrets are masked. */
export function describeStep(step: Step): string {
  if (step.kind === 'exec') return display(step.cmd);
  return `write ${step.dest}${step.validate ? ` (validate: ${step.validate})` : ''}`;
}

/** Apply one step. Resolves with the command's result; the caller decides what a failure means. */
export async function applyStep(t: Transport, who: Identity, step: Step): Promise<ExecResult> {
  if (step.kind === 'exec') return runCommand(t, who, render(step.cmd));
  return runCommand(t, who, `sh -c ${q(writeScript(step))}`, step.content);
}
