/**
 * The system modules on real lab hosts (real systemd, real apt through the lab's cache), which the
 * controller cannot be used for: sysctl, mount, systemdUnit (unit, timer, drop-in), hostname,
 * timezone, cron, aptRepository, and reboot in the middle of a play. Each: the first run changes, the
 * second changes nothing, --check with other values reports the change and leaves the host as it was.
 */
import test from 'ava';
import {join} from 'node:path';
import {cfg, inventory, isRoot, provision, recapOf as labRecap, root, ssh, type Recap} from '../helpers/lab.ts';

const web = cfg.hosts.filter((h) => h.groups.includes('webservers'));


const playbook = (name: string): string => join(root, 'test/fixtures/project/playbooks', `${name}.ts`);

const recapOf = (out: string): Recap => labRecap(out).hosts;
const changedTasks = (out: string): string[] => out.split('\n').filter((l) => l.includes('"type":"result"') && l.includes('"status":"changed"')).map((l) => (JSON.parse(l) as {host: string; task: string}).host + ': ' + (JSON.parse(l) as {task: string}).task);

/** What the modules change on a host, read by hand. */
const state = [
  'sysctl -n net.core.somaxconn', 'cat /etc/sysctl.d/60-provision-e2e.conf 2>/dev/null', 'findmnt -n -o SOURCE,FSTYPE,OPTIONS /mnt/provision-e2e || echo unmounted',
  'grep provision-e2e /etc/fstab || echo no-fstab', 'cat /etc/systemd/system/provision-e2e.timer 2>/dev/null | sha256sum', 'systemctl is-active provision-e2e.timer || true',
  'systemctl show -p Environment ssh.service', 'hostname', 'cat /etc/hostname', 'readlink /etc/localtime', 'crontab -l 2>/dev/null || true',
  'cat /etc/apt/sources.list.d/provision-e2e.sources 2>/dev/null | sha256sum', 'sha256sum /etc/apt/keyrings/provision-e2e.gpg 2>/dev/null || true',
].join('; echo ---; ');

const t = isRoot ? test.serial : test.serial.skip;
if (!isRoot) test.skip('the module e2e tests (skipped: they need root on Linux)', () => undefined);

const figures: string[] = [];
test.after.always(async () => {
  if (figures.length) console.log(`\nmodule figures:\n  ${figures.join('\n  ')}`);
  if (isRoot && !process.env.PROVISION_E2E_KEEP_LAB) await provision('lab', 'down', '-i', inventory);
});

t('lab up: fresh web servers', async (tt) => {
  await provision('lab', 'down', '-i', inventory);
  const r = await provision('lab', 'up', '-i', inventory);
  tt.is(r.code, 0, r.stderr + r.stdout);
});

