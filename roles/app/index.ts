/**
 * The sample app (issue 4): Node.js from the distribution, the app bundled on the controller into one
 * file (`files/app.js`, built by `node roles/app/build.mjs` from `src/` when `npm ci` or `npm pack`
 * runs; never committed), run by systemd as the unprivileged system user `app`, listening on
 * 127.0.0.1:3000 behind nginx. Restarted when the bundle, its environment file or its unit changes.
 *
 * A restart is drained (docs/operations.md): the handlers that listen to 'restart app' take the web
 * server out of HAProxy on every load balancer first (runtime API, `delegateTo` each balancer, waiting
 * for its open sessions to end), restart the app, wait until it answers, and put the server back,
 * waiting until HAProxy's own checks see it UP, so the next web server (`serial: 1`) is drained only
 * once this one serves again. No request is lost to a restart.
 *
 * The app writes notes to the primary (`db_primary_host`) and reads them from the replicas
 * (`db_replica_hosts`), else the database roles' own choice (`db_primary_host_name` /
 * `db_replica_names`, which db-switchover and db-failover record, else the groups: roles/database/topology.ts);
 * `/health` never touches the database, so the load balancers' checks pass while the databases are
 * down (`/health/db` reports their state). The pieces of a drained restart are exported for those
 * playbooks, which re-point the app at a new primary.
 */
import {fileURLToPath} from 'node:url';
import {apt, command, copy, defineRole, file, q, secret, Secret, service, shell, template, user, type Role, type Task, type TaskContext, type TaskOptions} from '../../src/index.ts';
import {dbTopology} from '../database/topology.ts';

/** The address of an inventory host (`ansible_host`, else its name). */
function addressOf(ctx: TaskContext, host: string): string {
  return String(ctx.hostvars(host).ansible_host ?? host);
}

/** A host list variable given as a list or a comma/space separated string. */
function hostList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  return String(v).split(/[\s,]+/).filter((s) => s !== '');
}

/**
 * The primary: `db_primary_host` (an address), else the database topology's primary (its address):
 * `db_primary_host_name` when set (group_vars/all/db_roles.yml, written by db-switchover and
 * db-failover), else the first host of the `db_primary` group.
 */
export function primaryHost(ctx: TaskContext): string {
  const v = ctx.vars.db_primary_host;
  if (v !== undefined && v !== null && v !== '') return String(v);
  if ((ctx.groups.db_primary ?? []).length === 0 && !ctx.vars.db_primary_host_name) throw new Error('app: set db_primary_host, or put the primary in the db_primary group');
  return addressOf(ctx, dbTopology(ctx).primary);
}

/**
 * The replicas: `db_replica_hosts`, else the topology's replicas (`db_replica_names`, else the
 * `db_replicas` group); may be empty: reads go to the primary.
 */
export function replicaHosts(ctx: TaskContext): string[] {
  const v = ctx.vars.db_replica_hosts;
  if (v !== undefined && v !== null && v !== '') return hostList(v);
  if ((ctx.groups.db_primary ?? []).length === 0 && !ctx.vars.db_primary_host_name) return (ctx.groups.db_replicas ?? []).map((h) => addressOf(ctx, h));
  return dbTopology(ctx).replicas.map((h) => addressOf(ctx, h));
}

/** A value for a systemd EnvironmentFile: double-quoted, with `\`, `"`, `$` and backquote escaped. */
export function envValue(value: string): string {
  if (/[\n\r\0]/.test(value)) throw new Error('app: environment values cannot hold newlines or NUL');
  return `"${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/**
 * `files/app.js`, the bundle. It is built, not committed: a clone where nobody ran `npm ci` (or
 * `npm run build:app`) has none, and the task fails with one line saying how to build it.
 */
export function appBundle(ctx: TaskContext): Buffer {
  try {
    return ctx.readFile('app.js');
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (!/not found/.test(msg)) throw err;
    throw new Error(`app: ${msg}: build it with \`npm run build:app\` (npm ci builds it too)`);
  }
}

function reveal(v: unknown, name: string): string {
  if (v instanceof Secret) return v.reveal();
  if (typeof v === 'string' && v !== '') return v;
  throw new Error(`app: variable ${name} is not set (a vault file, or -e @.lab/test-secrets.yml in the lab)`);
}

/** The load balancers whose HAProxy sends traffic to this web server (`app_balancer_group`). */
function balancers(ctx: TaskContext): string[] {
  return [...(ctx.groups[String(ctx.vars.app_balancer_group)] ?? [])];
}

/** Polls of a drain, 0.2 s apart: `app_drain_timeout` seconds (10 when unset). */
function drainTries(ctx: TaskContext): number {
  const s = Number(ctx.vars.app_drain_timeout ?? 10);
  return Number.isFinite(s) && s >= 0 ? Math.round(s * 5) : 50;
}

/**
 * On a load balancer, through HAProxy's runtime API (admin socket): `drain` this web server and wait
 * (`app_drain_timeout` s at most) for its sessions to end; or set it `ready` and print its check status (`UP` once
 * HAProxy's checks pass). A balancer without HAProxy yet (the site's first run) prints `none`.
 */
export function haproxyScript(ctx: TaskContext, state: 'drain' | 'ready'): string {
  const server = `${String(ctx.vars.app_haproxy_backend)}/${ctx.host}`;
  const field = (n: number): string => `echo 'show stat' | socat stdio "$s" | awk -F, -v b=${q(String(ctx.vars.app_haproxy_backend))} -v h=${q(ctx.host)} '$1==b && $2==h {print $${n}}'`;
  return [
    `s=${q(String(ctx.vars.app_haproxy_socket))}`,
    '[ -S "$s" ] && command -v socat >/dev/null || { echo none; exit 0; }',
    `echo ${q(`set server ${server} state ${state}`)} | socat stdio "$s"`,
    state === 'drain'
      ? `i=0; while [ "$(${field(5)})" != 0 ] && [ $i -lt ${drainTries(ctx)} ]; do sleep 0.2; i=$((i+1)); done; echo drained`
      : `${field(18)}`,
  ].join('\n');
}

