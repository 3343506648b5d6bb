/**
 * `uri`: an HTTP request made FROM THE HOST with curl, checked against the wanted status (and,
 * optionally, a string the body must contain): a health gate ("the app answers 200 on /health") or a
 * call to an API ("POST to the reload endpoint").
 *
 * The probe only asks whether the host has curl (read-only and cheap: a probe runs in the play's
 * batch and must never wait on the network). The request itself is the plan's one step, `sh -s` fed a
 * POSIX script: curl writes the body to a temp file, the script compares the status with `status` and
 * greps the body for `bodyContains`, and fails naming what did not match (`GET http://… answered 503,
 * expected 200`).
 *
 * Changed or not: GET and HEAD read, so the task is `ok` (it sets a `changedWhen` that says so; a
 * playbook's own `changedWhen` wins); POST, PUT, PATCH and DELETE are a change (`changed`, handlers
 * notified).
 *
 * Check mode: no request is sent (the engine sends no step under --check; Ansible's uri does not
 * support check mode at all and is skipped). A GET/HEAD is `ok` with "would GET …", a POST/PUT/…
 * `changed` with "would POST …". Give the task `checkMode: false` to make a GET health gate really run
 * under --check.
 */
import {argv, q} from '../core/cmd.ts';
import {Secret} from '../core/secret.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Task, TaskOptions, TaskResult} from '../core/types.ts';

export type UriMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface UriArgs {
  /** `http://` or `https://` URL, as the host resolves it (`http://127.0.0.1:8080/health`). */
  readonly url: string;
  /** The HTTP method. Default `GET`. GET and HEAD are reads (`ok`); the others are changes. */
  readonly method?: UriMethod;
  /** The request body, sent as is (`curl --data-raw`; no `@file` interpretation). A Secret is never shown. */
  readonly body?: string | Secret;
  /** Request headers, name → value (`{'Content-Type': 'application/json'}`); a Secret value is never shown. */
  readonly headers?: Readonly<Record<string, string | Secret>>;
  /** The status (or statuses) that count as success. Default `[200]`. Redirects are not followed. */
  readonly status?: number | readonly number[];
  /** Fail unless the response body contains this string (plain text, not a regex). Not with HEAD. */
  readonly bodyContains?: string;
  /** Seconds the whole request may take (`curl --max-time`). Default 30 (Ansible's). */
  readonly timeout?: number;
  /** `false`: accept any TLS certificate (`curl -k`). Default true. */
  readonly validateCerts?: boolean;
}

