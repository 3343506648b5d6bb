/**
 * `fetch`: copy a file of the host to the controller (Ansible's fetch). The probe reads the host's
 * file (its sha256, and its content when small, for the diff); what the controller already has is
 * read when the task is bound for the host, so the plan stays pure: equal sha256s, nothing to do;
 * otherwise one fetch step, which the engine runs: the bytes read from the host are checked against
 * the probed sha256 and written on the controller to a temp file renamed over the destination.
 *
 * Where it lands, as Ansible: `dest/<host>/<src>` (e.g. backups/web1/etc/nginx/nginx.conf), or with
 * `flat` exactly `dest` (`dest` ending in `/`: that folder, the file's own name). A relative `dest` is
 * taken from the current directory (Ansible: the playbook's folder).
 */
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {basename, join, resolve} from 'node:path';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions} from '../core/types.ts';
import {fileProbe, maxDiffBytes, parseFileState, type FileState} from '../facts/file.ts';

export interface FetchArgs {
  /** The file on the host (absolute path). */
  readonly src: string;
  /** Where to put it on the controller: a folder (files land in `dest/<host>/<src>`), or with `flat` the file itself. */
  readonly dest: string;
  /** `dest` is the file (or, ending in `/`, the folder it goes in), not a tree per host. Default false. */
  readonly flat?: boolean;
  /** Fail when `src` does not exist on the host (default true, as Ansible); false: nothing is fetched, ok. */
  readonly failOnMissing?: boolean;
}

const fetchArgs = z.strictObject({
  src: z.string().check(z.regex(/^\//, 'an absolute path')),
  dest: z.string().check(z.minLength(1)),
  flat: z.optional(z.boolean()),
  failOnMissing: z.optional(z.boolean()),
});
const fetchInSync: Exact<z.infer<typeof fetchArgs>, FetchArgs> = true;

/** What the plan needs: the paths, and what the controller has at `local` now. */
export interface FetchPlanArgs {
  readonly src: string;
  /** The absolute path on the controller. */
  readonly local: string;
  readonly failOnMissing: boolean;
  /** The controller's file now: its sha256 and (small, text) content; undefined: none. */
  readonly have?: {readonly sha256: string; readonly text?: string};
}

/** The controller path a host's file lands in (see the file's comment). */
export function fetchDestination(a: Pick<FetchArgs, 'src' | 'dest' | 'flat'>, host: string): string {
  const dest = resolve(a.dest);
  if (a.flat) return a.dest.endsWith('/') ? join(dest, basename(a.src)) : dest;
  return join(dest, host, a.src);
}

/** The controller's file at `path`: its sha256 and, small text only, its content; undefined: absent. */
function controllerFile(path: string): FetchPlanArgs['have'] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return isText(bytes) ? {sha256, text: bytes.toString('utf8')} : {sha256};
}

const isText = (b: Buffer): boolean => b.length <= maxDiffBytes && !b.includes(0);

export const fetchModule: ModuleDef<FetchPlanArgs, FileState> = {
  name: 'fetch',
  describe: (a) => a.src,
  probe: (a) => ({...fileProbe(a.src, 'small', a.have?.sha256), parse: (out) => parseFileState(out.stdout)}),
  plan(have, a): Plan {
    if (have.kind === 'missing') {
      return a.failOnMissing ? {steps: [], fail: `${a.src} does not exist on the host`} : {steps: [], reason: `${a.src} does not exist on the host: nothing fetched`};
    }
    if (have.kind !== 'file') return {steps: [], fail: `${a.src} is ${have.kind === 'link' ? `a symbolic link (to ${have.target}): fetch its target` : `a ${have.kind === 'directory' ? 'directory' : 'special file'}`}, not a regular file`};
    if (a.have?.sha256 === have.sha256) return {steps: [], reason: `${a.local} already has it (sha256 ${have.sha256.slice(0, 12)}…)`};
    const after = have.content && isText(have.content) ? have.content.toString('utf8') : undefined;
    const before = a.have === undefined ? '' : a.have.text;
    return {
      steps: [{kind: 'fetch', src: a.src, dest: a.local, sha256: have.sha256}],
      ...(after !== undefined && before !== undefined ? {diff: {path: a.local, before, after}} : {}),
      reason: `${a.have ? 'update' : 'fetch'} ${a.local} (${have.size} bytes from ${a.src})`,
    };
  },
};

/** Copy a file of the host to the controller, checksummed (Ansible's fetch). */
export function fetch(args: ArgsOf<FetchArgs>, options?: TaskOptions): Task {
  return makeTask<FetchArgs, FetchPlanArgs, FileState>({
    module: fetchModule,
    schema: fetchArgs,
    describe: (a) => a.src,
    toArgs: (a, ctx) => {
      const local = fetchDestination(a, ctx.host);
      const have = controllerFile(local);
      return {src: a.src, local, failOnMissing: a.failOnMissing ?? true, ...(have ? {have} : {})};
    },
  }, args, options);
}

void fetchInSync;