const defaultRole = defineRole({
  name: 'app',
  defaults: {
    /** Where the app listens; nginx proxies /api/ and /health to it. */
    app_bind: '127.0.0.1',
    app_port: 3000,
    /** The system user (and group) that runs the app. */
    app_user: 'app',
    /** Where the bundle lives (owned by root: the app cannot rewrite its own code). */
    app_dir: '/opt/app',
    /** Database name and user on the primary and the replicas. */
    app_db_name: 'app',
    app_db_user: 'app',
    app_db_port: 3306,
    /** How long a read waits for a fresh note to reach a replica before asking the primary, in ms. */
    app_replica_wait_ms: 1000,
    /** Write host: null means the first host of the `db_primary` group (its ansible_host). */
    db_primary_host: null as string | null,
    /** Read hosts (list or comma-separated): null means the hosts of the `db_replicas` group. */
    db_replica_hosts: null as string | readonly string[] | null,
    /** The load balancers that drain this web server around a restart, their backend, their admin socket. */
    app_balancer_group: 'loadbalancers',
    app_haproxy_backend: 'web',
    app_haproxy_socket: '/run/haproxy/admin.sock',
    /** Seconds a drain waits for the web server's open sessions to end before the restart goes on. */
    app_drain_timeout: 10,
  },
  tasks: [
    apt({packages: ['nodejs']}, {name: 'Node.js from the distribution'}),
    user((ctx) => ({name: String(ctx.vars.app_user), system: true, createHome: false, home: String(ctx.vars.app_dir), shell: '/usr/sbin/nologin', comment: 'sample app'}), {name: 'app user'}),
    file((ctx) => ({path: String(ctx.vars.app_dir), state: 'directory', owner: 'root', group: 'root', mode: '0755'}), {name: 'app directory'}),
    copy((ctx) => ({content: appBundle(ctx), dest: `${ctx.vars.app_dir}/app.js`, owner: 'root', group: 'root', mode: '0644'}), {name: 'app bundle', notify: 'restart app'}),
    file((ctx) => ({path: '/etc/app', state: 'directory', owner: 'root', group: String(ctx.vars.app_user), mode: '0750'}), {name: 'app config directory'}),
    appEnvironment({name: 'app environment', notify: 'restart app', noLog: true}),
    template({src: 'app.service.mustache', dest: '/etc/systemd/system/app.service', owner: 'root', group: 'root', mode: '0644'}, {name: 'app unit', notify: 'restart app'}),
    service({name: 'app', state: 'started', enabled: true, daemonReload: true}, {name: 'app running'}),
  ],
  handlers: [
    drainInHaproxy({name: 'drain in HAProxy', listen: 'restart app'}),
    service({name: 'app', state: 'restarted', daemonReload: true}, {name: 'restart app'}),
    appAnswers({name: 'app answers', listen: 'restart app'}),
    backInHaproxy({name: 'back in HAProxy', listen: 'restart app'}),
  ],
});
export default defaultRole;

// The pieces of a drained restart, also used by the db-switchover and db-failover playbooks to re-point
// the app at a new primary (their own options: `when`, names), with the role's defaults as variables.

/** `/etc/app/app.env`: the database hosts (primary, replicas) and the app's credentials. */
export function appEnvironment(options: TaskOptions): Task {
  return copy(
    (ctx) => ({
      dest: '/etc/app/app.env',
      owner: 'root',
      group: String(ctx.vars.app_user),
      mode: '0640',
      content: secret(
        ctx.render('app.env.mustache', {
          db_primary: primaryHost(ctx),
          db_replicas: replicaHosts(ctx).join(','),
          db_password: envValue(reveal(ctx.vars.mysql_app_password, 'mysql_app_password')),
        }),
      ),
    }),
    options,
  );
}

/** This web server drained in HAProxy on every balancer (delegated to each), waiting for its sessions to end. */
export function drainInHaproxy(options: TaskOptions): Task {
  return shell((ctx) => ({script: haproxyScript(ctx, 'drain')}), {...options, loop: balancers, delegateTo: (ctx) => String(ctx.item)});
}

/** The app answers `/health` on this web server (30 tries, 1 s apart). */
export function appAnswers(options: TaskOptions): Task {
  return command((ctx) => ({argv: ['curl', '-fsS', '-o', '/dev/null', `http://${String(ctx.vars.app_bind)}:${String(ctx.vars.app_port)}/health`]}), {
    ...options, retries: 30, delay: 1, until: (r) => r.rc === 0, changedWhen: () => false,
  });
}

/** This web server back in HAProxy on every balancer, until HAProxy's checks see it UP. */
export function backInHaproxy(options: TaskOptions): Task {
  return shell((ctx) => ({script: haproxyScript(ctx, 'ready')}), {
    ...options, loop: balancers, delegateTo: (ctx) => String(ctx.item), retries: 30, delay: 1, until: (r) => /^(UP|none)\b/m.test(r.stdout),
  });
}

/**
 * Some of the app role's work as a role of its own: `tasks` (made of the factories above) with the
 * app role's defaults (lowest precedence, as in the site) and its templates (app.env.mustache).
 */
export function appRoleWith(tasks: readonly Task[], defaults: Partial<typeof defaultRole.defaults> = {}): Role {
  const self = defaultRole;
  return {name: self.name, defaults: {...self.defaults, ...defaults}, tasks, handlers: [], dir: fileURLToPath(new URL('.', import.meta.url))};
}
