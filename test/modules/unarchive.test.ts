import test from 'ava';
import {execFileSync} from 'node:child_process';
import {chmodSync, mkdirSync, utimesSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {Plan} from '../../src/core/types.ts';
import {dirModeFor, formatOf, normalEntry, parseUnarchive, unarchive, unarchiveModule, type Entry, type UnarchiveArgs, type UnarchiveState} from '../../src/modules/unarchive.ts';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';

const short = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.join(' ') : s.kind));
const stdinOf = (p: Plan, i: number): string => {
  const s = p.steps[i];
  return s?.kind === 'exec' && Buffer.isBuffer(s.stdin) ? s.stdin.toString().split('\0').filter(Boolean).join(' ') : '';
};

// ---- pure plans

const ROOT = {uid: 0, name: 'root', group: 'root'};
const at = (kind: 'file' | 'directory' | 'link', mode = kind === 'directory' ? 0o755 : 0o644, owner = 'root'): Entry['have'] => ({kind, mode, owner, group: owner});
const entry = (path: string, have: Entry['have'], differs: string[] = [], type?: Entry['type']): Entry => ({path, have, differs, ...(type ? {type} : {})});
const converged: Entry[] = [entry('app', at('directory'), [], 'directory'), entry('app/bin', at('file', 0o755)), entry('app/conf', at('file'))];
const listed = (entries: Entry[], dest: 'directory' | 'missing' | 'other' = 'directory', user = ROOT): UnarchiveState => ({kind: 'listed', dest, user, entries});

