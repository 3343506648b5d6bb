/**
 * `getUrl`: a file downloaded FROM THE HOST with curl, pinned by its sha256.
 *
 * The probe reads `dest` with the file probe of `src/facts/file.ts` (kind, attributes, sha256; the
 * wanted sha256 goes with it, so a merged probe reads nothing back for a file already right). The
 * checksum is required: it is what makes the task idempotent without touching the network (a
 * converged host never downloads) and what makes a download safe.
 *
 * Plan: `dest` has the checksum → nothing, or only chown/chmod for drifted `owner`/`group`/`mode`.
 * Missing or different → one step, `sh -s` fed a POSIX script: curl downloads to a temp file beside
 * `dest` (same filesystem), the script checks its sha256, sets `mode`/`owner`/`group` on it, and only
 * then renames it over `dest` (atomic). A checksum mismatch (or a failed download) removes the temp
 * file, leaves `dest` untouched and fails naming both checksums.
 *
 * Check mode: the probe only (harmless); `changed` with "would download …" / "would replace …" when
 * the file is missing or different. Nothing is downloaded, so a wrong checksum shows only in a real run.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';
import {fileProbe, formatMode, parseFileState, type FileState} from '../facts/file.ts';
import {attrSteps} from './files.ts';

export interface GetUrlArgs {
  /** `http://`, `https://` or `ftp://` URL, as the host resolves it. Redirects are followed. */
  readonly url: string;
  /** Absolute path of the file on the host. Its directory must exist. */
  readonly dest: string;
  /** The file's checksum, `sha256:<64 hex digits>`. Required: the download is verified against it. */
  readonly checksum: `sha256:${string}`;
  /** Octal mode, e.g. '0755'. Unset: a new file gets 0644, a replaced one keeps its mode. */
  readonly mode?: string;
  /** Owner user name. Unset: leave as is (a new file belongs to the connecting or become user). */
  readonly owner?: string;
  /** Owner group name. Unset: leave as is. */
  readonly group?: string;
}

const getUrlArgs = z.strictObject({
  url: z.string(),
  dest: z.string(),
  checksum: z.templateLiteral(['sha256:', z.string()]),
  mode: z.optional(z.string()),
  owner: z.optional(z.string()),
  group: z.optional(z.string()),
});
const getUrlInSync: Exact<z.infer<typeof getUrlArgs>, GetUrlArgs> = true;

/** The hex digest of `sha256:<hex>`, lower case; undefined when malformed. */
export function sha256Of(checksum: string): string | undefined {
  return /^sha256:([0-9a-fA-F]{64})$/.exec(checksum)?.[1]?.toLowerCase();
}

const modeOf = (mode: string): number | undefined => (/^[0-7]{3,4}$/.test(mode) ? parseInt(mode, 8) : undefined);

function problem(a: GetUrlArgs): string | undefined {
  if (!/^(https?|ftp):\/\/\S+$/.test(a.url)) return `url must be an http://, https:// or ftp:// URL without spaces, got '${a.url}'`;
  if (!a.dest.startsWith('/') || a.dest.endsWith('/')) return `dest must be an absolute path to a file, got '${a.dest}'`;
  if (sha256Of(a.checksum) === undefined) return `checksum must be 'sha256:' and 64 hex digits, got '${a.checksum}'`;
  if (a.mode !== undefined && modeOf(a.mode) === undefined) return `bad mode '${a.mode}': expected octal like '0644'`;
  return undefined;
}

/**
 * The download script (POSIX sh, run with `sh -s`): temp file beside `dest`, curl, sha256 check,
 * attributes, rename. Prints `sha256:<hex>` of what it installed; fails with the reason on stderr.
 */
export function downloadScript(a: GetUrlArgs): string {
  const want = sha256Of(a.checksum) ?? '';
  const d = q(a.dest);
  const own = [a.owner ?? '', a.group === undefined ? '' : `:${a.group}`].join('');
  const mode = a.mode === undefined ? undefined : formatMode(modeOf(a.mode) ?? 0o644);
  return [
    `[ -d "$(dirname -- ${d})" ] || { echo ${q(`the directory of ${a.dest} does not exist`)} >&2; exit 1; }`,
    `__t=$(mktemp "$(dirname -- ${d})/.provision-geturl.XXXXXX") || exit 1`,
    'trap \'rm -f "$__t"\' EXIT',
    `curl -fsSL --proto '=http,https,ftp' -o "$__t" ${q(a.url)} || { echo ${q(`download of ${a.url} failed; ${a.dest} left untouched`)} >&2; exit 1; }`,
    '__got=$(sha256sum -- "$__t") || exit 1',
    '__got=${__got%% *}',
    `[ "$__got" = ${q(want)} ] || { echo ${q(`checksum mismatch for ${a.url}: expected sha256:${want}, got `)}"sha256:$__got"${q(`; ${a.dest} left untouched`)} >&2; exit 1; }`,
    // mktemp makes 0600: a new file gets 0644 (or `mode`), a replaced one keeps its mode (unless `mode`).
    mode !== undefined ? `chmod ${mode} "$__t"` : `if [ -e ${d} ]; then chmod --reference=${d} "$__t"; else chmod 0644 "$__t"; fi`,
    ...(own ? [`chown ${q(own)} "$__t"`] : []),
    `mv -f -- "$__t" ${d}`,
    'trap - EXIT',
    'echo "sha256:$__got"',
  ].join('\n');
}

export const getUrlModule: ModuleDef<GetUrlArgs, FileState> = {
  name: 'get_url',
  schema: getUrlArgs,
  describe: (a) => a.dest,
  probe: (a) => ({...fileProbe(a.dest, 'small', sha256Of(a.checksum)), parse: (out) => parseFileState(out.stdout)}),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const want = sha256Of(a.checksum) ?? '';
    if (have.kind === 'directory' || have.kind === 'link' || have.kind === 'other') {
      return {steps: [], fail: `dest ${a.dest} is a ${have.kind === 'link' ? 'symbolic link' : have.kind === 'other' ? 'special file' : have.kind}, not a regular file`};
    }
    if (have.kind === 'file' && have.sha256 === want) {
      const {steps, changes} = attrSteps(a.dest, have, {...(a.mode === undefined ? {} : {mode: a.mode}), ...(a.owner === undefined ? {} : {owner: a.owner}), ...(a.group === undefined ? {} : {group: a.group})});
      return steps.length === 0
        ? {steps, reason: `already sha256:${want.slice(0, 12)}…, ${formatMode(have.mode)} ${have.owner}:${have.group}`}
        : {steps, reason: changes.join(', ')};
    }
    const step: Step = {kind: 'exec', cmd: argv('sh', '-s'), stdin: Buffer.from(downloadScript(a)), note: (r) => /sha256:[0-9a-f]{12}/.exec(r.stdout)?.[0]};
    if (have.kind === 'missing') return {steps: [step], reason: `download ${a.url} to ${a.dest}`};
    return {
      steps: [step],
      reason: `replace ${a.dest} (sha256:${have.sha256.slice(0, 12)}… → sha256:${want.slice(0, 12)}…) from ${a.url}`,
      diff: {path: a.dest, before: `(${have.size} bytes, sha256:${have.sha256})\n`, after: `(sha256:${want}, from ${a.url})\n`},
    };
  },
};

/** Download a file on the host, verified against its sha256; nothing when `dest` already has it. */
export const getUrl = (args: ArgsOf<GetUrlArgs>, options?: TaskOptions): Task => makeTask(getUrlModule, args, options);

void getUrlInSync;
