/**
 * The atomic upload: a POSIX shell script that reads a file's bytes on stdin into a temp file beside
 * the target, checks that every byte arrived, sets owner and mode, validates, and renames it over the
 * target. If the connection drops mid-upload, `cat` sees end of file early, the size check refuses the
 * short file and the trap removes it, so the target is either the old or the new content, never a
 * partial one. Temp files left by a writer killed outright (SIGKILL, power loss) are removed by the
 * next upload of the same file. Used by the engine's write steps (src/core/remote.ts) and the
 * transport's `put` (src/transport/ssh.ts).
 */
import {posix} from 'node:path';
import {q} from './quote.ts';

export interface Upload {
  readonly dest: string;
  /** Bytes that must arrive. */
  readonly size: number;
  /** Octal mode text (`'0644'`); undefined: what a new file gets (0666 minus the umask). */
  readonly mode?: string;
  readonly owner?: string;
  readonly group?: string;
  /** A command checking the temp file (`%s` is its path) before the rename; its output goes to stderr. */
  readonly validate?: string;
}

export function uploadScript(u: Upload): string {
  const prefix = `${posix.dirname(u.dest)}/.${posix.basename(u.dest)}.provision.`;
  const lines = [
    'set -e',
    // `mv` would move the file into a directory of that name.
    `[ ! -d ${q(u.dest)} ] || { printf '%s is a directory\\n' ${q(u.dest)} >&2; exit 1; }`,
    `rm -f ${q(prefix)}??????`,
    `t=$(mktemp ${q(`${prefix}XXXXXX`)})`,
    `trap 'rm -f "$t"' EXIT`,
    `trap 'rm -f "$t"; exit 1' HUP INT TERM PIPE`,
    'cat > "$t"',
    `n=$(wc -c < "$t" | tr -d ' ')`,
    `[ "$n" -eq ${u.size} ] || { printf 'upload cut short: %s of %s bytes arrived; %s left as it was\\n' "$n" ${u.size} ${q(u.dest)} >&2; exit 1; }`,
  ];
  if (u.owner || u.group) lines.push(`chown ${q(`${u.owner ?? ''}${u.group ? `:${u.group}` : ''}`)} "$t"`);
  lines.push(u.mode === undefined ? `chmod "$(printf '%o' $(( 0666 & ~0$(umask) )))" "$t"` : `chmod ${q(u.mode)} "$t"`);
  if (u.validate) lines.push(u.validate.split('%s').join('"$t"') + ' 1>&2');
  lines.push(`mv -f "$t" ${q(u.dest)}`, 'trap - EXIT');
  return lines.join('\n');
}
