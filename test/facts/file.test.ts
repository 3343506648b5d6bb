import test from 'ava';
import {createHash} from 'node:crypto';
import {mkdtempSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileProbeScript, maxDiffBytes, parseFileState} from '../../src/facts/file.ts';
import {localExec} from '../../src/transport/fake.ts';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const probe = async (p: string, content: 'none' | 'small' | 'always') => parseFileState((await localExec(fileProbeScript(p, content))).stdout);

test('file probe: the sha256 is the same whether the host hashed the file or the content was read back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-fileprobe-'));
  const small = join(dir, 'small file');
  const big = join(dir, 'big');
  const empty = join(dir, 'empty');
  writeFileSync(small, 'hello\n');
  writeFileSync(big, Buffer.alloc(maxDiffBytes + 1, 'a'));
  writeFileSync(empty, '');
  for (const mode of ['none', 'small', 'always'] as const) {
    const s = await probe(small, mode);
    // `none` (the file module: attributes only) does not hash.
    t.like(s, {kind: 'file', size: 6, sha256: mode === 'none' ? '' : sha('hello\n')}, mode);
    t.is(s.kind === 'file' ? s.content?.toString() : 'x', mode === 'none' ? undefined : 'hello\n', mode);
    t.like(await probe(empty, mode), {kind: 'file', size: 0, sha256: sha('')}, mode);
  }
  const b = await probe(big, 'small');
  t.like(b, {kind: 'file', size: maxDiffBytes + 1, sha256: sha(Buffer.alloc(maxDiffBytes + 1, 'a'))});
  t.is(b.kind === 'file' ? b.content : 'x', undefined, 'too large to read back for a diff');
});

test('file probe parser: the older output (bare hash line) still parses', (t) => {
  const h = sha('x\n');
  t.like(parseFileState(`file\n644 root root 2\n${h}\neAo=\n`), {kind: 'file', sha256: h, size: 2});
  t.like(parseFileState(`file\n644 root root 2\n\\${h}  /odd\\\\name\n\n`), {kind: 'file', sha256: h}, 'sha256sum escapes odd names with a leading backslash');
});