t('the system modules: the first run changes each host, the second nothing; the host is as the tasks say', async (tt) => {
  const first = await provision('run', playbook('lab-modules'), '-i', inventory, '--limit', 'webservers', '--json');
  tt.is(first.code, 0, first.stdout.slice(-4000) + first.stderr);
  figures.push(`system modules, first run on ${web.length} hosts: ${(first.ms / 1000).toFixed(1)} s`);
  for (const h of web) tt.is(recapOf(first.stdout)[h.name]?.changed, 11, `${h.name}: every task changed (${changedTasks(first.stdout).join(', ')})`);

  const second = await provision('run', playbook('lab-modules'), '-i', inventory, '--limit', 'webservers', '--json');
  tt.is(second.code, 0, second.stderr);
  for (const h of web) tt.is(recapOf(second.stdout)[h.name]?.changed, 0, `${h.name}: ${changedTasks(second.stdout).join(', ')}`);

  for (const h of web) {
    const s = (await ssh(h, state)).stdout.split('---\n').map((x) => x.trim());
    tt.is(s[0], '1024', 'running sysctl value');
    tt.is(s[1], 'net.core.somaxconn = 1024', 'its file in /etc/sysctl.d');
    tt.regex(s[2] ?? '', /^tmpfs\s+tmpfs\s+rw,.*size=8192k/);
    tt.regex(s[3] ?? '', /^tmpfs\s+\/mnt\/provision-e2e\s+tmpfs\s+size=8m\s+0\s+0$/);
    tt.is(s[5], 'active', 'the timer runs');
    tt.regex(s[6] ?? '', /PROVISION_E2E=1/, 'the drop-in is merged into ssh.service');
    tt.is(s[7], `${h.name}.lab.test`);
    tt.is(s[8], `${h.name}.lab.test`);
    tt.regex(s[9] ?? '', /zoneinfo\/Europe\/Paris$/);
    tt.regex(s[10] ?? '', /#provision: provision e2e\n7 \* \* \* \* true/);
  }
  // apt verifies the new source's InRelease with the key of Signed-By, through the lab's cache.
  const apt = await ssh(web[0]!, 'apt-get update -q 2>&1 | tail -3; apt-cache policy | grep -c "bookworm-backports/main"');
  tt.is(apt.code, 0, apt.stdout);
  tt.regex(apt.stdout, /\n[1-9]\d*\n?$/, apt.stdout);
});

t('--check with other values reports every change and leaves the hosts exactly as they were', async (tt) => {
  const before = await Promise.all(web.map((h) => ssh(h, state)));
  const r = await provision('run', playbook('lab-modules'), '-i', inventory, '--limit', 'webservers', '--check', '--json',
    '-e', 'somaxconn=2048', '-e', 'mount_opts=size=16m', '-e', 'tick=2h', '-e', 'new_hostname=renamed', '-e', 'tz=UTC', '-e', 'minute=9');
  tt.is(r.code, 0, r.stderr);
  for (const h of web) {
    const changed = changedTasks(r.stdout).filter((x) => x.startsWith(`${h.name}: `)).map((x) => x.slice(h.name.length + 2));
    tt.deepEqual(changed.sort(), ['cron provision e2e (root)', 'hostname renamed', 'mount /mnt/provision-e2e (mounted)', 'sysctl net.core.somaxconn = 2048', 'systemd_unit provision-e2e.timer', 'timezone UTC'].sort());
  }
  const after = await Promise.all(web.map((h) => ssh(h, state)));
  web.forEach((h, i) => tt.is(after[i]!.stdout, before[i]!.stdout, `${h.name} unchanged by --check`));
});

t('reboot in the middle of a play: the host comes back (new boot id), the play goes on, and what the modules set survives the boot', async (tt) => {
  const r = await provision('run', playbook('lab-reboot'), '-i', inventory, '--limit', 'webservers', '--json');
  tt.is(r.code, 0, r.stdout.slice(-3000) + r.stderr);
  figures.push(`reboot of ${web.length} hosts in one play: ${(r.ms / 1000).toFixed(1)} s (CLI wall, with loading)`);
  for (const h of web) {
    tt.is(recapOf(r.stdout)[h.name]?.changed, 3);
    const s = await ssh(h, 'cat /var/tmp/provision-e2e.boot-before /var/tmp/provision-e2e.boot-after; echo ---; findmnt -n -o FSTYPE /mnt/provision-e2e; hostname; systemctl is-active provision-e2e.timer');
    const [ids = '', rest = ''] = s.stdout.split('---\n');
    const [before, after] = ids.trim().split('\n');
    tt.truthy(before);
    tt.not(before, after, `${h.name}: a new boot`);
    tt.deepEqual(rest.trim().split('\n'), ['tmpfs', `${h.name}.lab.test`, 'active'], `${h.name}: the fstab mount, the name and the timer after the boot`);
  }
  const again = await provision('run', playbook('lab-modules'), '-i', inventory, '--limit', 'webservers', '--json');
  for (const h of web) tt.is(recapOf(again.stdout)[h.name]?.changed, 0, `${h.name} after the reboot: ${changedTasks(again.stdout).join(', ')}`);
});
