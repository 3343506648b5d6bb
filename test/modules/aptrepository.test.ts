import test from 'ava';
import {createHash} from 'node:crypto';
import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {FileState} from '../../src/facts/file.ts';
import type {Plan} from '../../src/core/types.ts';
import {aptRepository, aptRepositoryModule, repositoryPaths, sourcesText, type AptRepositoryArgs, type AptRepositoryState} from '../../src/modules/aptrepository.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const steps = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind === 'write' ? `write ${s.dest} ${s.mode}` : ''));
const fileOf = (b: string | Buffer): FileState => {
  const buf = Buffer.from(b);
  return {kind: 'file', size: buf.length, sha256: createHash('sha256').update(buf).digest('hex'), content: buf, mode: 0o644, owner: 'root', group: 'root'};
};
const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFit2ioBEADhWpZ8/wvZ6hUTiXOwQHXMAlaFHcPH9hAtr4F1y2+OYdbtMuth\n-----END PGP PUBLIC KEY BLOCK-----\n';
const binKey = Buffer.from([0x99, 0x02, 0x0d, 0x04, 0x58, 0xad, 0xda, 0x2a]);
const args: AptRepositoryArgs = {name: 'docker', uris: 'https://download.docker.com/linux/debian', suites: 'bookworm', components: ['stable'], architectures: 'amd64', key};
const text = 'Types: deb\nURIs: https://download.docker.com/linux/debian\nSuites: bookworm\nComponents: stable\nArchitectures: amd64\nSigned-By: /etc/apt/keyrings/docker.asc\n';
const L = '/etc/apt/sources.list.d';
const K = '/etc/apt/keyrings';
const none: AptRepositoryState = {sources: {kind: 'missing'}, asc: {kind: 'missing'}, gpg: {kind: 'missing'}};

test('sourcesText: deb822, Signed-By the key of this repository only', (t) => {
  t.is(sourcesText(args), text);
  t.is(sourcesText({name: 'r', uris: ['http://a/', 'http://b/'], suites: './', components: [], key: binKey}), 'Types: deb\nURIs: http://a/ http://b/\nSuites: ./\nSigned-By: /etc/apt/keyrings/r.gpg\n');
  t.deepEqual(repositoryPaths({name: 'x', dir: '/t/l/', keyDir: '/t/k'}), {sources: '/t/l/x.sources', asc: '/t/k/x.asc', gpg: '/t/k/x.gpg'});
});

const cases: {title: string; have: AptRepositoryState; args: AptRepositoryArgs; steps: string[]; diff?: {path: string; before: string; after: string}; reason: RegExp}[] = [
  {title: 'missing → key, then sources', have: none, args, steps: [`mkdir -p -- ${K}`, `write ${K}/docker.asc 0644`, `mkdir -p -- ${L}`, `write ${L}/docker.sources 0644`], diff: {path: `${L}/docker.sources`, before: '', after: text}, reason: /^create \/etc\/apt\/keyrings\/docker\.asc; create \/etc\/apt\/sources\.list\.d\/docker\.sources$/},
  {title: 'drifted sources → rewrite it only', have: {...none, sources: fileOf(text.replace('bookworm', 'bullseye')), asc: fileOf(key)}, args, steps: [`write ${L}/docker.sources 0644`], diff: {path: `${L}/docker.sources`, before: text.replace('bookworm', 'bullseye'), after: text}, reason: /^update \/etc\/apt\/sources\.list\.d\/docker\.sources$/},
  {title: 'drifted key → rewrite it only, its diff', have: {...none, sources: fileOf(text), asc: fileOf('old key\n')}, args, steps: [`write ${K}/docker.asc 0644`], diff: {path: `${K}/docker.asc`, before: 'old key\n', after: key}, reason: /^update \/etc\/apt\/keyrings\/docker\.asc$/},
  {title: 'converged → nothing', have: {...none, sources: fileOf(text), asc: fileOf(key)}, args, steps: [], reason: /up to date/},
  {title: 'binary key → .gpg, the old .asc removed', have: {...none, sources: fileOf(text), asc: fileOf(key)}, args: {...args, key: binKey}, steps: [`mkdir -p -- ${K}`, `write ${K}/docker.gpg 0644`, `write ${L}/docker.sources 0644`, `rm -f -- ${K}/docker.asc`], diff: {path: `${L}/docker.sources`, before: text, after: text.replace('docker.asc', 'docker.gpg')}, reason: /remove \/etc\/apt\/keyrings\/docker\.asc$/},
  {title: 'absent → both removed', have: {...none, sources: fileOf(text), asc: fileOf(key)}, args: {name: 'docker', state: 'absent'}, steps: [`rm -f -- ${L}/docker.sources ${K}/docker.asc`], diff: {path: `${L}/docker.sources`, before: text, after: ''}, reason: /^remove/},
  {title: 'absent and missing → nothing', have: none, args: {...args, state: 'absent'}, steps: [], reason: /already absent/},
];
for (const c of cases) {
  test(`aptRepository plan: ${c.title}`, (t) => {
    const plan = aptRepositoryModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(steps(plan), c.steps);
    t.regex(plan.reason ?? '', c.reason);
    if (c.diff) t.like(plan.diff, c.diff);
  });
}

