/**
 * Unplanned failover of the database primary (docs/operations.md, "Database failover"):
 *
 *   provision run db-failover -e new_primary=db2            # the primary is gone
 *   provision run db-failover -e new_primary=db2 -e force=true   # promote it even if another replica is ahead
 *
 * The primary is not contacted at all (it is down: a connection attempt would only cost time): the
 * plays run on the web servers, and every database step is delegated to the replica it concerns.
 *  1. checks: new_primary is a database host (one line, before anything);
 *  2. every other replica is probed for reachability (TCP to its SSH port, from the controller);
 *     new_primary and each reachable replica apply what their relay log holds (`MASTER_GTID_WAIT` of
 *     `Gtid_IO_Pos`, 30 s at most) and report `@@gtid_current_pos`;
 *  3. new_primary is promoted only if no reachable replica is ahead of it or diverged from it
 *     (`-e force=true` overrides), and only if the old primary does not answer on the database port
 *     from new_primary (it is alive: use db-switchover; `force` overrides);
 *  4. new_primary: `STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF`; the new roles go to
 *     group_vars/all/db_roles.yml beside the inventory; the other reachable replicas replicate from
 *     it (`CHANGE MASTER TO …`, GTID positions kept);
 *  5. the app is re-pointed, one web server at a time, each drained in HAProxy around its restart.
 * The old primary is fenced by the database role's config: every server boots read-only, so when it
 * comes back it takes no writes; the app writes only to new_primary. `provision run site` (with the
 * new db_roles.yml) then makes it a replica of the new primary.
 */
import {assert, definePlaybook, service, setFact, shell, type TaskContext} from '../src/index.ts';
import {appAnswers, appEnvironment, appRoleWith, backInHaproxy, drainInHaproxy} from '../roles/app/index.ts';
import {addressOf, promotionVerdict, type Candidate} from '../roles/database/topology.ts';
import {forced, from, needed, parseKv, preflightProblem, promoteScript, promotedCheck, recordRoles, replicaPositionScript, replicateFromNewPrimary, switchFacts, to} from '../roles/database/switch.ts';

const port = (ctx: TaskContext): number => Number(ctx.vars.mysql_port ?? 3306);
/** The replicas other than new_primary (the old primary excluded: it is gone). */
const otherReplicas = (ctx: TaskContext): string[] => (ctx.vars.db_replica_names as readonly string[]).filter((h) => h !== from(ctx));
/** Those that answered the reachability probe. */
function reachable(ctx: TaskContext): string[] {
  const items = ctx.results.db_reach?.items ?? [];
  return items.filter((r) => /\bup\b/.test(r.stdout)).map((r) => String(r.item));
}
/** new_primary and the reachable replicas, with their positions. */
function candidates(ctx: TaskContext): Candidate[] {
  const mine = parseKv(ctx.results.db_new_state?.stdout ?? '');
  const others = (ctx.results.db_other_states?.items ?? []).filter((r) => !r.failed).map((r) => ({host: String(r.item), pos: parseKv(r.stdout).pos ?? ''}));
  return [{host: to(ctx), pos: mine.pos ?? ''}, ...others];
}
const changedEnv = (ctx: TaskContext): boolean => ctx.results.app_env?.changed === true;

export default definePlaybook({
  name: 'db-failover',
  plays: [
    {
      name: 'failover: promote a replica', hosts: 'webservers', gatherFacts: false, anyErrorsFatal: true,
      tasks: [
        assert((ctx) => {
          const problem = preflightProblem(ctx, 'db-failover');
          return {that: problem === undefined, failMsg: problem ?? '', successMsg: `promote ${String(ctx.vars.new_primary)}`};
        }, {name: 'new_primary names a database host', runOnce: true}),
        setFact((ctx) => ({...switchFacts(ctx)}), {name: 'the roles before and after'}),
        shell((ctx) => {
          const item = String(ctx.item);
          const p = Number(ctx.hostvars(item).ansible_port ?? 22);
          return {script: `timeout 3 bash -c '</dev/tcp/${addressOf(ctx, item)}/${p}' 2>/dev/null && echo up || echo down`};
        }, {
          name: 'other replicas reachable', runOnce: true, loop: otherReplicas, delegateTo: 'localhost', become: false,
          register: 'db_reach', changedWhen: () => false, when: needed,
        }),
        shell((ctx) => ({script: replicaPositionScript(addressOf(ctx, from(ctx)), port(ctx))}), {
          name: 'new primary: relay log applied, its position', runOnce: true, delegateTo: to, register: 'db_new_state', changedWhen: () => false, when: needed,
        }),
        shell((ctx) => ({script: replicaPositionScript(addressOf(ctx, from(ctx)), port(ctx))}), {
          name: 'other replicas: relay log applied, their positions', runOnce: true, loop: reachable, delegateTo: (ctx) => String(ctx.item),
          register: 'db_other_states', changedWhen: () => false, ignoreErrors: true, when: needed,
        }),
        assert((ctx) => {
          const state = parseKv(ctx.results.db_new_state?.stdout ?? '');
          if (state.old_primary_answers === 'yes' && !forced(ctx)) {
            return {that: false, failMsg: `db-failover: the primary ${from(ctx)} still answers on ${addressOf(ctx, from(ctx))}:${port(ctx)} from ${to(ctx)}: use db-switchover (or -e force=true if it must be abandoned)`};
          }
          const v = promotionVerdict(to(ctx), candidates(ctx), forced(ctx));
          return {that: v.kind === 'ok', failMsg: `db-failover: refusing to promote ${to(ctx)}: ${v.reason}`, successMsg: v.reason};
        }, {name: 'the new primary is the most advanced reachable replica', runOnce: true, when: needed}),
        shell({script: promoteScript, unless: promotedCheck}, {name: 'new primary: STOP SLAVE, RESET SLAVE ALL, writable', runOnce: true, delegateTo: to}),
        ...recordRoles((ctx) => `${from(ctx)} → ${to(ctx)}: db-failover${forced(ctx) ? ' (forced)' : ''}, ${new Date().toISOString()}; ${from(ctx)} must be made a replica by provision run site once it is back`, {when: needed}),
        replicateFromNewPrimary({name: 'other reachable replicas replicate from the new primary', runOnce: true, loop: reachable, delegateTo: (ctx) => String(ctx.item), when: needed}),
      ],
    },
    {
      name: 'failover: the app re-pointed, one web server at a time', hosts: 'webservers', serial: 1, gatherFacts: false, anyErrorsFatal: true,
      roles: [appRoleWith([
        appEnvironment({name: 'app environment: the new primary', register: 'app_env', noLog: true}),
        drainInHaproxy({name: 'drain in HAProxy', when: changedEnv}),
        service({name: 'app', state: 'restarted'}, {name: 'restart the app', when: changedEnv}),
        appAnswers({name: 'app answers', when: changedEnv}),
        backInHaproxy({name: 'back in HAProxy', when: changedEnv}),
        // Requests in flight wait on the dead primary (no TCP reset from a host that is gone): draining
        // cannot save them, so it waits less before the restart.
      ], {app_drain_timeout: 3})],
    },
  ],
});
