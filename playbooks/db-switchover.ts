/**
 * Planned switchover of the database primary (docs/operations.md, "Database switchover"):
 *
 *   provision run db-switchover -e new_primary=db2
 *
 * Both servers are up. Writes pause for a few seconds, no acknowledged write is lost:
 *  1. checks, before anything changes: new_primary is a database host; it replicates from the
 *     primary with both threads running; the primary may connect to it (replication account, firewall);
 *  2. the first web server is drained in HAProxy, re-pointed at the new primary and restarted, and
 *     stays drained (the others keep serving, writing to the old primary);
 *  3. the old primary goes read-only (`SET GLOBAL read_only = ON`: the app's account cannot write any
 *     more) and reports its last position (`@@gtid_binlog_pos`); the new primary waits until it has
 *     applied it (`MASTER_GTID_WAIT`, at most `db_switchover_timeout` s; else the old primary is made
 *     writable again and the run stops); then `STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF`;
 *     the old primary replicates from the new one from its own last transaction
 *     (`SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos`, `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos`,
 *     `START SLAVE`); the new roles go to group_vars/all/db_roles.yml beside the inventory;
 *  4. the first web server is put back in HAProxy and the others drained at once (writes resume);
 *  5. the others are re-pointed one at a time, each back in HAProxy once it answers.
 * Running it again with the same new_primary changes nothing.
 */
import {assert, definePlaybook, fail, service, setFact, shell, type TaskContext, type TaskOptions} from '../src/index.ts';
import {appAnswers, appEnvironment, appRoleWith, backInHaproxy, drainInHaproxy} from '../roles/app/index.ts';
import {addressOf} from '../roles/database/topology.ts';
import {
  catchUpScript, firstWeb, from, gtidArg, needed, preflightProblem, promoteScript, promotedCheck, reachScript, recordRoles,
  replicaConfigured, replicateFromNewPrimary, replicationHealthyScript, seedSlavePosScript, sql, stopWritesScript, switchFacts, to, writableAgainScript,
} from '../roles/database/switch.ts';

const on = (who: (ctx: TaskContext) => string) => (ctx: TaskContext): boolean => needed(ctx) && ctx.host === who(ctx);
const onFirstWeb = (ctx: TaskContext): boolean => needed(ctx) && ctx.host === firstWeb(ctx);
const timeoutS = (ctx: TaskContext): number => Number(ctx.vars.db_switchover_timeout ?? 30);
const port = (ctx: TaskContext): number => Number(ctx.vars.mysql_port ?? 3306);
/** A script run unless `check` succeeds on the host (what is done already is not done again). */
const shellUnless = (script: string, check: string, options: TaskOptions) => shell({script, unless: check}, options);

