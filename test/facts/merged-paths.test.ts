/**
 * Merged path probes: one script answering many file probes must tell each task exactly what the
 * probe's own script tells it, on every kind of path, run for real on this machine's shell.
 */
import test from 'ava';
import {createHash} from 'node:crypto';
import {execFileSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileProbe, mergedPathProbe, parseFileState, splitMergedPathProbe, maxDiffBytes, type PathProbe} from '../../src/facts/file.ts';
import {runProbes} from '../../src/core/remote.ts';
import {FakeTransport, localExec} from '../../src/transport/fake.ts';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

function tree(): {dir: string; paths: Record<'small' | 'empty' | 'odd' | 'big' | 'binary' | 'dir' | 'link' | 'fifo' | 'missing', string>} {
  const dir = mkdtempSync(join(tmpdir(), 'prov-merged-'));
  const p = (n: string): string => join(dir, n);
  writeFileSync(p('small'), 'hello\nworld\n');
  writeFileSync(p('empty'), '');
  writeFileSync(p("sp ace 'quote'"), 'odd name\n');
  writeFileSync(p('big'), Buffer.alloc(maxDiffBytes + 10, 'x'));
  writeFileSync(p('binary'), Buffer.from([0, 1, 2, 255, 0, 10]));
  mkdirSync(p('dir'));
  symlinkSync(p('small'), p('link'));
  execFileSync('mkfifo', [p('fifo')]);
  return {dir, paths: {small: p('small'), empty: p('empty'), odd: p("sp ace 'quote'"), big: p('big'), binary: p('binary'), dir: p('dir'), link: p('link'), fifo: p('fifo'), missing: p('nope')}};
}

async function alone(script: string): Promise<string> {
  return (await localExec('sh -s', {stdin: `(\n${script}\n) </dev/null 2>/dev/null`})).stdout;
}

test('every kind of path and every content mode: the merged answer parses as the script alone does', async (t) => {
  const {paths} = tree();
  const probes: {script: string; p: PathProbe}[] = [];
  for (const path of Object.values(paths)) {
    for (const [mode, expect] of [['none', undefined], ['always', undefined], ['small', sha('hello\nworld\n')], ['small', sha('something else')], ['small', sha(Buffer.alloc(maxDiffBytes + 10, 'x'))]] as const) {
      const probe = fileProbe(path, mode, expect);
      probes.push({script: probe.script, p: probe.path!});
    }
  }
  t.true(probes.every((x) => x.p !== undefined));
  const merged = await alone(mergedPathProbe(probes.map((x) => x.p)));
  const split = splitMergedPathProbe(merged, probes.map((x) => x.p));
  if (!t.truthy(split, merged.slice(0, 500))) return;
  for (const [k, {script, p}] of probes.entries()) {
    const want = parseFileState(await alone(script));
    const got = parseFileState(split[k]!);
    const label = `${p.path.split('/').pop()} ${p.content} ${p.expect?.slice(0, 8) ?? ''}`;
    // Content: where the script alone reads it, so does the merged answer, except for a file that is
    // already what its task wants (nothing to diff). It may also be there when another probe of the
    // same path read it: then it is the file's real content.
    const wc = want.kind === 'file' ? want.content : undefined;
    const gc = got.kind === 'file' ? got.content : undefined;
    const strip = <T extends object>(x: T): T => ('content' in x ? (({content: _c, ...r}) => r as T)(x as T & {content?: Buffer}) : x);
    t.deepEqual(strip(got), strip(want), label);
    const matched = p.content === 'small' && want.kind === 'file' && p.expect === want.sha256;
    if (wc && !matched) t.deepEqual(gc, wc, label);
    if (gc && want.kind === 'file') t.is(sha(gc), want.sha256, label);
  }
});

test('output that does not add up (a file changed between stat and cat) is refused, not guessed', (t) => {
  const p: PathProbe = {path: '/x/a', content: 'always'};
  const ok = 'a-name\u0000regular file\u0000644 root root 3\u0000/x/a\u0000@check\u0000@always\u0000/x/a\u0000@data\u0000' + Buffer.from('abc').toString('base64') + '\u0000@end\u0000';
  t.truthy(splitMergedPathProbe(ok.replace('a-name', '/x/a'), [p]));
  t.is(splitMergedPathProbe(ok.replace('a-name', '/x/a').replace(' 3\u0000', ' 4\u0000'), [p]), undefined, 'size differs from what was read');
  t.is(splitMergedPathProbe(ok.replace('a-name', '/x/a').replace('@end', '@nope'), [p]), undefined, 'no end marker');
  t.is(splitMergedPathProbe('stat: unrecognized option', [p]), undefined);
});

test('runProbes: path probes share one merged script among the other probes; answers in order', async (t) => {
  const {paths} = tree();
  const probes = [fileProbe(paths.small, 'small', sha('x')), {script: 'echo other probe'}, fileProbe(paths.dir), fileProbe(paths.missing, 'always'), {script: 'exit 3'}];
  const ft = new FakeTransport('h1');
  const outs = await runProbes(ft, {become: false}, probes);
  t.is(ft.log.length, 1, 'one round trip');
  t.is((ft.log[0]!.stdin as string).match(/stat --printf/g)?.length, 1, 'one stat for every path');
  t.like(parseFileState(outs[0]!.stdout), {kind: 'file', size: 12});
  const first = parseFileState(outs[0]!.stdout);
  t.is(first.kind === 'file' ? first.content?.toString() : undefined, 'hello\nworld\n', 'differs from what the task wants: read back for the diff');
  t.deepEqual(outs[1], {stdout: 'other probe\n', code: 0});
  t.is(parseFileState(outs[2]!.stdout).kind, 'directory');
  t.deepEqual(parseFileState(outs[3]!.stdout), {kind: 'missing'});
  t.is(outs[4]?.code, 3);
});

test('runProbes: merging follows what a probe carries, not its script text (no registry of scripts)', async (t) => {
  const {paths} = tree();
  const bare = [{script: fileProbe(paths.small, 'small').script}, {script: fileProbe(paths.dir).script}];
  const ft = new FakeTransport('h1');
  const outs = await runProbes(ft, {become: false}, bare);
  t.is((ft.log[0]!.stdin as string).match(/stat --printf/g), null, 'probes without path metadata run as they are');
  t.is(parseFileState(outs[1]!.stdout).kind, 'directory');
  const carried = new FakeTransport('h1');
  await runProbes(carried, {become: false}, [fileProbe(paths.small, 'small'), fileProbe(paths.dir)]);
  t.is((carried.log[0]!.stdin as string).match(/stat --printf/g)?.length, 1, 'the same probes with their metadata share one stat');
});
