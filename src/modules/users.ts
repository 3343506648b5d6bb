/**
 * `user` and `group`: local accounts, managed with the shadow tools (useradd/usermod/userdel,
 * groupadd/groupmod/groupdel). The probes read NSS (`getent`, `id`); a change passes only the
 * fields that differ.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Task, TaskOptions} from '../core/types.ts';

/** User and group names the shadow tools accept (a trailing `$` is for Samba machine accounts). */
const nameRe = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;

function badName(kind: string, name: string): string | undefined {
  return nameRe.test(name) ? undefined : `bad ${kind} name '${name}': letters, digits, '_', '.', '-', not starting with a digit or '-'`;
}

function gidLike(g: string | number): g is number | `${number}` {
  return typeof g === 'number' || /^\d+$/.test(g);
}

/** The line printed for a same-named group, shared by both probes: `group name:x:gid:members`. */
function groupLine(name: string): string {
  return `g=$(getent group -- ${q(name)} 2>/dev/null) && printf 'group %s\\n' "$g"`;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** Pure parser of one `/etc/group` line (`name:x:gid:a,b`); undefined when malformed. */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.split(':');
  const [name = '', , gid = '', members = ''] = f;
  if (f.length < 4 || !/^\d+$/.test(gid)) return undefined;
  return {name, gid: Number(gid), members: members === '' ? [] : members.split(',')};
}

// ---------------------------------------------------------------- user

export interface UserArgs {
  /** Login name. */
  readonly name: string;
  /** `present` (default) or `absent` (`userdel`; the home directory is kept). */
  readonly state?: 'present' | 'absent';
  /** Numeric user id. Unset: the next free one for a new user, unchanged for an existing one. */
  readonly uid?: number;
  /**
   * Primary group, by name or gid. Unset: a new user gets the group of its own name (an existing group
   * of that name is used; otherwise useradd creates it), an existing user keeps its group.
   */
  readonly group?: string | number;
  /** Supplementary groups; they must exist. Unset: leave membership alone. */
  readonly groups?: readonly string[];
  /** With `groups`: add the user to them and leave other memberships alone (default false: exactly these). */
  readonly append?: boolean;
  /** Home directory. Changing it does not move the old one. */
  readonly home?: string;
  /** Login shell, e.g. '/bin/bash' or '/usr/sbin/nologin'. */
  readonly shell?: string;
  /** Create a system account (uid below UID_MIN). Only applies when the user is created. */
  readonly system?: boolean;
  /** Create the home directory (from /etc/skel) when the user is created (default: true, false for system users). */
  readonly createHome?: boolean;
  /** The GECOS field (full name). */
  readonly comment?: string;
}

const userArgs = z.strictObject({
  name: z.string(),
  state: z.optional(z.enum(['present', 'absent'])),
  uid: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
  group: z.optional(z.union([z.string(), z.int().check(z.nonnegative({error: 'expected 0 or more'}))])),
  groups: z.optional(z.array(z.string())),
  append: z.optional(z.boolean()),
  home: z.optional(z.string()),
  shell: z.optional(z.string()),
  system: z.optional(z.boolean()),
  createHome: z.optional(z.boolean()),
  comment: z.optional(z.string()),
});
const userInSync: Exact<z.infer<typeof userArgs>, UserArgs> = true;

export type UserState =
  | {readonly kind: 'missing'; /** A group with the user's name exists. */ readonly ownGroup: boolean}
  | {
      readonly kind: 'present';
      readonly uid: number;
      readonly gid: number;
      readonly comment: string;
      readonly home: string;
      readonly shell: string;
      /** Primary group name (`id -gn`). */
      readonly primary: string;
      /** Every group the user is in, primary included (`id -Gn`). */
      readonly groups: readonly string[];
      readonly ownGroup: boolean;
    };

/** The probe: `passwd <getent line>`, `primary <id -gn>`, `groups <id -Gn>` when the user exists, `group <line>` when its own group does. */
export function userProbeScript(name: string): string {
  const n = q(name);
  return [
    '(',
    `p=$(getent passwd -- ${n} 2>/dev/null) && {`,
    `  printf 'passwd %s\\n' "$p"`,
    `  printf 'primary %s\\n' "$(id -gn -- ${n} 2>/dev/null)"`,
    `  printf 'groups %s\\n' "$(id -Gn -- ${n} 2>/dev/null)"`,
    '}',
    groupLine(name),
    'true',
    ')',
  ].join('\n');
}