test('aptRepository plan fails: bad name, no key, no components, components of a flat repository, a folder in the way', (t) => {
  t.regex(aptRepositoryModule.plan(none, {...args, name: 'a b'}).fail ?? '', /bad repository name/);
  t.regex(aptRepositoryModule.plan(none, {...args, key: undefined}).fail ?? '', /needs the repository's key/);
  t.regex(aptRepositoryModule.plan(none, {...args, components: []}).fail ?? '', /components is empty/);
  t.regex(aptRepositoryModule.plan(none, {...args, suites: './'}).fail ?? '', /takes no components/);
  t.regex(aptRepositoryModule.plan(none, {...args, keyDir: 'rel'}).fail ?? '', /absolute/);
  t.regex(aptRepositoryModule.plan({...none, asc: {kind: 'directory', mode: 0o755, owner: 'root', group: 'root'}}, args).fail ?? '', /is a directory/);
});

test('aptRepository probe: three fenced file probes, parsed apart', (t) => {
  const p = aptRepositoryModule.probe!(args);
  const b64 = Buffer.from(text).toString('base64');
  const out = `file\n644 root root ${text.length}\n\n${b64}\n\n@@provision-apt-repository@@\nmissing\n@@provision-apt-repository@@\nmissing\n`;
  const s = p.parse({stdout: out, code: 0});
  t.is(s.sources.kind, 'file');
  t.is(s.sources.kind === 'file' ? s.sources.content?.toString() : '', text);
  t.deepEqual([s.asc.kind, s.gpg.kind], ['missing', 'missing']);
});

// ---- check mode through the engine, files in a temp folder (mkdir/rm are only recorded, never run)

const checkCases: {title: string; setup: (l: string, k: string) => void; args: Omit<AptRepositoryArgs, 'dir' | 'keyDir'>; status: 'changed' | 'ok'; msg: string; cmds: (l: string, k: string) => string[]}[] = [
  {title: 'missing → would create both', setup: () => {}, args, status: 'changed', msg: 'would create {k}/docker.asc; create {l}/docker.sources', cmds: (l, k) => [`mkdir -p -- ${k}`, `write ${k}/docker.asc`, `mkdir -p -- ${l}`, `write ${l}/docker.sources`]},
  {title: 'drifted → would update the sources', setup: (l, k) => { writeFileSync(join(l, 'docker.sources'), 'Types: deb\n'); writeFileSync(join(k, 'docker.asc'), key); }, args, status: 'changed', msg: 'would update {l}/docker.sources', cmds: (l) => [`write ${l}/docker.sources`]},
  {title: 'converged → ok', setup: (l, k) => { writeFileSync(join(l, 'docker.sources'), text.replace('/etc/apt/keyrings', k)); writeFileSync(join(k, 'docker.asc'), key); }, args, status: 'ok', msg: '{l}/docker.sources and {k}/docker.asc up to date', cmds: () => []},
  {title: 'absent → would remove both', setup: (l, k) => { writeFileSync(join(l, 'docker.sources'), text); writeFileSync(join(k, 'docker.asc'), key); }, args: {...args, state: 'absent'}, status: 'changed', msg: 'would remove {l}/docker.sources, {k}/docker.asc', cmds: (l, k) => [`rm -f -- ${l}/docker.sources ${k}/docker.asc`]},
];
for (const c of checkCases) {
  test(`aptRepository check mode: ${c.title}`, async (t) => {
    const host = fakeHost('aptrepo', {'apt-get': 'exit 99'}, {});
    const l = join(host.dir, 'sources.list.d');
    const k = join(host.dir, 'keyrings');
    mkdirSync(l);
    mkdirSync(k);
    c.setup(l, k);
    await assertCheckMode(t, host, aptRepository({...c.args, dir: l, keyDir: k}), {status: c.status, msg: c.msg.replaceAll('{l}', l).replaceAll('{k}', k), cmds: c.cmds(l, k)}, {writeContent: false});
  });
}
