/**
 * Python's `fnmatch` (`*`, `?`, `[set]`, `[!set]`), which Ansible uses for host patterns and for
 * `--start-at-task`. Case-sensitive, as `fnmatch.fnmatch` on POSIX.
 */

/**
 * A `[...]` set as Python's fnmatch reads it (Ansible's patterns): `!` negates, `x-y` is a range, and
 * a range whose ends are out of order (`[a-:]`) is dropped, as fnmatch drops it; a set left empty
 * matches nothing (negated: any character).
 */
function charClass(raw: string): string {
  const negate = raw.startsWith('!');
  const chars = negate ? raw.slice(1) : raw;
  const esc = (c: string): string => (/[\\\]^[-]/.test(c) ? `\\${c}` : c);
  let body = '';
  for (let k = 0; k < chars.length; k++) {
    const c = chars.charAt(k);
    if (k + 2 < chars.length && chars[k + 1] === '-') {
      const last = chars.charAt(k + 2);
      if (c <= last) body += `${esc(c)}-${esc(last)}`;
      k += 2;
    } else body += esc(c);
  }
  if (body === '') return negate ? '.' : '(?!)';
  return negate ? `[^${body}]` : `[${body}]`;
}

/** Python's `fnmatch.translate`, anchored both ends. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      let j = i + 1;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) {
        out += '\\[';
      } else {
        out += charClass(glob.slice(i + 1, j));
        i = j;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^(?:${out})$`, 's');
}

/**
 * Ansible's `--start-at-task` test (`PlayIterator`): the task's name, or `role : name` for a role's
 * task, equal to `pattern` or matching it as an fnmatch glob. `name` is the task's name as shown
 * (for a task without one, its module and what it acts on).
 */
export function matchesTaskName(pattern: string, name: string, role: string | null): boolean {
  const re = globToRegExp(pattern);
  return [name, ...(role === null ? [] : [`${role} : ${name}`])].some((n) => n === pattern || re.test(n));
}