const TAR = 'tar --extract -p -C /opt/app -z -f /tmp/app.tgz';
const cases: {title: string; have: UnarchiveState; args?: Partial<UnarchiveArgs>; steps: string[]; reason?: RegExp; fail?: RegExp}[] = [
  {title: 'absent: dest empty → extract, naming how many entries differ', have: listed(converged.map((e) => entry(e.path, {kind: 'missing'}, [], e.type))), steps: [TAR], reason: /^extract \/tmp\/app\.tgz into \/opt\/app: 3 of 3 entries differ \(app: missing; app\/bin: missing; app\/conf: missing\)$/},
  {title: 'absent: dest missing, createDest → mkdir, extract', have: listed(converged.map((e) => entry(e.path, {kind: 'missing'})), 'missing'), args: {createDest: true}, steps: ['mkdir -p -- /opt/app', TAR], reason: /^create \/opt\/app and extract \/tmp\/app\.tgz \(3 entries\)$/},
  {title: 'absent: dest missing, no createDest → fails', have: listed([], 'missing'), steps: [], fail: /dest \/opt\/app does not exist \(create it first, or set createDest\)/},
  {title: 'present: converged → nothing', have: listed(converged), steps: [], reason: /^already extracted: 3 entries of \/tmp\/app\.tgz match \/opt\/app$/},
  {title: 'drifted: one file\'s content → extract, 1 of 3', have: listed([...converged.slice(0, 2), entry('app/conf', at('file'), ['mtime', 'contents'])]), steps: [TAR], reason: /: 1 of 3 entries differ \(app\/conf: mtime, contents\)$/},
  {title: 'drifted: more than three → the first three and …', have: listed([1, 2, 3, 4, 5].map((i) => entry(`f${i}`, {kind: 'missing'}))), steps: [TAR], reason: /5 of 5 entries differ \(f1: missing; f2: missing; f3: missing; …\)$/},
  {title: 'uid differs, connected as root, no owner → drift (as Ansible)', have: listed([entry('app', at('directory'), ['uid'])]), steps: [TAR], reason: /app: uid/},
  {title: 'uid differs, not root → no drift (as Ansible)', have: listed([entry('app', at('directory'), ['uid'])], 'directory', {uid: 1000, name: 'deploy', group: 'deploy'}), steps: [], reason: /^already extracted/},
  {title: 'mode differs but mode is set → chmod only that file, no extraction', have: listed([...converged.slice(0, 2), entry('app/conf', at('file', 0o600), ['mode'])]), args: {mode: '0644'}, steps: ['find -files0-from - -maxdepth 0 -type f -exec chmod 0644 {} +'], reason: /^set mode 0644 on 2 files \(\/tmp\/app\.tgz already extracted in \/opt\/app\)$/},
  {title: 'owner drifted on 2 entries → chown those only', have: listed([entry('app', at('directory', 0o755, 'app'), [], 'directory'), entry('app/bin', at('file', 0o755)), entry('app/conf', at('file'))]), args: {owner: 'app', group: 'app'}, steps: ['find -files0-from - -maxdepth 0 -exec chown -h app:app {} +'], reason: /^set owner app:app on 2 entries \(/},
  {title: 'extraction with owner and mode → chown and chmod every entry after it', have: listed([entry('app/conf', at('file'), ['size'])]), args: {owner: 'app', mode: '0640'}, steps: [TAR, 'find -files0-from - -maxdepth 0 -exec chown -h app {} +', 'find -files0-from - -maxdepth 0 -type f -exec chmod 0640 {} +', 'find -files0-from - -maxdepth 0 -type d -exec chmod 0750 {} +']},
  {title: 'zip: entries owned by another user than the connecting one → drift (as Ansible)', have: listed([entry('a.txt', at('file', 0o644, 'nobody'), [], 'file')]), args: {src: '/tmp/app.zip'}, steps: ['unzip -o -q /tmp/app.zip -d /opt/app'], reason: /a\.txt: owner, group/},
  {title: 'zip with exclude and extraOpts', have: listed([entry('a.txt', {kind: 'missing'}, [], 'file')]), args: {src: '/tmp/app.zip', exclude: ['*.log'], extraOpts: ['-X']}, steps: ['unzip -o -q -X /tmp/app.zip -x *.log -d /opt/app']},
  {title: 'tar.xz by name, exclude, extraOpts', have: listed([entry('a', {kind: 'missing'})]), args: {src: '/tmp/app.tar.xz', exclude: ['*.log'], extraOpts: ['--strip-components=1']}, steps: ['tar --extract -p -C /opt/app -J --show-transformed-names --strip-components=1 --exclude=*.log -f /tmp/app.tar.xz']},
  {title: 'creates exists → nothing', have: {kind: 'creates'}, args: {creates: '/opt/app/app/bin'}, steps: [], reason: /^\/opt\/app\/app\/bin exists$/},
  {title: 'archive missing → fails clearly', have: {kind: 'no-archive', why: 'missing'}, steps: [], fail: /^archive \/tmp\/app\.tgz does not exist on the host/},
  {title: 'archive unreadable → fails with tar\'s words', have: {kind: 'unreadable', error: 'gzip: stdin: not in gzip format'}, steps: [], fail: /cannot list \/tmp\/app\.tgz as tar\.gz: gzip: stdin: not in gzip format/},
  {title: 'dest is a file → fails', have: listed([], 'other'), steps: [], fail: /dest \/opt\/app exists and is not a directory/},
  {title: 'unknown extension, no format → fails', have: {kind: 'creates'}, args: {src: '/tmp/app.rar'}, steps: [], fail: /cannot tell the format of \/tmp\/app\.rar/},
  {title: 'relative src → fails', have: {kind: 'creates'}, args: {src: 'app.tgz'}, steps: [], fail: /src must be an absolute path/},
  {title: 'bad mode → fails', have: listed(converged), args: {mode: 'u+rw'}, steps: [], fail: /bad mode/},
];
for (const c of cases) {
  test(`unarchive plan: ${c.title}`, (t) => {
    const p = unarchiveModule.plan(c.have, {src: '/tmp/app.tgz', dest: '/opt/app', ...c.args});
    t.deepEqual(short(p), c.steps);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
    else t.is(p.fail, undefined);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
  });
}

test('unarchive plan: attribute steps get the entries\' absolute paths on stdin', (t) => {
  const p = unarchiveModule.plan(listed([entry('.', at('directory'), [], 'directory'), entry('app/conf', at('file', 0o600))]), {src: '/tmp/app.tgz', dest: '/opt/app', mode: '0644'});
  t.is(stdinOf(p, 0), '/opt/app/app/conf');
  const all = unarchiveModule.plan(listed([entry('.', {kind: 'missing'}), entry('app/conf', {kind: 'missing'})]), {src: '/tmp/app.tgz', dest: '/opt/app', owner: 'app'});
  t.is(stdinOf(all, 1), '/opt/app /opt/app/app/conf');
});

test('unarchive: format from the name, entry names, directory modes, arguments checked where written', (t) => {
  t.deepEqual(['a.tar', 'a.TGZ', 'a.tar.gz', 'a.tar.xz', 'a.txz', 'a.tar.bz2', 'a.zip', 'a.rar'].map((src) => formatOf({src})), ['tar', 'tar.gz', 'tar.gz', 'tar.xz', 'tar.xz', 'tar.bz2', 'zip', undefined]);
  t.is(formatOf({src: 'a.bin', format: 'zip'}), 'zip');
  t.deepEqual(['./', './a/', 'a//b/', 'a'].map(normalEntry), ['.', 'a', 'a/b', 'a']);
  t.deepEqual([0o644, 0o640, 0o600, 0o755].map(dirModeFor), [0o755, 0o750, 0o700, 0o755]);
  t.regex(unarchive({src: '/a.tgz', dest: '/d', format: 'rar' as 'zip'}).problems().join(), /format/);
  t.regex(unarchive({src: '/a.tgz', dest: '/d', extra: 1} as unknown as UnarchiveArgs).problems().join(), /extra/);
});

test('unarchive: the probe output parses (tar, zip, errors)', (t) => {
  const tar = parseUnarchive([
    'dest directory', 'user 0 root root', '@list', './', './a.txt', './sub/', './sub/b.txt',
    '@diff', './a.txt: Mod time differs', './a.txt: Contents differ', 'tar: ./sub/b.txt: Warning: Cannot stat: No such file or directory',
    '@stat', 'directory|755|root|root|./', 'regular file|644|root|root|./a.txt', 'directory|700|root|root|./sub/', '',
  ].join('\n'), 'tar.gz');
  t.deepEqual(tar, {kind: 'listed', dest: 'directory', user: ROOT, entries: [
    entry('.', at('directory'), [], 'directory'), entry('a.txt', at('file'), ['mtime', 'contents']),
    entry('sub', at('directory', 0o700), [], 'directory'), entry('sub/b.txt', {kind: 'missing'}),
  ]});
  const zip = parseUnarchive([
    'dest directory', 'user 0 root root', '@list', 'Archive:  /tmp/a.zip', 'Zip file size: 589 bytes, number of entries: 2',
    'drwxr-xr-x  3.0 unx        0 bx stor 20261129.130043 sub/', '-rw-r--r--  3.0 unx        6 tx stor 20261129.130043 a file.txt', '2 files, 6 bytes uncompressed, 6 bytes compressed:  0.0%',
    '@diff', 'a file.txt: Size differs', '@stat', 'directory|700|root|root|sub/', 'regular empty file|644|root|root|a file.txt', '',
  ].join('\n'), 'zip');
  t.deepEqual(zip, {kind: 'listed', dest: 'directory', user: ROOT, entries: [
    {...entry('sub', at('directory', 0o700), ['mode'], 'directory'), archiveMode: 0o755},
    {...entry('a file.txt', at('file'), ['size'], 'file'), archiveMode: 0o644},
  ]});
  t.deepEqual(parseUnarchive('creates\n', 'tar'), {kind: 'creates'});
  t.deepEqual(parseUnarchive('no-archive\n', 'tar'), {kind: 'no-archive', why: 'missing'});
  t.deepEqual(parseUnarchive('dest missing\nuser 0 root root\n@listerr 2\ngzip: stdin: not in gzip format\ntar: Child returned status 1\n', 'tar.gz'), {kind: 'unreadable', error: 'gzip: stdin: not in gzip format; tar: Child returned status 1'});
});

// ---- check mode through the engine, on fake hosts: the probe reads real archives in a temp folder

const me = (): {user: string; group: string} => ({user: execFileSync('id', ['-un']).toString().trim(), group: execFileSync('id', ['-gn']).toString().trim()});

/** A fake host holding `tree/` (a.txt, sub/b.txt), `a.tgz` and `a.zip` of it, and `dest/`; `extracted`: dest holds the tree already. */
function host(extracted: 'no' | 'tgz' | 'zip'): {handler: ReturnType<typeof fakeHost>['handler']; dir: string; src: (f: 'tgz' | 'zip') => string; dest: string} {
  const h = fakeHost('unarchive', {}, {});
  const tree = join(h.dir, 'tree');
  mkdirSync(join(tree, 'sub'), {recursive: true});
  writeFileSync(join(tree, 'a.txt'), 'alpha\n');
  writeFileSync(join(tree, 'sub', 'b.txt'), 'bravo\n');
  chmodSync(join(tree, 'a.txt'), 0o644);
  chmodSync(join(tree, 'sub', 'b.txt'), 0o644);
  chmodSync(join(tree, 'sub'), 0o755);
  execFileSync('tar', ['-C', tree, '-czf', join(h.dir, 'a.tgz'), 'a.txt', 'sub']);
  execFileSync('zip', ['-qr', join(h.dir, 'a.zip'), 'a.txt', 'sub'], {cwd: tree});
  const dest = join(h.dir, 'dest');
  mkdirSync(dest);
  if (extracted === 'tgz') execFileSync('tar', ['-xpzf', join(h.dir, 'a.tgz'), '-C', dest]);
  if (extracted === 'zip') execFileSync('unzip', ['-qo', join(h.dir, 'a.zip'), '-d', dest]);
  return {...h, src: (f) => join(h.dir, `a.${f}`), dest};
}

test('unarchive tar.gz check mode: dest empty → would extract; a real run sends tar', async (t) => {
  const h = host('no');
  await assertCheckMode(t, h, unarchive({src: h.src('tgz'), dest: h.dest}), {status: 'changed', msg: `would extract ${h.src('tgz')} into ${h.dest}: 3 of 3 entries differ (a.txt: missing; sub: missing; sub/b.txt: missing)`, cmds: [`tar --extract -p -C ${h.dest} -z -f ${h.src('tgz')}`]});
});

test('unarchive tar.gz check mode: converged → ok, nothing sent', async (t) => {
  const h = host('tgz');
  await assertCheckMode(t, h, unarchive({src: h.src('tgz'), dest: h.dest}), {status: 'ok', msg: `already extracted: 3 entries of ${h.src('tgz')} match ${h.dest}`, cmds: []});
});

test('unarchive tar.gz check mode: a file drifted → would extract, 1 of 3', async (t) => {
  const h = host('tgz');
  writeFileSync(join(h.dest, 'sub', 'b.txt'), 'BRAVO\n');
  utimesSync(join(h.dest, 'sub', 'b.txt'), 1e9, 1e9); // a time the archive's is not, even within the same second
  await assertCheckMode(t, h, unarchive({src: h.src('tgz'), dest: h.dest}), {status: 'changed', msg: `would extract ${h.src('tgz')} into ${h.dest}: 1 of 3 entries differ (sub/b.txt: mtime, contents)`, cmds: [`tar --extract -p -C ${h.dest} -z -f ${h.src('tgz')}`]});
});

test('unarchive tar.gz check mode: converged, mode drifted with mode set → would chmod only', async (t) => {
  const h = host('tgz');
  chmodSync(join(h.dest, 'a.txt'), 0o600);
  await assertCheckMode(t, h, unarchive({src: h.src('tgz'), dest: h.dest, mode: '0644'}), {status: 'changed', msg: `would set mode 0644 on 1 file (${h.src('tgz')} already extracted in ${h.dest})`, cmds: ['find -files0-from - -maxdepth 0 -type f -exec chmod 0644 \\{\\} +']});
});

test('unarchive zip check mode: dest empty → would extract; a real run sends unzip', async (t) => {
  const h = host('no');
  await assertCheckMode(t, h, unarchive({src: h.src('zip'), dest: h.dest}), {status: 'changed', msg: `would extract ${h.src('zip')} into ${h.dest}: 3 of 3 entries differ (a.txt: missing; sub: missing; sub/b.txt: missing)`, cmds: [`unzip -o -q ${h.src('zip')} -d ${h.dest}`]});
});

test('unarchive zip check mode: converged → ok, nothing sent', async (t) => {
  const h = host('zip');
  const {user, group} = me();
  await assertCheckMode(t, h, unarchive({src: h.src('zip'), dest: h.dest, owner: user, group}), {status: 'ok', msg: `already extracted: 3 entries of ${h.src('zip')} match ${h.dest}`, cmds: []});
});

test('unarchive zip check mode: same size, other content → would extract, 1 of 3', async (t) => {
  const h = host('zip');
  writeFileSync(join(h.dest, 'a.txt'), 'ALPHA\n');
  await assertCheckMode(t, h, unarchive({src: h.src('zip'), dest: h.dest}), {status: 'changed', msg: `would extract ${h.src('zip')} into ${h.dest}: 1 of 3 entries differ (a.txt: contents)`, cmds: [`unzip -o -q ${h.src('zip')} -d ${h.dest}`]});
});

test('unarchive check mode: creates exists → ok, the archive is not even read', async (t) => {
  const h = host('no');
  await assertCheckMode(t, h, unarchive({src: join(h.dir, 'nope.tgz'), dest: h.dest, creates: join(h.dir, 'tree')}), {status: 'ok', msg: `${join(h.dir, 'tree')} exists`, cmds: []});
});

test('unarchive check mode: not a gzip → failed with tar\'s words, nothing sent', async (t) => {
  const h = host('no');
  const src = join(h.dir, 'junk.tgz');
  writeFileSync(src, 'not an archive\n');
  await assertCheckMode(t, h, unarchive({src, dest: h.dest}), {status: 'failed', msg: `cannot list ${src} as tar.gz: gzip: stdin: not in gzip format; tar: Child returned status 1; tar: Error is not recoverable: exiting now`, cmds: []});
});

test('unarchive check mode: dest missing with createDest → would create and extract', async (t) => {
  const h = host('no');
  const dest = join(h.dir, 'new', 'dest');
  await assertCheckMode(t, h, unarchive({src: h.src('zip'), dest, createDest: true}), {status: 'changed', msg: `would create ${dest} and extract ${h.src('zip')} (3 entries)`, cmds: [`mkdir -p -- ${dest}`, `unzip -o -q ${h.src('zip')} -d ${dest}`]});
});

test('unarchive check mode: archive missing → failed, clearly, nothing sent', async (t) => {
  const h = host('no');
  const src = join(h.dir, 'nope.tgz');
  await assertCheckMode(t, h, unarchive({src, dest: h.dest}), {status: 'failed', msg: `archive ${src} does not exist on the host (unarchive reads it there: fetch it first, e.g. with getUrl)`, cmds: []});
});
