/**
 * Module arguments and task options checked at run time (src/core/validate.ts), for every task function
 * of the public API: what a JavaScript user or a cast can get past the compiler is refused with one line
 * naming the field. Fixed arguments are checked when the task is made (`task.problems()`), arguments
 * computed per host when it is bound (`task.bind(ctx)` throws the same line).
 */
import test from 'ava';
import {Secret} from '../../src/core/secret.ts';
import {
  apt, command, copy, file, group, lineinfile, mysqlDatabase, mysqlReplica, mysqlUser, secret, service, shell, template,
  ufwDefault, ufwRule, ufwRules, ufwState, user,
  type Task, type TaskContext,
} from '../../src/index.ts';

/** A task function that takes anything: the rows hand it what a JavaScript user might write. */
type Loose = (args: unknown, options?: unknown) => Task;
const loose = (f: (args: never, options?: never) => Task): Loose => f as unknown as Loose;

/** One host's context: enough for `bind` (the args function, `toArgs`, the module's probe). */
const ctx: TaskContext = {
  host: 'web1',
  vars: {},
  facts: {} as TaskContext['facts'],
  groups: {},
  groupNames: [],
  hostvars: () => ({results: {}}),
  results: {},
  check: false,
  render: () => 'rendered\n',
  readFile: () => Buffer.from('file\n'),
  secret: (v) => new Secret(v),
};


interface Row {
  readonly name: string;
  readonly task: Loose;
  /** A call that must pass. */
  readonly valid: object;
  /** One key misspelt: `key` is the typo, `hint` the real key. */
  readonly typo: {readonly args: object; readonly key: string; readonly hint: string};
  /** A value outside an enum, and the exact problem line (absent: the arguments have no enum). */
  readonly badEnum?: {readonly args: object; readonly problem: string};
  /** A required field left out, and the field. */
  readonly missing: {readonly args: object; readonly field: string};
}

