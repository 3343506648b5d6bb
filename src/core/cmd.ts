/**
 * Commands are typed values quoted in exactly one place (`q`, from shared/quote.ts), never concatenated text.
 * `argv` words may be secrets: the real command gets the value, every display gets `***`.
 */
import {q} from '../shared/quote.ts';
import {Secret} from './secret.ts';

export {q};

export type Word = string | Secret;

/** A command: an argv vector, or a shell snippet the user wrote (the `shell` module). */
export type Cmd = {readonly argv: readonly Word[]} | {readonly shell: string};

/** The command as the remote shell must run it (secrets revealed). */
export function render(cmd: Cmd): string {
  if ('shell' in cmd) return cmd.shell;
  return cmd.argv.map((w) => q(typeof w === 'string' ? w : w.reveal())).join(' ');
}

/** The command as shown to people (secrets masked). */
export function display(cmd: Cmd): string {
  if ('shell' in cmd) return cmd.shell;
  return cmd.argv.map((w) => (typeof w === 'string' ? q(w) : '***')).join(' ');
}

/** Shorthand: `argv('systemctl', 'reload', 'nginx')`. */
export function argv(...words: Word[]): Cmd {
  return {argv: words};
}

/** Wrap a shell string so it runs as `user` through `sudo -n` (no password prompt, ever; with a password: become.ts). */
export function becomeWrap(command: string, user: string): string {
  return `sudo -n -H -u ${q(user)} -- sh -c ${q(command)}`;
}
