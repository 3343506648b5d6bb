/**
 * src/cli/typecheck.ts: user TypeScript type-checked before a run, the answer cached by the content
 * of every input. Each test writes a small project of its own (tsconfig.json included) in a temp
 * folder, with its own cache folder, so the tests run concurrently.
 */
import test from 'ava';
import {execFile} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join, relative} from 'node:path';
import {fileURLToPath} from 'node:url';
import {typecheck} from '../../src/cli/typecheck.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Strict options without the DOM and @types (the lib files are most of a cold check's time). */
const TSCONFIG = JSON.stringify({
  compilerOptions: {
    strict: true, target: 'ES2022', lib: ['ES2022'], types: [], module: 'Preserve', moduleResolution: 'Bundler',
    allowImportingTsExtensions: true, noEmit: true, skipLibCheck: true,
  },
});

/** A function with a required `{path: string}`, as a module's arguments are. */
const LIB = `export interface DirArgs {
  /** Where. */
  path: string;
}
export function directory(args: DirArgs): string {
  return args.path;
}
`;

interface Project {
  readonly dir: string;
  readonly cacheDir: string;
  /** Write (or overwrite) a file of the project. */
  write(file: string, text: string): void;
  /** The path an error line names for `file`: relative to the cwd. */
  shown(file: string): string;
}

const made: string[] = [];
test.after.always(() => {
  for (const dir of made) rmSync(dir, {recursive: true, force: true});
});

function project(files: Record<string, string>, {tsconfig = true} = {}): Project {
  const dir = mkdtempSync(join(tmpdir(), 'prov-typecheck-'));
  made.push(dir);
  const write = (file: string, text: string): void => {
    mkdirSync(dirname(join(dir, file)), {recursive: true});
    writeFileSync(join(dir, file), text);
  };
  if (tsconfig) write('tsconfig.json', TSCONFIG);
  for (const [file, text] of Object.entries(files)) write(file, text);
  return {dir, cacheDir: join(dir, '.cache'), write, shown: (file) => relative(process.cwd(), join(dir, file))};
}

const check = (p: Project, roots: readonly string[] = ['site.ts'], salt?: string) =>
  typecheck(roots.map((r) => join(p.dir, r)), {cacheDir: p.cacheDir, salt});

test('a clean project: no errors, and the answer is cached', async (t) => {
  const p = project({
    'site.ts': `import {directory} from './lib.ts';\nexport default directory({path: '/srv'});\n`,
    'lib.ts': LIB,
  });
  t.deepEqual(await check(p), {errors: [], cached: false});
  t.deepEqual(await check(p), {errors: [], cached: true});
  t.is(readdirSync(p.cacheDir).filter((f) => f.endsWith('.json')).length, 1, 'one manifest, no temp file left');
  t.is(readdirSync(p.cacheDir).length, 1);
});

test('a type error in an imported file names that file, line and column, with the TS code', async (t) => {
  const p = project({
    'site.ts': `import {dirs} from './roles/web.ts';\nexport default dirs;\n`,
    'roles/web.ts': `import {directory} from '../lib.ts';\n\nexport const dirs = [directory({dir: '/x'})];\n`,
    'lib.ts': LIB,
  });
  const r = await check(p);
  t.false(r.cached);
  t.is(r.errors.length, 1);
  t.regex(r.errors[0]!, /TS2353: Object literal may only specify known properties, and 'dir' does not exist in type 'DirArgs'\.$/);
  t.true(r.errors[0]?.startsWith(`${p.shown('roles/web.ts')}:3:33: TS2353: `), r.errors[0]);
});

test('errors come sorted by file, then line; a chained message is flattened to one line', async (t) => {
  const p = project({
    'site.ts': `import './b.ts';\nimport './a.ts';\nexport const n: number = 'one';\n`,
    'a.ts': `export const late: string = 2;\nexport const f: (x: string) => void = (x: number) => {};\n`,
    'b.ts': `const x: number = '';\nexport {x};\n`,
  });
  const r = await check(p);
  t.deepEqual(r.errors.map((e) => e.split(': ')[0]), [
    `${p.shown('a.ts')}:1:14`,
    `${p.shown('a.ts')}:2:14`,
    `${p.shown('b.ts')}:1:7`,
    `${p.shown('site.ts')}:3:14`,
  ]);
  t.true(r.errors.every((e) => !e.includes('\n') && / TS2322: /.test(e)), r.errors.join('\n'));
  t.regex(r.errors[1]!, /TS2322: Type '\(x: number\) => void' is not assignable to type '\(x: string\) => void'\. Types of parameters 'x' and 'x' are incompatible\. Type 'string' is not assignable to type 'number'\.$/);
});

