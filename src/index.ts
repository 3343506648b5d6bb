/**
 * The public API that playbooks and roles import. Nothing else is public.
 *
 *   import {definePlaybook, defineRole, apt, template, service} from 'provision';
 */
export {definePlaybook, definePlay, defineRole, defineTask, makeTask, type ArgsOf} from './core/task.ts';
export type {Play, Playbook, Role, Task, TaskOptions, TaskContext, TaskResult, ModuleDef, Plan, Step, Probe, Vars, Diff} from './core/types.ts';
export type {Facts} from './facts/host.ts';
export {secret, Secret} from './core/secret.ts';
export {argv, q, type Cmd} from './core/cmd.ts';
export {file, copy, template, lineinfile, type FileArgs, type CopyInput, type TemplateArgs, type LineInFileArgs} from './modules/files.ts';
export {command, shell, type CommandArgs, type ShellArgs} from './modules/command.ts';
export {apt, type AptArgs} from './modules/apt.ts';
export {service, type ServiceArgs} from './modules/systemd.ts';
export {cron, type CronArgs} from './modules/cron.ts';
export {authorizedKey, type AuthorizedKeyArgs} from './modules/authorizedkey.ts';
export {knownHosts, type KnownHostsArgs} from './modules/knownhosts.ts';
export {systemdUnit, type SystemdUnitArgs} from './modules/systemdunit.ts';
export {waitFor, type WaitForArgs} from './modules/waitfor.ts';
export {uri, type UriArgs, type UriMethod} from './modules/uri.ts';
export {getUrl, type GetUrlArgs} from './modules/geturl.ts';
export {user, group, type UserArgs, type GroupArgs} from './modules/users.ts';
export {ufwRule, ufwRules, ufwDefault, ufwState, type UfwRuleArgs, type UfwRulesArgs, type UfwDefaultArgs, type UfwStateArgs} from './modules/ufw.ts';
export {mysqlDatabase, mysqlUser, mysqlReplica, type MysqlDatabaseArgs, type MysqlUserArgs, type MysqlReplicaArgs, type MysqlFlavor} from './modules/mysql.ts';
export {debug, assert, fail, setFact, flushHandlers, type DebugArgs, type AssertArgs, type FailArgs, type SetFactArgs} from './modules/control.ts';
export {blockinfile, type BlockInFileArgs} from './modules/blockinfile.ts';
export {replace, type ReplaceArgs} from './modules/replace.ts';
export {stat, statOf, type StatArgs, type StatResult} from './modules/stat.ts';
export {sysctl, type SysctlArgs} from './modules/sysctl.ts';
export {hostname, type HostnameArgs} from './modules/hostname.ts';
export {timezone, type TimezoneArgs} from './modules/timezone.ts';
export {aptRepository, type AptRepositoryArgs} from './modules/aptrepository.ts';
export {debconf, type DebconfArgs, type DebconfType} from './modules/debconf.ts';
export {mount, type MountArgs} from './modules/mount.ts';
export {fetch, type FetchArgs} from './modules/fetch.ts';
export {reboot, type RebootArgs} from './modules/reboot.ts';
export {git, type GitArgs} from './modules/git.ts';
export {pip, type PipArgs} from './modules/pip.ts';
export {npm, type NpmArgs} from './modules/npm.ts';
export {unarchive, type UnarchiveArgs, type UnarchiveFormat} from './modules/unarchive.ts';