const word = z.union([z.string(), z.instanceof(Secret)]);
const uriArgs = z.strictObject({
  url: z.string(),
  method: z.optional(z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'])),
  body: z.optional(word),
  headers: z.optional(z.record(z.string(), word)),
  status: z.optional(z.union([z.int(), z.array(z.int())])),
  bodyContains: z.optional(z.string()),
  timeout: z.optional(z.int().check(z.positive({error: 'expected 1 or more'}))),
  validateCerts: z.optional(z.boolean()),
});
const uriInSync: Exact<z.infer<typeof uriArgs>, UriArgs> = true;

/** What the probe saw: the host can make the request, or not (no curl). */
export type UriState = {readonly kind: 'ready'} | {readonly kind: 'unavailable'; readonly message: string};

const NO_CURL = 'uri: the host has no curl';

/** The probe: is curl there? Never a request (a probe must not wait on the network). */
export const uriProbeScript = `command -v curl >/dev/null 2>&1 && echo curl || echo ${q(NO_CURL)}`;

/** Pure parser of `uriProbeScript`'s output. */
export function parseUriState(stdout: string): UriState {
  const t = stdout.trim();
  return t === 'curl' ? {kind: 'ready'} : {kind: 'unavailable', message: t || NO_CURL};
}

const methodOf = (a: UriArgs): UriMethod => a.method ?? 'GET';
const statusesOf = (a: UriArgs): readonly number[] => (a.status === undefined ? [200] : typeof a.status === 'number' ? [a.status] : a.status);
const reveal = (w: string | Secret): string => (typeof w === 'string' ? w : w.reveal());

/** `true` for the methods that only read (their task is `ok`, never `changed`). */
export const isRead = (m: UriMethod): boolean => m === 'GET' || m === 'HEAD';

/** The expectation in words: `200`, `200 or 204`. */
const expected = (a: UriArgs): string => statusesOf(a).join(' or ');

/**
 * The request script (POSIX sh, run with `sh -s`; it holds the body and headers, so it travels on
 * stdin, never on a command line). Prints `status 200` on success; on a mismatch exits 1 with the
 * reason on stderr.
 */
export function uriScript(a: UriArgs): string {
  const m = methodOf(a);
  const what = `${m} ${a.url}`;
  const curl = [
    'curl', '-sS', '-o', '"$__b"', '-w', q('%{http_code}'),
    ...(m === 'HEAD' ? ['-I'] : ['-X', m]),
    '--max-time', String(a.timeout ?? 30),
    ...(a.validateCerts === false ? ['-k'] : []),
    ...Object.entries(a.headers ?? {}).flatMap(([k, v]) => ['-H', q(`${k}: ${reveal(v)}`)]),
    ...(a.body === undefined ? [] : ['--data-raw', q(reveal(a.body))]),
    q(a.url),
  ].join(' ');
  const codes = statusesOf(a).join(' ');
  const lines = [
    '__b=$(mktemp) || exit 2',
    'trap \'rm -f "$__b"\' EXIT',
    `__s=$(${curl}) || { echo ${q(`${what}: request failed`)} >&2; exit 1; }`,
    `case ${q(` ${codes} `)} in *" $__s "*) ;; *)`,
    `  echo ${q(`${what} answered `)}"$__s"${q(`, expected ${expected(a)}; body: `)}"$(head -c 200 "$__b" | tr '\\n' ' ')" >&2; exit 1;; esac`,
  ];
  if (a.bodyContains !== undefined) {
    lines.push(`grep -qF -- ${q(a.bodyContains)} "$__b" || { echo ${q(`${what} answered `)}"$__s"${q(`, but the body does not contain '${a.bodyContains}'`)} >&2; exit 1; }`);
  }
  lines.push('echo "status $__s"');
  return lines.join('\n');
}

function problem(a: UriArgs): string | undefined {
  if (!/^https?:\/\/[^\s]+$/.test(a.url)) return `url must be an http:// or https:// URL without spaces, got '${a.url}'`;
  const bad = statusesOf(a).find((s) => !Number.isInteger(s) || s < 100 || s > 599);
  if (bad !== undefined) return `status must be HTTP statuses (100 to 599), got ${bad}`;
  if (statusesOf(a).length === 0) return 'status: give at least one status';
  if (a.bodyContains !== undefined && methodOf(a) === 'HEAD') return 'bodyContains needs a body: not with HEAD';
  if (a.body !== undefined && isRead(methodOf(a))) return `a body goes with POST, PUT, PATCH or DELETE, not ${methodOf(a)}`;
  const header = Object.keys(a.headers ?? {}).find((k) => !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k));
  if (header !== undefined) return `headers: '${header}' is not a header name`;
  return undefined;
}

export const uriModule: ModuleDef<UriArgs, UriState> = {
  name: 'uri',
  schema: uriArgs,
  describe: (a) => `${methodOf(a)} ${a.url}`,
  probe: (): Probe<UriState> => ({script: uriProbeScript, parse: (out) => parseUriState(out.stdout)}),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    if (have.kind === 'unavailable') return {steps: [], fail: have.message};
    const check = a.bodyContains === undefined ? '' : `, body containing '${a.bodyContains}'`;
    return {
      steps: [{
        kind: 'exec',
        cmd: argv('sh', '-s'),
        stdin: Buffer.from(uriScript(a)),
        note: (r) => /status \d+/.exec(r.stdout)?.[0],
      }],
      // The reason starts with the method: `uriChanged` reads it (a computed `args` is known only per host).
      reason: `${methodOf(a)} ${a.url} (expect ${expected(a)}${check})`,
    };
  },
};

/** `changed` unless the request was a read: the task's message starts with the method (`would GET …` under --check). */
export const uriChanged = (r: TaskResult): boolean => !/^(would )?(GET|HEAD) /.test(r.msg);

/** An HTTP request from the host, checked against `status` (and `bodyContains`); GET/HEAD are `ok`, the rest a change. */
export const uri = (args: ArgsOf<UriArgs>, options?: TaskOptions): Task => makeTask(uriModule, args, {changedWhen: uriChanged, ...options});

void uriInSync;