/** Pure parser of `userProbeScript`'s output. */
export function parseUserState(stdout: string): UserState {
  let passwd: string[] | undefined;
  let primary = '';
  let groups: string[] = [];
  let ownGroup = false;
  for (const line of stdout.split('\n')) {
    const sp = line.indexOf(' ');
    const [key, rest] = sp < 0 ? [line, ''] : [line.slice(0, sp), line.slice(sp + 1)];
    if (key === 'passwd') passwd = rest.split(':');
    else if (key === 'primary') primary = rest.trim();
    else if (key === 'groups') groups = rest.trim().split(/\s+/).filter(Boolean);
    else if (key === 'group') ownGroup = parseGroupLine(rest) !== undefined;
  }
  const [, , uid = '', gid = '', comment = '', home = '', shell = ''] = passwd ?? [];
  if (!passwd || passwd.length < 7 || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return {kind: 'missing', ownGroup};
  return {kind: 'present', uid: Number(uid), gid: Number(gid), comment, home, shell, primary, groups, ownGroup};
}

export const userModule: ModuleDef<UserArgs, UserState> = {
  name: 'user',
  schema: userArgs,
  describe: (a) => ((a.state ?? 'present') === 'present' ? a.name : `${a.name} (absent)`),
  probe: (a): Probe<UserState> => ({script: userProbeScript(a.name), parse: (out) => parseUserState(out.stdout)}),
  plan(have, a): Plan {
    const invalid = badName('user', a.name) ?? [typeof a.group === 'string' && !gidLike(a.group) ? a.group : undefined, ...(a.groups ?? [])]
      .map((g) => (g === undefined ? undefined : badName('group', g))).find((e) => e !== undefined);
    if (invalid) return {steps: [], fail: invalid};
    const n = a.name;

    if (a.state === 'absent') {
      if (have.kind === 'missing') return {steps: [], reason: 'already absent'};
      return {steps: [{kind: 'exec', cmd: argv('userdel', '--', n)}], reason: `remove user ${n} (uid ${have.uid})`};
    }

    if (have.kind === 'missing') {
      const group = a.group !== undefined ? String(a.group) : have.ownGroup ? n : undefined;
      const createHome = a.createHome ?? !a.system;
      const words = [
        'useradd',
        ...(a.system ? ['--system'] : []),
        ...(a.uid !== undefined ? ['--uid', String(a.uid)] : []),
        ...(group !== undefined ? ['--gid', group] : []),
        ...(a.groups && a.groups.length > 0 ? ['--groups', a.groups.join(',')] : []),
        ...(a.home !== undefined ? ['--home-dir', a.home] : []),
        ...(a.shell !== undefined ? ['--shell', a.shell] : []),
        ...(a.comment !== undefined ? ['--comment', a.comment] : []),
        createHome ? '--create-home' : '--no-create-home',
        '--', n,
      ];
      return {steps: [{kind: 'exec', cmd: argv(...words)}], reason: `create user ${n}`};
    }

    const flags: string[] = [];
    const changes: string[] = [];
    if (a.uid !== undefined && a.uid !== have.uid) {
      flags.push('--uid', String(a.uid));
      changes.push(`uid ${have.uid} → ${a.uid}`);
    }
    let wantPrimary = have.primary;
    if (a.group !== undefined) {
      const same = gidLike(a.group) ? Number(a.group) === have.gid : a.group === have.primary;
      if (!gidLike(a.group)) wantPrimary = a.group;
      if (!same) {
        flags.push('--gid', String(a.group));
        changes.push(`group ${have.primary || have.gid} → ${a.group}`);
      }
    }
    if (a.groups !== undefined) {
      // Supplementary groups only: the primary group shows in `id -Gn` but is not a membership to manage.
      const primaries = new Set([have.primary, wantPrimary]);
      const current = new Set(have.groups.filter((g) => !primaries.has(g)));
      const wanted = [...new Set(a.groups.filter((g) => !primaries.has(g)))];
      const add = wanted.filter((g) => !current.has(g));
      const drop = a.append ? [] : [...current].filter((g) => !wanted.includes(g));
      if (add.length > 0 || drop.length > 0) {
        if (a.append) flags.push('--append', '--groups', add.join(','));
        else flags.push('--groups', wanted.join(','));
        changes.push(`groups ${[...add.map((g) => `+${g}`), ...drop.map((g) => `-${g}`)].join(' ')}`);
      }
    }
    if (a.home !== undefined && a.home !== have.home) {
      flags.push('--home', a.home);
      changes.push(`home ${have.home} → ${a.home}`);
    }
    if (a.shell !== undefined && a.shell !== have.shell) {
      flags.push('--shell', a.shell);
      changes.push(`shell ${have.shell} → ${a.shell}`);
    }
    if (a.comment !== undefined && a.comment !== have.comment) {
      flags.push('--comment', a.comment);
      changes.push(`comment '${have.comment}' → '${a.comment}'`);
    }
    if (flags.length === 0) return {steps: [], reason: `user ${n} present (uid ${have.uid}, group ${have.primary || have.gid})`};
    return {steps: [{kind: 'exec', cmd: argv('usermod', ...flags, '--', n)}], reason: changes.join(', ')};
  },
};

// ---------------------------------------------------------------- group

export interface GroupArgs {
  /** Group name. */
  readonly name: string;
  /** `present` (default) or `absent` (`groupdel`; fails while it is a user's primary group). */
  readonly state?: 'present' | 'absent';
  /** Numeric group id. Unset: the next free one for a new group, unchanged for an existing one. */
  readonly gid?: number;
  /** Create a system group (gid below GID_MIN). Only applies when the group is created. */
  readonly system?: boolean;
}

const groupArgs = z.strictObject({
  name: z.string(),
  state: z.optional(z.enum(['present', 'absent'])),
  gid: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
  system: z.optional(z.boolean()),
});
const groupInSync: Exact<z.infer<typeof groupArgs>, GroupArgs> = true;

export type GroupState = {readonly kind: 'missing'} | ({readonly kind: 'present'} & GroupEntry);

/** The probe: `group <getent line>` when the group exists, nothing otherwise. */
export function groupProbeScript(name: string): string {
  return `(\n${groupLine(name)}\ntrue\n)`;
}

/** Pure parser of `groupProbeScript`'s output. */
export function parseGroupState(stdout: string): GroupState {
  const line = stdout.split('\n').find((l) => l.startsWith('group '));
  const entry = line !== undefined ? parseGroupLine(line.slice('group '.length)) : undefined;
  return entry ? {kind: 'present', ...entry} : {kind: 'missing'};
}

export const groupModule: ModuleDef<GroupArgs, GroupState> = {
  name: 'group',
  schema: groupArgs,
  describe: (a) => ((a.state ?? 'present') === 'present' ? a.name : `${a.name} (absent)`),
  probe: (a): Probe<GroupState> => ({script: groupProbeScript(a.name), parse: (out) => parseGroupState(out.stdout)}),
  plan(have, a): Plan {
    const invalid = badName('group', a.name);
    if (invalid) return {steps: [], fail: invalid};
    const n = a.name;
    if (a.state === 'absent') {
      if (have.kind === 'missing') return {steps: [], reason: 'already absent'};
      return {steps: [{kind: 'exec', cmd: argv('groupdel', '--', n)}], reason: `remove group ${n} (gid ${have.gid})`};
    }
    if (have.kind === 'missing') {
      const words = ['groupadd', ...(a.system ? ['--system'] : []), ...(a.gid !== undefined ? ['--gid', String(a.gid)] : []), '--', n];
      return {steps: [{kind: 'exec', cmd: argv(...words)}], reason: `create group ${n}`};
    }
    if (a.gid !== undefined && a.gid !== have.gid) {
      return {steps: [{kind: 'exec', cmd: argv('groupmod', '--gid', String(a.gid), '--', n)}], reason: `gid ${have.gid} → ${a.gid}`};
    }
    return {steps: [], reason: `group ${n} present (gid ${have.gid})`};
  },
};

/** A local user account. */
export const user = (args: ArgsOf<UserArgs>, options?: TaskOptions): Task => makeTask(userModule, args, options);
/** A local group. */
export const group = (args: ArgsOf<GroupArgs>, options?: TaskOptions): Task => makeTask(groupModule, args, options);

void [userInSync, groupInSync];