const rows: readonly Row[] = [
  {
    name: 'file',
    task: loose(file),
    valid: {path: '/etc/app', state: 'directory', mode: '0755', owner: 'app'},
    typo: {args: {path: '/etc/app', state: 'directory', mod: '0755'}, key: 'mod', hint: 'mode'},
    badEnum: {args: {path: '/etc/app', state: 'dir'}, problem: "state: expected one of 'file', 'directory', 'link', 'absent', 'touch', got 'dir'"},
    missing: {args: {state: 'directory'}, field: 'path'},
  },
  {
    name: 'copy',
    task: loose(copy),
    valid: {dest: '/etc/motd', content: 'hello\n', mode: '0644'},
    typo: {args: {dest: '/etc/motd', content: 'hello\n', valdiate: 'true %s'}, key: 'valdiate', hint: 'validate'},
    missing: {args: {content: 'hello\n'}, field: 'dest'},
    // copy's schema is a union (content | src): when every alternative fails, validate.ts reports the
    // union as a whole ("expected string, got {...}"), not the problem of the alternative that nearly matched.
  },
  {
    name: 'template',
    task: loose(template),
    valid: {src: 'nginx.conf.mustache', dest: '/etc/nginx/nginx.conf', vars: {port: 80}},
    typo: {args: {src: 'nginx.conf.mustache', dest: '/etc/nginx/nginx.conf', varz: {}}, key: 'varz', hint: 'vars'},
    missing: {args: {dest: '/etc/nginx/nginx.conf'}, field: 'src'},
  },
  {
    name: 'lineinfile',
    task: loose(lineinfile),
    valid: {path: '/etc/hosts', line: '127.0.1.1 web1', regexp: '^127\\.0\\.1\\.1'},
    typo: {args: {path: '/etc/hosts', line: '127.0.1.1 web1', regxp: '^127'}, key: 'regxp', hint: 'regexp'},
    badEnum: {args: {path: '/etc/hosts', state: 'gone'}, problem: "state: expected one of 'present', 'absent', got 'gone'"},
    missing: {args: {line: '127.0.1.1 web1'}, field: 'path'},
  },
  {
    name: 'command',
    task: loose(command),
    valid: {argv: ['mysqladmin', '--password', secret('pw'), 'ping'], creates: '/var/lib/mysql/ok'},
    typo: {args: {argv: ['true'], chdr: '/tmp'}, key: 'chdr', hint: 'chdir'},
    missing: {args: {chdir: '/tmp'}, field: 'argv'},
  },
  {
    name: 'shell',
    task: loose(shell),
    valid: {script: 'echo hi > /tmp/hi', unless: 'test -e /tmp/hi'},
    typo: {args: {script: 'true', creats: '/tmp/hi'}, key: 'creats', hint: 'creates'},
    missing: {args: {creates: '/tmp/hi'}, field: 'script'},
  },
  {
    name: 'apt',
    task: loose(apt),
    valid: {packages: ['nginx', 'curl'], state: 'latest', updateCache: true, cacheValidTime: 600},
    typo: {args: {packages: 'nginx', stat: 'present'}, key: 'stat', hint: 'state'},
    badEnum: {args: {packages: 'nginx', state: 'installed'}, problem: "state: expected one of 'present', 'absent', 'latest', got 'installed'"},
    missing: {args: {state: 'present'}, field: 'packages'},
  },
  {
    name: 'service',
    task: loose(service),
    valid: {name: 'nginx', state: 'started', enabled: true, daemonReload: true},
    typo: {args: {name: 'nginx', enabeld: true}, key: 'enabeld', hint: 'enabled'},
    badEnum: {args: {name: 'nginx', state: 'running'}, problem: "state: expected one of 'started', 'stopped', 'restarted', 'reloaded', got 'running'"},
    missing: {args: {state: 'started'}, field: 'name'},
  },
  {
    name: 'user',
    task: loose(user),
    valid: {name: 'deploy', uid: 1001, group: 'deploy', groups: ['sudo'], shell: '/bin/bash'},
    typo: {args: {name: 'deploy', shel: '/bin/bash'}, key: 'shel', hint: 'shell'},
    badEnum: {args: {name: 'deploy', state: 'removed'}, problem: "state: expected one of 'present', 'absent', got 'removed'"},
    missing: {args: {uid: 1001}, field: 'name'},
  },
  {
    name: 'group',
    task: loose(group),
    valid: {name: 'deploy', gid: 1001, system: false},
    typo: {args: {name: 'deploy', sytem: true}, key: 'sytem', hint: 'system'},
    badEnum: {args: {name: 'deploy', state: 'gone'}, problem: "state: expected one of 'present', 'absent', got 'gone'"},
    missing: {args: {gid: 1001}, field: 'name'},
  },
  {
    name: 'ufwRule',
    task: loose(ufwRule),
    valid: {rule: 'allow', port: 22, proto: 'tcp', from: '10.0.0.0/24', comment: 'ssh'},
    typo: {args: {rule: 'allow', port: 22, prot: 'tcp'}, key: 'prot', hint: 'proto'},
    badEnum: {args: {rule: 'accept', port: 22}, problem: "rule: expected one of 'allow', 'deny', 'reject', 'limit', got 'accept'"},
    missing: {args: {port: 22, proto: 'tcp'}, field: 'rule'},
    // A missing enum field is reported as "rule: expected one of …, got undefined" (zod's invalid_value).
  },
  {
    name: 'ufwRules',
    task: loose(ufwRules),
    valid: {rules: [{rule: 'allow', port: 22, proto: 'tcp'}, {rule: 'limit', port: '8000:8100', proto: 'udp'}], prune: {commentPrefix: 'provision:'}},
    typo: {args: {rules: [], prun: true}, key: 'prun', hint: 'prune'},
    badEnum: {
      args: {rules: [{rule: 'allow', proto: 'icmp'}]},
      problem: "rules.0.proto: expected one of 'any', 'tcp', 'udp', 'vrrp', 'esp', 'ah', 'gre', 'igmp', 'ipv6', got 'icmp'",
    },
    missing: {args: {prune: true}, field: 'rules'},
  },
  {
    name: 'ufwDefault',
    task: loose(ufwDefault),
    valid: {direction: 'incoming', policy: 'deny'},
    typo: {args: {direction: 'incoming', polcy: 'deny'}, key: 'polcy', hint: 'policy'},
    badEnum: {args: {direction: 'incoming', policy: 'drop'}, problem: "policy: expected one of 'allow', 'deny', 'reject', got 'drop'"},
    missing: {args: {direction: 'incoming'}, field: 'policy'},
    // As for ufwRule: both fields are enums.
  },
  {
    name: 'ufwState',
    task: loose(ufwState),
    valid: {enabled: true, requirePort: false},
    typo: {args: {enabled: true, requirePrt: 2222}, key: 'requirePrt', hint: 'requirePort'},
    missing: {args: {requirePort: 22}, field: 'enabled'},
  },
  {
    name: 'mysqlDatabase',
    task: loose(mysqlDatabase),
    valid: {name: 'app', charset: 'utf8mb4', collation: 'utf8mb4_unicode_ci'},
    typo: {args: {name: 'app', charst: 'utf8mb4'}, key: 'charst', hint: 'charset'},
    badEnum: {args: {name: 'app', state: 'dropped'}, problem: "state: expected one of 'present', 'absent', got 'dropped'"},
    missing: {args: {charset: 'utf8mb4'}, field: 'name'},
  },
  {
    name: 'mysqlUser',
    task: loose(mysqlUser),
    valid: {name: 'app', host: ['10.0.0.%', 'localhost'], password: secret('app-pw'), privileges: ['app.*:ALL'], exclusive: true},
    typo: {args: {name: 'app', privilges: ['app.*:ALL']}, key: 'privilges', hint: 'privileges'},
    badEnum: {args: {name: 'app', state: 'gone'}, problem: "state: expected one of 'present', 'absent', got 'gone'"},
    missing: {args: {password: 'app-pw'}, field: 'name'},
  },
  {
    name: 'mysqlReplica',
    task: loose(mysqlReplica),
    valid: {primaryHost: 'db1', user: 'repl', password: secret('repl-pw'), flavor: 'mariadb', useGtid: 'current_pos', connectRetry: 5},
    typo: {args: {primaryHost: 'db1', user: 'repl', password: 'repl-pw', flavour: 'mysql'}, key: 'flavour', hint: 'flavor'},
    badEnum: {args: {primaryHost: 'db1', user: 'repl', password: 'repl-pw', flavor: 'percona'}, problem: "flavor: expected one of 'mariadb', 'mysql', got 'percona'"},
    missing: {args: {primaryHost: 'db1', user: 'repl'}, field: 'password'},
  },
];