test('a syntax error is reported with its line', async (t) => {
  const p = project({
    'site.ts': `import {x} from './broken.ts';\nexport default x;\n`,
    'broken.ts': `// a comment\nexport const x = ;\n`,
  });
  const r = await check(p);
  t.deepEqual(r.errors, [`${p.shown('broken.ts')}:2:18: TS1109: Expression expected.`]);
});

test('the second identical call is cached and returns the same errors; an edit of the imported file checks again', async (t) => {
  const p = project({
    'site.ts': `import {dirs} from './web.ts';\nexport default dirs;\n`,
    'web.ts': `import {directory} from './lib.ts';\nexport const dirs = [directory({pth: '/x'})];\n`,
    'lib.ts': LIB,
  });
  const first = await check(p);
  t.is(first.errors.length, 1);
  t.false(first.cached);
  t.deepEqual(await check(p), {errors: first.errors, cached: true});

  p.write('web.ts', `import {directory} from './lib.ts';\n\nexport const dirs = [directory({path: 1})];\n`);
  const edited = await check(p);
  t.false(edited.cached);
  t.is(edited.errors.length, 1);
  t.true(edited.errors[0]?.startsWith(`${p.shown('web.ts')}:3:33: TS2322: `), edited.errors[0]);
  t.deepEqual(await check(p), {errors: edited.errors, cached: true});

  p.write('web.ts', `import {directory} from './lib.ts';\nexport const dirs = [directory({path: '/x'})];\n`);
  t.deepEqual(await check(p), {errors: [], cached: false});
});

test('a deleted file, a file that appears where an import looked, and the salt each check again', async (t) => {
  const p = project({
    'site.ts': `import {x} from './gone.ts';\nimport {y} from './later';\nexport default [x, y];\n`,
    'gone.ts': `export const x = 1;\n`,
  });
  const first = await check(p);
  t.is(first.errors.length, 1);
  t.regex(first.errors[0]!, /:2:17: TS2307: Cannot find module '\.\/later'/);
  t.true((await check(p)).cached);

  // './later' was looked for as later.ts, later.tsx, later/index.ts…: one of them appearing matters.
  p.write('later.ts', `export const y = 2;\n`);
  t.deepEqual(await check(p), {errors: [], cached: false});
  t.true((await check(p)).cached);

  rmSync(join(p.dir, 'gone.ts'));
  const deleted = await check(p);
  t.false(deleted.cached);
  t.regex(deleted.errors[0] ?? '', /:1:17: TS2307: Cannot find module '\.\/gone\.ts'/);

  t.false((await check(p, undefined, 'another salt')).cached);
  t.true((await check(p, undefined, 'another salt')).cached);
});

test('the tsconfig: extends is followed, an edit of either file checks again, the nearest one is used', async (t) => {
  const p = project({
    'tsconfig.json': JSON.stringify({extends: './base.json', compilerOptions: {noImplicitAny: false}, include: ['nothing/**']}),
    'base.json': TSCONFIG,
    'site.ts': `export function id(x) {\n  return x;\n}\nexport const n: number = id(1) ?? 0;\n`,
  });
  t.deepEqual(await check(p), {errors: [], cached: false}, 'noImplicitAny off, and `include` ignored');

  p.write('tsconfig.json', JSON.stringify({extends: './base.json'}));
  const strict = await check(p);
  t.false(strict.cached);
  t.deepEqual(strict.errors.map((e) => e.split(': ')[0] + ': ' + e.split(': ')[1]), [`${p.shown('site.ts')}:1:20: TS7006`]);

  p.write('base.json', TSCONFIG.replace('"strict":true', '"strict":false'));
  t.deepEqual(await check(p), {errors: [], cached: false}, 'the base config is an input too');

  // A tsconfig.json closer to the root than the one used before takes over.
  p.write('roles/site.ts', `export function id(x) {\n  return x;\n}\n`);
  t.deepEqual((await check(p, ['roles/site.ts'])).errors, []);
  p.write('roles/tsconfig.json', TSCONFIG);
  const nearer = await check(p, ['roles/site.ts']);
  t.false(nearer.cached);
  t.is(nearer.errors.length, 1);
  t.regex(nearer.errors[0]!, /TS7006/);
});

