/**
 * Plain output, Ansible-like, for logs and pipes: PLAY/TASK headers, a line per host result, unified
 * diffs under --diff, and the PLAY RECAP table.
 */
import {createTwoFilesPatch} from 'diff';
import type {RunEvent} from '../core/events.ts';
import type {Secrets} from '../core/secret.ts';

export interface PlainOptions {
  readonly verbose: number;
  /** Colour with ANSI escapes. */
  readonly color: boolean;
  /** The run's secrets: every event is masked with them before it is shaped. */
  readonly secrets: Pick<Secrets, 'maskValue'>;
}

function header(text: string): string {
  return `${text} ${'*'.repeat(Math.max(3, 72 - text.length))}`;
}

/** A unified diff of a result's before/after. */
export function unifiedDiff(diff: {before: string; after: string; path?: string}): string {
  const path = diff.path ?? 'content';
  return createTwoFilesPatch(`before: ${path}`, `after: ${path}`, diff.before, diff.after, undefined, undefined, {context: 3})
    .split('\n')
    .slice(1) // drop the "Index"/"====" noise line
    .join('\n');
}

/** A result's command output, indented under its line: `  stdout: …` and `  stderr: …` (none when empty). */
function output(event: {readonly stdout?: string; readonly stderr?: string}): string {
  let out = '';
  if (event.stdout) out += `\n  stdout: ${event.stdout.trimEnd().split('\n').join('\n          ')}`;
  if (event.stderr) out += `\n  stderr: ${event.stderr.trimEnd().split('\n').join('\n          ')}`;
  return out;
}

export function plainWriter(write: (text: string) => void, opts: PlainOptions): (event: RunEvent) => void {
  const c = (code: string, s: string): string => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const colour = {ok: '32', changed: '33', failed: '31', unreachable: '31', skipped: '36'} as const;
  let check = false;
  return (raw) => {
    // Mask the values, then shape them: a secret is split by the indenting of a multi-line output,
    // or cut by a trim, once it is formatted.
    const event = opts.secrets.maskValue(raw);
    switch (event.type) {
      case 'start':
        check = event.check;
        if (check) write(c('36', 'CHECK MODE: nothing is changed; "changed" means "would change"') + '\n');
        break;
      case 'play':
        write(`\n${header(`PLAY [${event.name}]`)}\n`);
        if (event.hosts.length === 0) write('skipping: no hosts matched\n');
        break;
      case 'task':
        write(`\n${header(`${event.handler ? 'RUNNING HANDLER' : 'TASK'} [${event.role ? `${event.role} : ` : ''}${event.name}]`)}\n`);
        break;
      case 'result': {
        const s = event.status;
        const pending = event.pending ? ' (rests on an earlier would-change)' : '';
        // A loop: a line per item, as Ansible prints them, before the task's own line.
        for (const it of event.items ?? []) {
          const st = it.status === 'skipped' ? 'skipping' : it.status === 'failed' ? 'failed' : check && it.status === 'changed' ? 'would change' : it.status;
          const itemColour = it.status in colour ? colour[it.status as keyof typeof colour] : '0';
          write(c(itemColour, `${st}: [${event.host}] => (item=${it.item})${opts.verbose > 0 || it.status === 'failed' ? ` ${it.msg}` : ''}`) + '\n');
        }
        let line: string;
        if (s === 'failed') {
          line = `fatal: [${event.host}]: FAILED! => ${event.msg}`;
          if (event.cmd) line += `\n  cmd: ${event.cmd}`;
          if (event.rc !== undefined && event.rc !== null) line += `\n  rc: ${event.rc}`;
          line += output(event);
        } else if (s === 'unreachable') {
          line = `fatal: [${event.host}]: UNREACHABLE! => ${event.msg}`;
        } else {
          const word = s === 'skipped' ? 'skipping' : check && s === 'changed' ? 'would change' : s;
          const why = opts.verbose > 0 && event.msg ? ` (${event.msg})` : '';
          line = `${word}: [${event.host}]${why}${pending}`;
          // -v: what a change's command printed, when the event carries it.
          if (opts.verbose > 0) line += output(event);
        }
        write(c(colour[s], line) + '\n');
        if (event.diff) write(unifiedDiff(event.diff) + '\n');
        break;
      }
      case 'command': {
        // -vvv: each command a task sent, where, how it ended; the command itself indented.
        if (opts.verbose < 3) break;
        const where = event.on === event.host ? '' : ` (on ${event.on})`;
        const body = event.cmd.replace(/\n+$/, '').split('\n').map((l) => `    ${l}`).join('\n');
        write(c('2', `<${event.host}>${where} ${event.phase} rc=${event.rc ?? 'lost'} ${event.duration_ms}ms\n${body}`) + '\n');
        break;
      }
      case 'recap': {
        write(`\n${header('PLAY RECAP')}\n`);
        const recap = Object.entries(event.hosts).sort(([a], [b]) => (a < b ? -1 : 1)); // by host name (unique)
        const w = Math.max(0, ...recap.map(([n]) => n.length));
        for (const [n, k] of recap) {
          const bad = k.failed > 0 || k.unreachable > 0;
          write(`${c(bad ? '31' : k.changed ? '33' : '32', n.padEnd(w))} : ok=${String(k.ok).padEnd(4)} changed=${String(k.changed).padEnd(4)} unreachable=${String(k.unreachable).padEnd(4)} failed=${String(k.failed).padEnd(4)} skipped=${k.skipped}\n`);
        }
        write(`\n${event.interrupted ? 'INTERRUPTED after' : 'finished in'} ${(event.duration_ms / 1000).toFixed(2)} s${event.check ? ' (check mode: nothing was changed)' : ''}\n`);
        break;
      }
    }
  };
}