export default definePlaybook({
  name: 'db-switchover',
  plays: [
    {
      name: 'switchover: checks before anything changes', hosts: 'databases:webservers', gatherFacts: false, anyErrorsFatal: true,
      tasks: [
        assert((ctx) => {
          const problem = preflightProblem(ctx, 'db-switchover');
          return {that: problem === undefined, failMsg: problem ?? '', successMsg: `switch the primary to ${String(ctx.vars.new_primary)}`};
        }, {name: 'new_primary names a database host', runOnce: true}),
        setFact((ctx) => ({...switchFacts(ctx)}), {name: 'the roles before and after'}),
      ],
    },
    {
      name: 'switchover: the servers are ready for it', hosts: 'databases', gatherFacts: false, anyErrorsFatal: true,
      tasks: [
        sql((ctx) => replicationHealthyScript(addressOf(ctx, from(ctx)), addressOf(ctx, from(ctx)), String(ctx.vars.mysql_replication_user ?? 'repl')), {
          name: 'the new primary replicates from the primary, both threads running', when: on(to), changedWhen: () => false,
        }),
        sql((ctx) => reachScript(addressOf(ctx, to(ctx)), port(ctx), 'the old primary must replicate from the new one'), {
          name: 'the old primary reaches the new one', when: on(from), changedWhen: () => false,
        }),
      ],
    },
    {
      name: 'switchover: the first web server re-pointed ahead, drained', hosts: 'webservers', gatherFacts: false, anyErrorsFatal: true,
      roles: [appRoleWith([
        drainInHaproxy({name: 'drain the first web server', when: onFirstWeb}),
        appEnvironment({name: 'app environment: the new primary', when: onFirstWeb, noLog: true}),
        service({name: 'app', state: 'restarted'}, {name: 'restart the app (still drained)', when: onFirstWeb}),
        appAnswers({name: 'app answers', when: onFirstWeb}),
      ])],
    },
    {
      name: 'switchover: swap the roles', hosts: 'databases', gatherFacts: false, anyErrorsFatal: true,
      tasks: [
        sql(() => stopWritesScript, {name: 'old primary read-only, its last position', when: on(from), register: 'db_old_pos'}),
        sql((ctx) => catchUpScript(gtidArg(ctx.hostvars(from(ctx)).results.db_old_pos?.stdout ?? ''), timeoutS(ctx)), {
          name: 'new primary caught up with it (MASTER_GTID_WAIT)', when: on(to), register: 'db_caught_up', ignoreErrors: true, changedWhen: () => false,
        }),
        // Not caught up in time: nothing was promoted; the old primary takes writes again and the run stops.
        sql(() => writableAgainScript, {
          name: 'not caught up: old primary writable again', when: (ctx) => on(to)(ctx) && ctx.results.db_caught_up?.failed === true, delegateTo: from,
        }),
        fail({msg: 'switchover stopped before the promotion: the new primary did not catch up in time (db_switchover_timeout); the old primary is writable again; the first web server points at the replica and is drained: run `provision run site` to put it back'}, {
          name: 'stop when not caught up', when: (ctx) => on(to)(ctx) && ctx.results.db_caught_up?.failed === true,
        }),
        shellUnless(promoteScript, promotedCheck, {name: 'new primary: STOP SLAVE, RESET SLAVE ALL, writable', when: on(to)}),
        shellUnless(seedSlavePosScript, replicaConfigured, {name: 'old primary replicates from after its own last transaction', when: on(from)}),
        replicateFromNewPrimary({name: 'old primary replicates from the new one', when: on(from)}),
        ...recordRoles((ctx) => `${from(ctx)} → ${to(ctx)}: db-switchover, ${new Date().toISOString()}`, {when: needed}),
      ],
    },
    {
      name: 'switchover: writes resume through the first web server', hosts: 'webservers', gatherFacts: false, anyErrorsFatal: true,
      roles: [appRoleWith([
        backInHaproxy({name: 'first web server back in HAProxy', when: onFirstWeb}),
        drainInHaproxy({name: 'drain the other web servers (they still point at the old primary)', when: (ctx) => needed(ctx) && ctx.host !== firstWeb(ctx)}),
      ])],
    },
    {
      name: 'switchover: the other web servers re-pointed, one at a time', hosts: 'webservers', serial: 1, gatherFacts: false, anyErrorsFatal: true,
      roles: [appRoleWith([
        appEnvironment({name: 'app environment: the new primary', register: 'app_env', noLog: true}),
        drainInHaproxy({name: 'drain in HAProxy', when: (ctx) => ctx.results.app_env?.changed === true}),
        service({name: 'app', state: 'restarted'}, {name: 'restart the app', when: (ctx) => ctx.results.app_env?.changed === true}),
        appAnswers({name: 'app answers', when: (ctx) => ctx.results.app_env?.changed === true}),
        backInHaproxy({name: 'back in HAProxy', when: (ctx) => ctx.results.app_env?.changed === true || (needed(ctx) && ctx.host !== firstWeb(ctx))}),
      ])],
    },
  ],
});