for (const row of rows) {
  test(`${row.name}: a valid call has no problems`, (t) => {
    t.deepEqual(row.task(row.valid).problems(), []);
  });

  test(`${row.name}: valid arguments computed per host bind`, (t) => {
    const task = row.task(() => row.valid);
    t.deepEqual(task.problems(), []);
    t.is(typeof task.bind(ctx).label, 'string');
  });

  test(`${row.name}: an unknown key names it and the key meant`, (t) => {
    const found = row.task(row.typo.args).problems();
    t.true(found.includes(`unknown argument '${row.typo.key}' (did you mean '${row.typo.hint}'?)`), found.join('\n'));
  });

  test(`${row.name}: a missing required field is named`, (t) => {
    t.deepEqual(row.task(row.missing.args).problems(), [`${row.missing.field}: required`]);
  });

  const badEnum = row.badEnum;
  if (badEnum) {
    test(`${row.name}: a value outside the enum lists the allowed ones`, (t) => {
      t.deepEqual(row.task(badEnum.args).problems(), [badEnum.problem]);
    });
  }

  test(`${row.name}: wrong arguments computed per host fail at bind with the same line`, (t) => {
    const fixed = row.task(row.typo.args).problems();
    t.true(fixed.length > 0);
    const task = row.task(() => row.typo.args);
    t.deepEqual(task.problems(), []);
    t.throws(() => task.bind(ctx), {instanceOf: Error, message: fixed.join('; ')});
  });
}

