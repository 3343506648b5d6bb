/**
 * `provision init [DIR]`: a project of the user's own, ready to commit: package.json, tsconfig.json,
 * an inventory, playbooks/site.ts, a role (`--example basic`, the default) or the reference HA site
 * composed of the shipped roles (`--example site`), .gitignore and a README.
 *
 * The files are real files of the package: init/common/ (every example) and init/<example>/;
 * `gitignore` is written as `.gitignore` (npm leaves a `.gitignore` out of a package). An existing file
 * is never overwritten: it is kept and listed as kept.
 */
import {existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync} from 'node:fs';
import {basename, dirname, join, relative, resolve} from 'node:path';
import {Option, type Command} from 'commander';
import {ExitCode, UserError} from '../core/errors.ts';
import {projectRoot} from '../core/paths.ts';

export const examples = ['basic', 'site'] as const;
export type Example = (typeof examples)[number];

/** One file of the scaffold: where it goes (relative to the target) and what it holds. */
export interface ScaffoldFile {
  readonly path: string;
  readonly content: string;
}

/** What init did with each file. */
export interface InitReport {
  readonly dir: string;
  readonly created: readonly string[];
  readonly kept: readonly string[];
  /** When package.json was kept and lacks what the scaffold needs: one line saying what to add. */
  readonly hint?: string;
}

interface OwnPackage {
  readonly version: string;
  readonly dependencies?: Readonly<Record<string, string>>;
}

function ownPackage(): OwnPackage {
  return JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as OwnPackage;
}

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p, base) : [relative(base, p)];
  });
}

/** An npm package name from a folder name: `My Infra` → `my-infra`. */
function packageName(dir: string): string {
  const name = basename(dir).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[._-]+|-+$/g, '');
  return name || 'my-infrastructure';
}

/** What the scaffold's package.json needs: this provision's version, the typescript it is built with. */
function wanted(): {dependencies: Record<string, string>; scripts: Record<string, string>} {
  const own = ownPackage();
  return {
    dependencies: {provision: `^${own.version}`, typescript: own.dependencies?.typescript ?? 'latest'},
    scripts: {check: 'provision check site', run: 'provision run site'},
  };
}

/** The files of an example, with package.json made for the target folder. Pure but for reading init/. */
export function scaffoldFiles(example: Example, target: string): ScaffoldFile[] {
  const files = new Map<string, string>();
  for (const folder of ['common', example]) {
    const root = join(projectRoot, 'init', folder);
    for (const rel of walk(root)) files.set(rel === 'gitignore' ? '.gitignore' : rel, readFileSync(join(root, rel), 'utf8'));
  }
  const pkg = JSON.parse(files.get('package.json')!) as {name: string; dependencies: Record<string, string>; scripts: Record<string, string>};
  const w = wanted();
  files.set('package.json', `${JSON.stringify({...pkg, name: packageName(target), scripts: {...pkg.scripts, ...w.scripts}, dependencies: {...pkg.dependencies, ...w.dependencies}}, null, 2)}\n`);
  return [...files].map(([path, content]) => ({path, content})).sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** What an existing package.json lacks, as one line (undefined: nothing). */
function packageHint(path: string): string | undefined {
  let have: {dependencies?: Record<string, string>; devDependencies?: Record<string, string>; scripts?: Record<string, string>} = {};
  try {
    have = JSON.parse(readFileSync(path, 'utf8')) as typeof have;
  } catch {
    // not JSON: say everything
  }
  const w = wanted();
  const deps = Object.entries(w.dependencies).filter(([k]) => !have.dependencies?.[k] && !have.devDependencies?.[k]);
  const scripts = Object.entries(w.scripts).filter(([k]) => !have.scripts?.[k]);
  const parts = [
    deps.length > 0 ? `dependencies ${deps.map(([k, v]) => `"${k}": "${v}"`).join(', ')}` : '',
    scripts.length > 0 ? `scripts ${scripts.map(([k, v]) => `"${k}": "${v}"`).join(', ')}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? `package.json kept: add ${parts.join(' and ')}` : undefined;
}

/** Write the scaffold into `target`, keeping every file that exists. */
export function init(example: Example, target: string): InitReport {
  const dir = resolve(target);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`init: ${target} exists and is not a folder`, ExitCode.badOptions);
  const created: string[] = [];
  const kept: string[] = [];
  for (const f of scaffoldFiles(example, dir)) {
    const path = join(dir, f.path);
    if (existsSync(path)) {
      kept.push(f.path);
      continue;
    }
    mkdirSync(dirname(path), {recursive: true});
    try {
      writeFileSync(path, f.content, {flag: 'wx'}); // 'wx': never over a file that appeared meanwhile
      created.push(f.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`init: cannot write ${path}: ${(e as Error).message}`, ExitCode.error);
      kept.push(f.path);
    }
  }
  const hint = kept.includes('package.json') ? packageHint(join(dir, 'package.json')) : undefined;
  return {dir, created, kept, hint};
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('scaffold a project of your own: package.json, tsconfig.json, an inventory, playbooks/site.ts and a role')
    .argument('[dir]', 'the project folder (created when missing)', '.')
    .addOption(new Option('--example <name>', 'basic: an example role to start from; site: the reference HA site on the shipped roles').choices(examples).default('basic'))
    .action((dir: string, flags: {example: Example}) => {
      const r = init(flags.example, dir);
      const out = (s: string): void => void process.stdout.write(`${s}\n`);
      const rel = relative(process.cwd(), r.dir);
      const shown = rel === '' ? '.' : rel.startsWith('..') ? r.dir : rel;
      out(`provision init: ${flags.example} project in ${shown}`);
      for (const f of r.created) out(`  created  ${f}`);
      for (const f of r.kept) out(`  kept     ${f} (exists)`);
      if (r.hint) out(`hint: ${r.hint}`);
      const cd = shown === '.' ? '' : `cd ${shown} && `;
      out(`next: ${cd}npm install && npm run check && npx provision run site -i inventory/hosts.yml --check --diff`);
    });
}
