/**
 * The two error classes of `provision` (see STYLE.md): a user mistake, printed as one clear line with
 * an Ansible exit code, and everything else, an internal error reported with a bug hint. Both are
 * handled once, in `cli/`.
 */

/** Ansible's exit codes, which CI scripts read (CONTRACTS.md). */
export const ExitCode = {
  ok: 0,
  error: 1,
  hostFailed: 2,
  unreachable: 4,
  parseError: 4,
  badOptions: 5,
  interrupted: 99,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Where in a user's file a mistake is. */
export interface SourceLocation {
  readonly file: string;
  /** 1-based line, when known. */
  readonly line?: number;
  /** The field (key path) at fault, e.g. `all.children.web.hosts`. */
  readonly field?: string;
}

/** A mistake of the user's (bad inventory, bad option, missing variable). Printed as one line, never a stack. */
export class UserError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly where?: SourceLocation;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.error, where?: SourceLocation) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
    this.where = where;
  }
  /**
   * `file:line: field: message`, the one line the CLI prints (line breaks in a name or value escaped).
   * `mask` hides secrets in the parts before they are escaped (an escaped secret no longer matches).
   */
  oneLine(mask: (s: string) => string = (s) => s): string {
    const flat = (s: string): string => mask(s).replace(/[\r\n\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
    if (!this.where) return flat(this.message);
    const {file, line, field} = this.where;
    const at = line === undefined ? flat(file) : `${flat(file)}:${line}`;
    return field ? `${at}: ${flat(field)}: ${flat(this.message)}` : `${at}: ${flat(this.message)}`;
  }
}

/** Several mistakes found at once, each already one line (`file:line: …`): printed one per line. */
export class UserErrors extends UserError {
  readonly lines: readonly string[];
  constructor(lines: readonly string[], exitCode: ExitCodeValue = ExitCode.parseError) {
    super(lines.join('\n'), exitCode);
    this.lines = lines;
  }
}

/** A parse error in a user's file: exit code 4, as Ansible. */
export function parseError(message: string, where: SourceLocation): UserError {
  return new UserError(message, ExitCode.parseError, where);
}

/** A bad command-line option: exit code 5. */
export function badOption(message: string): UserError {
  return new UserError(message, ExitCode.badOptions);
}