// ---------------------------------------------------------------- the format, pinned

test('a misspelt required key: both problems, one line each', (t) => {
  t.deepEqual(file({pth: '/x', state: 'file'} as never).problems(), ['path: required', "unknown argument 'pth' (did you mean 'path'?)"]);
});

test('an unknown task option is refused with the option meant', (t) => {
  const task = file({path: '/x', state: 'file'}, {notfiy: 'x'} as never);
  t.deepEqual(task.problems(), ["unknown task option 'notfiy' (did you mean 'notify'?)"]);
});

test('an unknown key too far from any real key gets no hint', (t) => {
  t.deepEqual(service({name: 'nginx', xyzzy: true} as never).problems(), ["unknown argument 'xyzzy'"]);
});

test('function arguments: no problem when made, the same one line when bound', (t) => {
  const task = file(() => ({pth: '/x', state: 'file'}) as never);
  t.deepEqual(task.problems(), []);
  t.throws(() => task.bind(ctx), {instanceOf: Error, message: "path: required; unknown argument 'pth' (did you mean 'path'?)"});
});

test('copy from a file of the role is valid too', (t) => {
  t.deepEqual(copy({dest: '/etc/motd', src: 'motd'}).problems(), []);
});

const wrongTypes: readonly [string, () => Task, readonly string[]][] = [
  ['a number among argv words', () => command({argv: ['echo', 1]} as never), ['argv.1: expected string or Secret, got 1']],
  ['packages as a number', () => apt({packages: 3} as never), ['packages: expected string or array, got 3']],
  ['a fractional cacheValidTime', () => apt({packages: 'nginx', cacheValidTime: 1.5}), ['cacheValidTime: expected int, got 1.5']],
  ['a negative uid', () => user({name: 'deploy', uid: -1}), ['uid: expected 0 or more']],
  ['a boolean as a group', () => user({name: 'deploy', group: true} as never), ['group: expected string or number, got true']],
  ['enabled as a string', () => service({name: 'nginx', enabled: 'yes'} as never), ["enabled: expected boolean, got 'yes'"]],
  ['requirePort: true', () => ufwState({enabled: true, requirePort: true} as never), ['requirePort: expected number or false, got true']],
  ['prune as a string', () => ufwRules({rules: [], prune: 'yes'} as never), ["prune: expected boolean or object, got 'yes'"]],
  ['a number as a password', () => mysqlUser({name: 'app', password: 3} as never), ['password: expected Secret or string, got 3']],
  ['a string where an object goes', () => file('/etc/app' as never), ["expected object, got '/etc/app'"]],
];

for (const [what, make, want] of wrongTypes) {
  test(`a wrong type is named: ${what}`, (t) => {
    t.deepEqual(make().problems(), want);
  });
}

// ---------------------------------------------------------------- unions, nested keys

// copy's arguments are a union (content or src): the closest alternative's problems are named.
test('a misspelt required key of copy names it and the key meant', (t) => {
  const found = copy({dset: '/etc/motd', content: 'hello\n'} as never).problems();
  t.true(found.includes("unknown argument 'dset' (did you mean 'dest'?)"), found.join('\n'));
});

// Unknown keys inside an array element are looked up in the element's schema.
test('a misspelt key inside ufwRules rules names the key meant', (t) => {
  t.deepEqual(ufwRules({rules: [{rule: 'allow', prot: 'tcp'}]} as never).problems(), ["unknown argument 'rules.0.prot' (did you mean 'proto'?)"]);
});

// A union of boolean and object: the object alternative's own problem is named.
test('a misspelt key inside prune names the key meant', (t) => {
  const found = ufwRules({rules: [], prune: {commentPrefx: 'provision:'}} as never).problems();
  t.true(found.some((p) => p.includes('commentPrefx') && p.includes("did you mean 'commentPrefix'")), found.join('\n'));
});
