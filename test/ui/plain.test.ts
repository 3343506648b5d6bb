/** The plain writer (not a terminal, or --no-tui): Ansible-like lines from scripted run events. */
import test from 'ava';
import type {RunEvent} from '../../src/core/events.ts';
import {Secrets} from '../../src/core/secret.ts';
import {plainWriter, unifiedDiff} from '../../src/ui/plain.ts';
import {script} from './script.ts';

function plain(events: readonly RunEvent[], o: {verbose?: number; color?: boolean; secrets?: Secrets} = {}): string {
  let out = '';
  const emit = plainWriter((s) => (out += s), {verbose: o.verbose ?? 0, color: o.color ?? false, secrets: o.secrets ?? new Secrets()});
  for (const e of events) emit(e);
  return out;
}

test('a normal run: PLAY and TASK headers, a line per host result, the recap', (t) => {
  const out = plain(script({hosts: 2, tasks: 4}));
  t.regex(out, /^PLAY \[web servers\] \*{3,}$/m);
  t.regex(out, /^TASK \[nginx : config dir\] \*{3,}$/m);
  t.regex(out, /^changed: \[web1\]$/m);
  t.regex(out, /^ok: \[web2\]$/m);
  t.regex(out, /^PLAY RECAP \*{3,}$/m);
  t.regex(out, /^web1 : ok=1 +changed=3 +unreachable=0 +failed=0 +skipped=0$/m);
  t.regex(out, /^finished in 12\.35 s$/m);
  t.notRegex(out, /\x1b\[/, 'no colour unless asked');
});

test('a failure: the message, the command, rc and both outputs', (t) => {
  const out = plain(script({hosts: 2, tasks: 4, fail: {web2: 3}}));
  t.regex(out, /^fatal: \[web2\]: FAILED! => exit 2: nginx: \[emerg\] unknown directive "lsten"\n {2}cmd: nginx -t -c \/etc\/nginx\/nginx\.conf\n {2}rc: 2\n {2}stderr: nginx: \[emerg\] unknown directive "lsten" in \/etc\/nginx\/sites-enabled\/app:3\n {10}nginx: configuration file/m);
  t.regex(out, /^web2 : ok=0 +changed=2 +unreachable=0 +failed=1 +skipped=0$/m);
});

test('an unreachable host', (t) => {
  const out = plain(script({hosts: 2, tasks: 2, unreachable: ['web1']}));
  t.regex(out, /^fatal: \[web1\]: UNREACHABLE! => ssh: connect to host web1 port 22: Connection refused$/m);
  t.regex(out, /^web1 : ok=0 +changed=0 +unreachable=1 /m);
});

test('check mode: the banner, "would change", pending results, and the recap note', (t) => {
  const out = plain(script({hosts: 1, tasks: 3, check: true}));
  t.regex(out, /^CHECK MODE: nothing is changed; "changed" means "would change"$/m);
  t.regex(out, /^would change: \[web1\]$/m);
  t.regex(out, /^would change: \[web1\] \(rests on an earlier would-change\)$/m);
  t.regex(out, /\(check mode: nothing was changed\)$/m);
});

test('--diff: a unified diff under the change; -v: the reason; handlers; interrupted', (t) => {
  const events = script({hosts: 1, tasks: 3, diff: true, interrupted: true});
  const out = plain(events, {verbose: 1});
  t.regex(out, /^--- before: \/etc\/nginx\/app\.conf\n\+\+\+ after: \/etc\/nginx\/app\.conf\n@@ -1,2 \+1,2 @@\n-port=80\n\+port=8080\n workers=2$/m);
  t.regex(out, /^changed: \[web1\] \(changed\)$/m);
  t.regex(out, /^INTERRUPTED after 12\.35 s$/m);
  const h = plain([{type: 'task', play: 'p', name: 'restart app', role: 'demo', handler: true}]);
  t.regex(h, /^RUNNING HANDLER \[demo : restart app\] \*{3,}$/m);
  t.is(unifiedDiff({before: 'a\n', after: 'a\n'}).includes('@@'), false);
});

test('secrets are masked and colours come on when asked', (t) => {
  const secrets = new Secrets();
  secrets.add('hunter2-plain');
  const events: RunEvent[] = [
    {type: 'task', play: 'p', name: 'login', role: null},
    {type: 'result', host: 'h1', task: 'login', play: 'p', role: null, status: 'failed', duration_ms: 1, diff: null, msg: 'bad password hunter2-plain', pending: false, cmd: 'login --password hunter2-plain', stdout: '', stderr: 'denied', rc: 1},
  ];
  const out = plain(events, {color: true, secrets});
  t.notRegex(out, /hunter2-plain/);
  t.regex(out, /FAILED! => bad password \*\*\*/);
  t.regex(out, /cmd: login --password \*\*\*/);
  t.regex(out, /\x1b\[31m/);
});

test('-v: a change shows the output its command printed, when the result carries it; without -v, only the line', (t) => {
  const events: RunEvent[] = [
    {type: 'task', play: 'p', name: 'migrate', role: null},
    {type: 'result', host: 'h1', task: 'migrate', play: 'p', role: null, status: 'changed', duration_ms: 1, diff: null, msg: 'ran', pending: false, stdout: 'applied 0001\napplied 0002\n', stderr: 'warning: slow\n', rc: 0},
    {type: 'result', host: 'h2', task: 'migrate', play: 'p', role: null, status: 'changed', duration_ms: 1, diff: null, msg: 'ran', pending: false, stdout: '', stderr: ''},
  ];
  t.regex(plain(events, {verbose: 1}), /^changed: \[h1\] \(ran\)\n {2}stdout: applied 0001\n {10}applied 0002\n {2}stderr: warning: slow\nchanged: \[h2\] \(ran\)\n$/m);
  const quiet = plain(events);
  t.regex(quiet, /^changed: \[h1\]\nchanged: \[h2\]\n$/m);
  t.notRegex(quiet, /stdout|stderr/);
});

test('-vvv: each command a task sent, where and how it ended, indented; not below -vvv', (t) => {
  const events: RunEvent[] = [
    {type: 'task', play: 'p', name: 'drain', role: null},
    {type: 'command', host: 'web1', task: 'drain', on: 'lb1', phase: 'apply', cmd: 'echo drain\nsocat stdio /run/haproxy/admin.sock', rc: 0, duration_ms: 12},
  ];
  t.regex(plain(events, {verbose: 3}), /^<web1> \(on lb1\) apply rc=0 12ms\n {4}echo drain\n {4}socat stdio \/run\/haproxy\/admin\.sock$/m);
  t.notRegex(plain(events, {verbose: 2}), /socat/);
});