test('a tsconfig that cannot be parsed is one error line naming it, cached until it is fixed', async (t) => {
  const p = project({'site.ts': `export const x = 1;\n`});
  p.write('tsconfig.json', `{"compilerOptions": {"strict": true,,}}\n`);
  const bad = await check(p);
  t.is(bad.errors.length, 1);
  t.true(bad.errors[0]?.startsWith(`${p.shown('tsconfig.json')}:1:`), bad.errors[0]);
  t.deepEqual(await check(p), {errors: bad.errors, cached: true});

  p.write('tsconfig.json', JSON.stringify({compilerOptions: {strict: true, moduleResolution: 'Nowhere'}}));
  const unknown = await check(p);
  t.false(unknown.cached);
  t.is(unknown.errors.length, 1);
  t.regex(unknown.errors[0]!, new RegExp(`^${p.shown('tsconfig.json').replace(/[.\\]/g, '\\$&')}: TS6046: Argument for '--moduleResolution' option must be: `));

  p.write('tsconfig.json', TSCONFIG);
  t.deepEqual(await check(p), {errors: [], cached: false});
});

const tsconfigAbove = (dir: string): string | undefined => {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'tsconfig.json'))) return join(d, 'tsconfig.json');
    if (dirname(d) === d) return undefined;
  }
};

const above = tsconfigAbove(tmpdir());
(above ? test.skip : test)(`without a tsconfig.json: strict, bundler resolution, .ts imports${above ? ` (skipped: ${above} exists)` : ''}`, async (t) => {
  const p = project({
    'site.ts': `import {id} from './lib.ts';\nimport data from './data.json';\nexport const n: number = id(data.n);\n`,
    'lib.ts': `export function id(x) {\n  return x;\n}\n`,
    'data.json': `{"n": 1}\n`,
  }, {tsconfig: false});
  const r = await check(p);
  t.false(r.cached);
  t.deepEqual(r.errors.map((e) => e.split(': ').slice(0, 2).join(': ')), [`${p.shown('lib.ts')}:1:20: TS7006`]);
  t.deepEqual(await check(p), {errors: r.errors, cached: true});
});

interface Child {
  readonly cached: boolean;
  readonly loaded: boolean;
  readonly errors: readonly string[];
}

/** Calls of typecheck in a fresh process, each reporting whether `typescript` is loaded by then. */
function inChild(p: Project, salts: readonly string[]): Promise<Child[]> {
  const code = `
import {createRequire} from 'node:module';
import {typecheck} from ${JSON.stringify(new URL('../../src/cli/typecheck.ts', import.meta.url).href)};
const loaded = () => Object.keys(createRequire(${JSON.stringify(join(root, 'x.js'))}).cache).some((f) => /[\\\\/]typescript[\\\\/]lib[\\\\/]typescript\\.js$/.test(f));
const out = [];
for (const salt of ${JSON.stringify(salts)}) {
  const r = await typecheck([${JSON.stringify(join(p.dir, 'site.ts'))}], {cacheDir: ${JSON.stringify(p.cacheDir)}, salt});
  out.push({cached: r.cached, loaded: loaded(), errors: r.errors});
}
process.stdout.write(JSON.stringify(out));
`;
  return new Promise((ok, fail) => {
    execFile(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {cwd: process.cwd()}, (err, stdout, stderr) => {
      if (err) fail(new Error(`${err.message}\n${stderr}`));
      else ok(JSON.parse(stdout) as Child[]);
    });
  });
}

test('a cache hit does not import typescript (another salt, a miss, does)', async (t) => {
  const p = project({'site.ts': `export const n: number = 'x';\n`});
  const here = await check(p, undefined, 'a');
  t.false(here.cached);
  const [hit, miss] = await inChild(p, ['a', 'b']);
  t.deepEqual(hit, {cached: true, loaded: false, errors: here.errors});
  t.deepEqual(miss, {cached: false, loaded: true, errors: here.errors}, 'the probe sees typescript once it is imported');
});
