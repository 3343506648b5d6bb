import test from 'ava';
import {createHash} from 'node:crypto';
import {writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {FileState} from '../../src/facts/file.ts';
import type {Plan} from '../../src/core/types.ts';
import {editFstab, fstabLine, mount, mountModule, parseFindmnt, type MountArgs, type MountState} from '../../src/modules/mount.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const steps = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind === 'write' ? `write ${s.dest} ${s.mode}` : ''));
const fileOf = (text: string): FileState => ({kind: 'file', size: text.length, sha256: createHash('sha256').update(text).digest('hex'), content: Buffer.from(text), mode: 0o644, owner: 'root', group: 'root'});
const base = 'UUID=1234 / ext4 errors=remount-ro 0 1\n# data\n';
const line = '/dev/sdb1 /srv/data ext4 noatime 0 2';
const args: MountArgs = {path: '/srv/data', src: '/dev/sdb1', fstype: 'ext4', opts: ['noatime'], passno: 2, state: 'mounted'};
const on = {kind: 'mounted', source: '/dev/sdb1', fstype: 'ext4', options: 'rw,noatime'} as const;
const st = (fstab: string, mounted: MountState['mounted'] = {kind: 'none'}): MountState => ({fstab: fileOf(fstab), mounted});

test('fstabLine, editFstab, parseFindmnt', (t) => {
  t.is(fstabLine(args), line);
  t.is(fstabLine({path: '/mnt/my disk/', src: 'LABEL=a b', fstype: 'vfat', state: 'present'}), 'LABEL=a\\040b /mnt/my\\040disk vfat defaults 0 0');
  t.is(editFstab(base, '/srv/data', line), `${base}${line}\n`);
  t.is(editFstab(`${base}/dev/sdc1 /srv/data xfs defaults 0 0\n/dev/sdd1  /srv/data/ xfs defaults\n`, '/srv/data', line), `${base}${line}\n`, 'first replaced, duplicates dropped');
  t.is(editFstab(`${base}/dev/sdb1\t/srv/data  ext4 noatime 0 2\n`, '/srv/data', line), `${base}/dev/sdb1\t/srv/data  ext4 noatime 0 2\n`, 'same fields: kept as written');
  t.is(editFstab(`${base}${line}\n`, '/srv/data', undefined), base);
  t.is(editFstab('', '/a', 'x /a t defaults 0 0'), 'x /a t defaults 0 0\n');
  t.deepEqual(parseFindmnt('SOURCE="/dev/sdb1" FSTYPE="ext4" OPTIONS="rw,relatime"\n'), {kind: 'mounted', source: '/dev/sdb1', fstype: 'ext4', options: 'rw,relatime'});
  t.deepEqual(parseFindmnt(''), {kind: 'none'});
});

const F = '/etc/fstab';
const cases: {title: string; have: MountState; args: MountArgs; steps: string[]; diff?: boolean; reason: RegExp}[] = [
  {title: 'missing → fstab line, mkdir, mount', have: st(base), args, steps: [`write ${F} 0644`, 'mkdir -p -- /srv/data', 'mount -- /srv/data'], diff: true, reason: /^set the \/etc\/fstab line of \/srv\/data; mount \/srv\/data$/},
  {title: 'drifted options while mounted → fstab, remount', have: st(`${base}/dev/sdb1 /srv/data ext4 defaults 0 2\n`, on), args, steps: [`write ${F} 0644`, 'mount -o remount -- /srv/data'], diff: true, reason: /remount \/srv\/data$/},
  {title: 'another file system mounted there → umount, mount', have: st(`${base}${line}\n`, {...on, source: '/dev/sdc1'}), args, steps: ['umount -- /srv/data', 'mount -- /srv/data'], reason: /^unmount \/dev\/sdc1/},
  {title: 'converged → nothing', have: st(`${base}${line}\n`, on), args, steps: [], reason: /mounted, \/etc\/fstab up to date/},
  {title: 'UUID source: not compared with the device findmnt shows', have: st(`${base}UUID=9 /srv/data ext4 noatime 0 2\n`, on), args: {...args, src: 'UUID=9'}, steps: [], reason: /up to date/},
  {title: 'a bind mount: findmnt\'s [/subdir] ignored', have: st(`${base}/srv/x /srv/data none bind 0 0\n`, {kind: 'mounted', source: '/srv/x[/y]', fstype: 'none', options: 'rw'}), args: {path: '/srv/data', src: '/srv/x', fstype: 'none', opts: 'bind', state: 'mounted'}, steps: [], reason: /up to date/},
  {title: 'present → fstab only, never mounts', have: st(base), args: {...args, state: 'present'}, steps: [`write ${F} 0644`], diff: true, reason: /^set/},
  {title: 'unmounted while mounted → umount, fstab untouched', have: st(`${base}${line}\n`, on), args: {path: '/srv/data', state: 'unmounted'}, steps: ['umount -- /srv/data'], reason: /^unmount \/srv\/data$/},
  {title: 'unmounted and not mounted → nothing', have: st(base), args: {path: '/srv/data', state: 'unmounted'}, steps: [], reason: /not mounted/},
  {title: 'absent while mounted → umount, then the line removed', have: st(`${base}${line}\n`, on), args: {path: '/srv/data', state: 'absent'}, steps: ['umount -- /srv/data', `write ${F} 0644`], diff: true, reason: /^unmount \/srv\/data; remove/},
  {title: 'absent and gone → nothing', have: st(base), args: {path: '/srv/data', state: 'absent'}, steps: [], reason: /not mounted, not in/},
];
for (const c of cases) {
  test(`mount plan: ${c.title}`, (t) => {
    const plan = mountModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(steps(plan), c.steps);
    t.regex(plan.reason ?? '', c.reason);
    t.is(plan.diff !== undefined, c.diff ?? false);
  });
}

test('mount plan fails: relative path, no src, no fstype', (t) => {
  t.regex(mountModule.plan(st(base), {...args, path: 'srv'}).fail ?? '', /absolute/);
  t.regex(mountModule.plan(st(base), {...args, src: undefined}).fail ?? '', /needs src/);
  t.regex(mountModule.plan(st(base), {...args, fstype: undefined}).fail ?? '', /needs fstype/);
});

// ---- check mode through the engine: fstab a temp file, findmnt a script reading $FAKE/mounted

const tools = {findmnt: 'cat "$FAKE/mounted"', mount: 'exit 99', umount: 'exit 99'};
const checkCases: {title: string; fstab: string; mounted: string; args: Omit<MountArgs, 'fstab'>; status: 'changed' | 'ok'; msg: string; cmds: (f: string) => string[]}[] = [
  {title: 'missing → would write fstab and mount', fstab: base, mounted: '', args, status: 'changed', msg: 'would set the {f} line of /srv/data; mount /srv/data', cmds: (f) => [`write ${f}: ${base}${line}\n`, 'mkdir -p -- /srv/data', 'mount -- /srv/data']},
  {title: 'drifted → would write fstab and remount', fstab: `${base}/dev/sdb1 /srv/data ext4 defaults 0 2\n`, mounted: 'SOURCE="/dev/sdb1" FSTYPE="ext4" OPTIONS="rw"\n', args, status: 'changed', msg: 'would set the {f} line of /srv/data; remount /srv/data', cmds: (f) => [`write ${f}: ${base}${line}\n`, 'mount -o remount -- /srv/data']},
  {title: 'converged → ok', fstab: `${base}${line}\n`, mounted: 'SOURCE="/dev/sdb1" FSTYPE="ext4" OPTIONS="rw,noatime"\n', args, status: 'ok', msg: '/srv/data mounted, {f} up to date', cmds: () => []},
  {title: 'absent → would unmount and remove the line', fstab: `${base}${line}\n`, mounted: 'SOURCE="/dev/sdb1" FSTYPE="ext4" OPTIONS="rw"\n', args: {path: '/srv/data', state: 'absent'}, status: 'changed', msg: 'would unmount /srv/data; remove the {f} line of /srv/data', cmds: (f) => ['umount -- /srv/data', `write ${f}: ${base}`]},
];
for (const c of checkCases) {
  test(`mount check mode: ${c.title}`, async (t) => {
    const host = fakeHost('mount', tools, {mounted: c.mounted});
    const f = join(host.dir, 'fstab');
    writeFileSync(f, c.fstab);
    await assertCheckMode(t, host, mount({...c.args, fstab: f}), {status: c.status, msg: c.msg.replaceAll('{f}', f), cmds: c.cmds(f)});
  });
}
