/**
 * The command line: argv, wiring, exit codes. User errors become one line and an Ansible exit code;
 * anything else is an internal error with a bug hint. Both are handled here, once.
 */
import {existsSync, readdirSync} from 'node:fs';
import {dirname, join, relative} from 'node:path';
import {Command, CommanderError, Option} from 'commander';
import {ExitCode, UserError, UserErrors, badOption, type ExitCodeValue} from '../core/errors.ts';
import {firstHosts, preflight, runPlaybook, type EngineDeps, type RunOptions, type RunSummary} from '../core/engine.ts';
import type {Playbook} from '../core/types.ts';
import type {Transport} from '../transport/types.ts';
import {typecheck as typecheckUserCode} from './typecheck.ts';
import type {Emit, RunEvent} from '../core/events.ts';
import type {Vars} from '../core/types.ts';
import {createInterface} from 'node:readline';
import {Secrets} from '../core/secret.ts';
import {LocalTransport} from '../transport/local.ts';
import {loadInventories, selectHosts, type Inventory} from '../inventory/index.ts';
import {registerInventory} from './inventory.ts';
import {registerLab} from './lab.ts';
import {currentProject, findPlaybook, loadPlaybook, playbookProblems, provisionVersionKey, roleFiles, roleLoader, userCacheDir} from './load.ts';
import {projectRoot} from '../core/paths.ts';
import {connectHost, type ConnectOptions} from './connect.ts';
import {renderTemplate, readRoleFileContent} from '../templates/render.ts';
import {plainWriter} from '../ui/plain.ts';
import {jsonWriter} from '../ui/json.ts';
import {adhoc} from './adhoc.ts';
import {askBecomePassword, becomeInventory} from './become.ts';
import {commandKeyring, primeExtraVarsVault, readExtraVarsFile, registerVault} from './vault.ts';
import {registerInit} from './init.ts';
import {writeRetryFile} from './retry.ts';
import {Keyring} from '../core/vault.ts';
import type {VaultAccess} from '../inventory/index.ts';
import {KvSyntaxError, parseKeyValues, type KeyValues} from './kv.ts';
import {listedPlays, listing, startAtTaskFound} from './list.ts';
import {registerWatch, without, type WatchHooks} from './watch.ts';
import {DEFAULT_STATE_FILE, readDriftedTasks} from './drift.ts';

/**
 * The inventory used when none is given: $PROVISION_INVENTORY, else the current project's
 * `inventory/hosts.yml` (`.yaml`, `.ini`), else the one inventory file in its `inventory/` folder (in
 * provision's own repository, the lab's). Never another project's: no inventory is a clear error.
 */
export function defaultInventory(): string {
  if (process.env.PROVISION_INVENTORY) return process.env.PROVISION_INVENTORY;
  const project = currentProject();
  const dir = join(project, 'inventory');
  const shown = (p: string): string => relative(process.cwd(), p) || '.';
  const named = ['hosts.yml', 'hosts.yaml', 'hosts.ini'].map((n) => join(dir, n)).find((p) => existsSync(p));
  if (named) return named;
  const files = existsSync(dir) ? readdirSync(dir).filter((n) => /\.(ya?ml|ini)$/.test(n)).sort() : [];
  if (files.length > 1) throw badOption(`no inventory given and ${shown(dir)} holds several (${files.join(', ')}): choose one with -i (-i ${shown(dir)} reads them all), or set $PROVISION_INVENTORY`);
  const [only] = files;
  if (only !== undefined) return join(dir, only);
  throw badOption(`no inventory: give one with -i FILE, set $PROVISION_INVENTORY, or create ${shown(join(dir, 'hosts.yml'))}`);
}

/** The lab's inventory: $PROVISION_INVENTORY, else the one shipped with provision (inventory/lab.yml). */
export function labInventory(): string {
  return process.env.PROVISION_INVENTORY || join(projectRoot, 'inventory', 'lab.yml');
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `-e key=value` (parsed as Ansible does: `msg='hello world' n=1`, values stay strings), `-e '{"json": 1}'`, `-e @vars.yml`. */
export function parseExtraVars(items: readonly string[], vault: VaultAccess = {keyring: new Keyring(), secrets: new Secrets()}): Vars {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    if (item.startsWith('@')) {
      // a vault file, or YAML with inline !vault values (src/cli/vault.ts)
      Object.assign(out, readExtraVarsFile(item, vault));
    } else if (item.trim().startsWith('{')) {
      try {
        Object.assign(out, JSON.parse(item));
      } catch {
        throw badOption(`-e: not valid JSON: ${item}`);
      }
    } else if (item.startsWith('/') || item.startsWith('.')) {
      throw badOption(`-e ${item}: a vars file is given with @: -e @${item}`);
    } else {
      // Ansible's key=value (src/cli/kv.ts): msg='hello world' n=1 is two strings.
      let kv: KeyValues;
      try {
        kv = parseKeyValues(item);
      } catch (e) {
        if (e instanceof KvSyntaxError) throw badOption(`-e ${item}: ${e.message}`);
        throw e;
      }
      if (kv.free.length > 0) {
        throw badOption(`-e ${item}: expected key=value, got '${kv.free[0]}' (a value with spaces is quoted: key='a b')`);
      }
      Object.assign(out, kv.vars);
    }
  }
  return out;
}

function parseForks(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw badOption(`-f/--forks: expected a positive whole number, got '${v}'`);
  return n;
}

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function exitCodeOf(summary: RunSummary): ExitCodeValue {
  if (summary.interrupted) return ExitCode.interrupted;
  const counts = Object.values(summary.hosts);
  if (counts.some((c) => c.unreachable > 0)) return ExitCode.unreachable;
  if (counts.some((c) => c.failed > 0)) return ExitCode.hostFailed;
  return ExitCode.ok;
}

interface RunFlags {
  /** `-i`, repeatable: the sources, merged in order. */
  inventory?: string[];
  check?: boolean;
  diff?: boolean;
  limit?: string;
  tags?: string;
  skipTags?: string;
  forks: number;
  extraVars: string[];
  json?: boolean;
  verbose: number;
  tui: boolean;
  acceptNewHostKeys?: boolean;
  timeout?: number;
  lockTimeout: number;
  vaultPasswordFile?: string;
  /** --vault-id label@source, repeatable. */
  vaultId?: string[];
  /** -K: ask for the become password once. */
  askBecomePass?: boolean;
  /** false with --no-typecheck. */
  typecheck: boolean;
  listHosts?: boolean;
  listTasks?: boolean;
  listTags?: boolean;
  startAtTask?: string;
  /** --step: confirm each task (plain output: the prompt needs the terminal). */
  step?: boolean;
  /** --only-drifted: only the tasks the last watch check (the --state file) found drifted, on their hosts. */
  onlyDrifted?: boolean;
  state?: string;
}

/**
 * Pick the renderer: --json, else the live UI on a terminal (unless --no-tui), else plain lines.
 * The live UI (ink, react) is imported only when it is used: loading it costs about a second.
 */
async function pickRenderer(flags: RunFlags, live: {playbook: string; inventory: string; onInterrupt: () => void}, secrets: Secrets): Promise<{emit: Emit; done(): Promise<void>}> {
  const out = (s: string): void => void process.stdout.write(s);
  if (flags.json) return {emit: jsonWriter(out, secrets), done: async () => undefined};
  // --step asks on the terminal between tasks: plain lines, not the live UI.
  if (flags.tui && process.stdout.isTTY && !flags.step) {
    const {startLiveUi} = await import('../ui/live.tsx');
    return startLiveUi({...live, check: !!flags.check, diff: !!flags.diff, verbose: flags.verbose, secrets});
  }
  return {emit: plainWriter(out, {verbose: flags.verbose, color: !!process.stdout.isTTY && !process.env.NO_COLOR, secrets}), done: async () => undefined};
}

/**
 * `--step`: Ansible's question before each task, on stderr (stdout may be --json); the answer is a
 * line on stdin: y (run it), c (run it and the rest without asking), anything else, or end of input,
 * skips it (Ansible's default, N).
 */
function stepPrompt(): {ask: NonNullable<RunOptions['step']>; close(): void} {
  // One reader for the whole run: answers typed (or piped) ahead are kept for the next questions.
  const rl = createInterface({input: process.stdin, terminal: false});
  const lines: string[] = [];
  const waiting: ((line: string | null) => void)[] = [];
  let ended = false;
  rl.on('line', (line) => (waiting.shift() ?? ((l: string | null) => void lines.push(l ?? '')))(line));
  rl.on('close', () => {
    ended = true;
    for (const w of waiting.splice(0)) w(null);
  });
  return {
    async ask(task) {
      process.stderr.write(`Perform task: TASK: ${task} (N)o/(y)es/(c)ontinue: `);
      const line = lines.shift() ?? (ended ? null : await new Promise<string | null>((resolve) => waiting.push(resolve)));
      process.stderr.write('\n');
      const a = (line ?? '').trim().toLowerCase();
      return a === 'y' || a === 'yes' ? 'yes' : a === 'c' || a === 'continue' ? 'continue' : 'no';
    },
    close: () => rl.close(),
  };
}

/** Load a playbook, refusing (exit 4, a `file:line:col` line each) a syntax error or a type error in it or any file it loads (unless `typecheck` is false; cached by content). */
function typecheckedPlaybook(playbookPath: string, typecheck = true): Promise<Playbook> {
  return loadPlaybook(playbookPath, async (exported) => {
    if (!typecheck) return;
    const roots = [playbookPath, ...roleFiles(exported, playbookPath)];
    const {errors} = await typecheckUserCode(roots, {cacheDir: userCacheDir('typecheck'), salt: provisionVersionKey()});
    if (errors.length > 0) throw new UserErrors(errors);
  });
}

/** What the engine needs besides the connections and the event sink. */
type StaticDeps = Omit<EngineDeps, 'emit' | 'connect' | 'signal'>;

function staticDeps(playbookPath: string, inventory: Inventory, limit: ReadonlySet<string> | undefined, secrets: Secrets, loadRole = roleLoader(playbookPath)): StaticDeps {
  return {
    inventory,
    secrets,
    select: (p) => selectHosts(inventory, p),
    limit,
    loadRole,
    render: renderTemplate,
    readFile: readRoleFileContent,
    playDirs: [...new Set([dirname(playbookPath), dirname(dirname(playbookPath))])],
  };
}

/**
 * The checks after the type check, all before any command runs on a host (exit 4, one line each): task
 * options and fixed arguments, notify naming no handler, and (with an inventory) arguments computed
 * from variables and templates printing a variable nobody defines (the engine's preflight).
 */
async function checkPlaybook(playbook: Playbook, playbookPath: string, loadRole: StaticDeps['loadRole'], pre?: {readonly deps: StaticDeps; readonly opts: RunOptions}): Promise<void> {
  const problems = await playbookProblems(playbook, playbookPath, loadRole);
  if (problems.length > 0) throw new UserErrors(problems);
  if (!pre) return;
  const missing = await preflight(playbook, pre.opts, {...pre.deps, emit: () => undefined, connect: () => Promise.reject(new Error('no connection before the run'))});
  if (missing.length > 0) throw new UserErrors(missing);
}

/**
 * SSH connections to the first hosts the run will start with, opened while the checks run (their
 * handshakes overlap the checks, as they overlapped loading the roles before there were checks). No
 * command runs on a host before the checks pass; when they fail, the connections are closed unused.
 */
function earlyConnections(playbook: Playbook, deps: StaticDeps, forks: number, extraVars: Vars, open: (host: string, vars: Vars) => Promise<Transport>): {connect(host: string, vars: Vars): Promise<Transport>; close(): Promise<void>} {
  const hosts = firstHosts(playbook, deps).slice(0, forks);
  const early = new Map(hosts.map((h) => {
    // The engine's connection variables: the inventory's under the extra vars.
    const p = open(h, {...deps.inventory.hostVars(h), ...extraVars});
    p.catch(() => undefined); // reported when the engine takes it
    return [h, p] as const;
  }));
  return {
    connect(host, vars) {
      const p = early.get(host);
      early.delete(host);
      return p ?? open(host, vars);
    },
    async close() {
      await Promise.all([...early.values()].map((p) => p.then((t) => t.close(), () => undefined).catch(() => undefined)));
      early.clear();
    },
  };
}

async function run(playbookArg: string, flags: RunFlags, secrets: Secrets, watch?: WatchHooks): Promise<ExitCodeValue> {
  const playbookPath = findPlaybook(playbookArg);
  if (flags.state !== undefined && !flags.onlyDrifted) throw badOption('--state goes with --only-drifted (the drift state it reads)');
  const drifted = flags.onlyDrifted ? readDriftedTasks(flags.state ?? DEFAULT_STATE_FILE, playbookPath) : undefined;
  const invPaths = flags.inventory ?? [defaultInventory()];
  const vault = {keyring: commandKeyring(flags.vaultPasswordFile, flags.vaultId), secrets};
  // -K first, as Ansible asks (BECOME password, then the vault's).
  const becomePassword = flags.askBecomePass ? await askBecomePassword(secrets) : undefined;
  await primeExtraVarsVault(flags.extraVars, vault.keyring);
  const [loaded, playbook] = await Promise.all([loadInventories(invPaths, vault), typecheckedPlaybook(playbookPath, flags.typecheck)]);
  const inventory = becomeInventory(loaded, becomePassword, secrets);
  const extraVars = parseExtraVars(flags.extraVars, vault);
  const limit = flags.limit !== undefined ? new Set(selectHosts(inventory, flags.limit, process.cwd())) : undefined;
  if (limit && limit.size === 0) throw badOption(`--limit '${flags.limit}' matches no host of ${relative(process.cwd(), inventory.source)}`);
  const opts: RunOptions = {
    check: !!flags.check, diff: !!flags.diff, tags: list(flags.tags), skipTags: list(flags.skipTags), forks: flags.forks, extraVars,
    lockTimeoutS: flags.lockTimeout, startAtTask: flags.startAtTask, verbose: flags.verbose, onlyTasks: drifted?.onlyTasks(secrets.mask),
  };
  const deps = staticDeps(playbookPath, inventory, drifted ? drifted.hosts(limit ?? inventory.hostNames) : limit, secrets);
  // --list-hosts/--list-tasks/--list-tags (text, also under --json) and an unknown --start-at-task: before anything connects.
  const listWhat = {hosts: !!flags.listHosts, tasks: !!flags.listTasks, tags: !!flags.listTags};
  if (listWhat.hosts || listWhat.tasks || listWhat.tags || opts.startAtTask !== undefined) {
    const plays = await listedPlays(playbook, deps.loadRole);
    const sel = {select: deps.select, limit: deps.limit, tags: opts.tags, skipTags: opts.skipTags};
    if (listWhat.hosts || listWhat.tasks || listWhat.tags) {
      await checkPlaybook(playbook, playbookPath, deps.loadRole);
      process.stdout.write(listing(relative(process.cwd(), playbookPath) || playbookPath, plays, listWhat, sel));
      return ExitCode.ok;
    }
    if (opts.startAtTask !== undefined && !startAtTaskFound(plays, opts.startAtTask, sel)) {
      // Ansible's words and exit code (0: it runs the plays, which run nothing, then says so).
      const tagged = opts.tags || opts.skipTags ? ' of those --tags/--skip-tags select' : '';
      throw new UserError(`No matching task "${opts.startAtTask}" found: --start-at-task takes a task's name, or 'role : name', or a glob of them (e.g. 'nginx : *')${tagged}`, ExitCode.ok);
    }
  }
  const connectOpts: ConnectOptions = {acceptNewHostKeys: !!flags.acceptNewHostKeys, inventoryDir: inventory.source, connectTimeoutMs: flags.timeout ? flags.timeout * 1000 : undefined};
  const connections = earlyConnections(playbook, deps, flags.forks, extraVars, (host, vars) => connectHost(host, vars, connectOpts));
  try {
    await checkPlaybook(playbook, playbookPath, deps.loadRole, {deps, opts});
  } catch (e) {
    await connections.close();
    throw e;
  }

  const ac = new AbortController();
  let interrupts = 0;
  // `quiet`: the live UI says it itself (q or Ctrl-C reach it as keys in raw mode).
  const interrupt = (quiet: boolean): void => {
    interrupts++;
    if (interrupts === 1) {
      if (!quiet) process.stderr.write('\ninterrupt: letting running tasks finish (Ctrl-C again to stop at once)\n');
      ac.abort();
    } else {
      process.exit(ExitCode.interrupted);
    }
  };
  // A signal (kill -INT, SIGTERM) while the live UI is up: it shows the stop itself.
  const onSigint = (): void => interrupt(!flags.json && flags.tui && !!process.stdout.isTTY);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const renderer = watch ? {emit: watch.emit, done: async () => undefined} : await pickRenderer(flags, {playbook: playbookArg, inventory: invPaths.join(', '), onInterrupt: () => interrupt(true)}, secrets);
  const emit = (e: RunEvent): void => renderer.emit(e);
  const allHosts = inventory.hostNames.filter((h) => !deps.limit || deps.limit.has(h));
  emit({type: 'start', playbook: playbook.name, inventory: inventory.source, check: !!flags.check, diff: !!flags.diff, hosts: allHosts});
  const step = flags.step ? stepPrompt() : undefined;
  try {
    const local = new LocalTransport();
    // provision watch: the same run, in check mode, as often as its schedule says (src/cli/watch.ts).
    if (watch) return await watch.drive((skip) => runPlaybook(playbook, opts, {...deps, limit: without(deps.limit, inventory.hostNames, skip), connect: connections.connect, local: () => local, emit, signal: ac.signal}), ac.signal);
    const summary = await runPlaybook(playbook, step ? {...opts, step: step.ask} : opts, {...deps, connect: connections.connect, local: () => local, emit, signal: ac.signal});
    await renderer.done();
    const hint = writeRetryFile(playbookPath, summary, (m) => process.stderr.write(`[WARNING]: ${m}\n`));
    if (hint) process.stderr.write(`${hint}\n`);
    return exitCodeOf(summary);
  } finally {
    await connections.close(); // any the run did not take (interrupted before it reached them)
    await renderer.done(); // gives the terminal back even when the run threw
    step?.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

export function buildProgram(secrets: Secrets = new Secrets()): Command {
  const program = new Command('provision')
    .description('Agentless provisioning: TypeScript playbooks, Ansible inventories, idempotent tasks over SSH')
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  program
    .command('run')
    .description('run a playbook: a name in playbooks/ (e.g. site) or a path to a .ts file')
    .argument('<playbook>', 'playbook name or path')
    .option('-i, --inventory <source>', 'inventory file, directory or executable script (repeatable: merged in order; default: $PROVISION_INVENTORY, else inventory/hosts.yml)', collect)
    .option('-C, --check', 'dry run: change nothing, report what would change')
    .option('-D, --diff', 'show unified diffs of changed files')
    .option('-l, --limit <pattern>', 'only these hosts (Ansible pattern, or @retry-file)')
    .option('-t, --tags <tags>', 'only tasks with these tags (comma-separated)')
    .option('--skip-tags <tags>', 'skip tasks with these tags (comma-separated)')
    .addOption(new Option('-f, --forks <n>', 'hosts in parallel').default(100).argParser(parseForks))
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yml (repeatable)', collect, [])
    .option('--json', 'write one JSON event per line on stdout')
    .option('-v, --verbose', 'more detail (repeatable)', (_v: string, prev: number) => prev + 1, 0)
    .option('--no-tui', 'plain lines even on a terminal')
    .option('--accept-new-host-keys', 'trust and record host keys not yet in known_hosts')
    .addOption(new Option('-T, --timeout <seconds>', 'connect timeout').argParser((v) => {
      const n = Number(v);
      if (!(n > 0)) throw badOption(`--timeout: expected seconds, got '${v}'`);
      return n;
    }))
    .addOption(new Option('--lock-timeout <seconds>', 'wait this long for another run holding a host\'s lock, then fail that host').default(30).argParser((v) => {
      const n = Number(v);
      if (!(n >= 0) || !Number.isFinite(n)) throw badOption(`--lock-timeout: expected seconds (0 or more), got '${v}'`);
      return n;
    }))
    .option('--vault-password-file <file>', 'read the vault passphrase from this file (else $PROVISION_VAULT_PASSWORD_FILE, $PROVISION_VAULT_PASSWORD, a prompt)')
    .option('--vault-id <label@source>', "a vault passphrase: label@file, label@script or label@prompt (repeatable; a vault whose header names a label tries that label's first, then the others)", collect)
    .option('-K, --ask-become-pass', "ask for the become password (sudo: the login user's; su: the become user's); a host's ansible_become_password wins")
    .option('--no-typecheck', 'skip the type check of the playbook and the files it loads (it is cached by content, so it costs nothing when they did not change)')
    .option('--list-hosts', "list each play's hosts (after --limit) and run nothing")
    .option('--list-tasks', "list each play's tasks (after --tags/--skip-tags) and run nothing")
    .option('--list-tags', "list each play's task tags and run nothing")
    .option('--start-at-task <name>', "start at the first task with this name (or 'role : name', or a glob of them)")
    .option('--step', 'confirm each task before it runs: (N)o/(y)es/(c)ontinue (plain output)')
    .option('--only-drifted', 'only the tasks the last `provision watch` check found drifted, on those hosts (and the handlers they notify)')
    .option('--state <file>', `with --only-drifted: the drift state watch wrote (default: ${DEFAULT_STATE_FILE})`)
    .action(async (pb: string, flags: RunFlags) => {
      process.exitCode = await run(pb, flags, secrets);
    });

  program
    .command('check')
    .description("check a playbook without touching any host (Ansible's --syntax-check): syntax, types, task arguments and options, handlers")
    .argument('<playbook>', 'playbook name or path')
    .option('-i, --inventory <source>', 'also check the arguments computed from its variables and the templates (repeatable; default: as for run, when there is one)', collect)
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yml (repeatable)', collect, [])
    .option('--no-typecheck', 'skip the type check')
    .action(async (pb: string, flags: {typecheck: boolean; inventory?: string[]; extraVars: string[]}) => {
      const path = findPlaybook(pb);
      const playbook = await typecheckedPlaybook(path, flags.typecheck);
      let invPaths = flags.inventory;
      if (invPaths === undefined) {
        try {
          invPaths = [defaultInventory()];
        } catch {
          invPaths = undefined; // no inventory: the checks that need one are skipped
        }
      }
      const loadRole = roleLoader(path);
      const vault = {keyring: commandKeyring(undefined), secrets};
      const inventory = invPaths === undefined ? undefined : await loadInventories(invPaths, vault);
      await checkPlaybook(playbook, path, loadRole, inventory && {deps: staticDeps(path, inventory, undefined, secrets, loadRole), opts: {check: true, diff: false, forks: 1, extraVars: parseExtraVars(flags.extraVars, vault)}});
      process.stdout.write(`${relative(process.cwd(), path) || path}: ok (${playbook.plays.length} play${playbook.plays.length === 1 ? '' : 's'})\n`);
      process.exitCode = ExitCode.ok;
    });

  registerInventory(program, defaultInventory, secrets);

  program
    .command('ping')
    .description('connect to hosts and check become works (like ansible -m ping)')
    .argument('[pattern]', 'host pattern', 'all')
    .option('-i, --inventory <source>', 'inventory file, directory or script (repeatable: merged in order)', collect)
    .option('-l, --limit <pattern>', 'further limit the hosts')
    .option('--accept-new-host-keys', 'trust and record host keys not yet in known_hosts')
    .option('--json', 'one JSON result per host')
    .option('-K, --ask-become-pass', 'ask for the become password')
    .addOption(new Option('-f, --forks <n>', 'hosts in parallel').default(100).argParser(parseForks))
    .action(async (pattern: string, flags: {inventory?: string[]; limit?: string; acceptNewHostKeys?: boolean; json?: boolean; askBecomePass?: boolean; forks: number}) => {
      process.exitCode = await adhoc('ping', pattern, undefined, flags, defaultInventory, {keyring: commandKeyring(undefined), secrets});
    });

  program
    .command('exec')
    .description('run an ad-hoc shell command on hosts: provision exec web* -- uptime')
    .argument('<pattern>', 'host pattern')
    .argument('<command...>', 'the command (put it after --)')
    .option('-i, --inventory <source>', 'inventory file, directory or script (repeatable: merged in order)', collect)
    .option('-l, --limit <pattern>', 'further limit the hosts')
    .option('-b, --become', 'run as ansible_become_user (default root), by ansible_become_method (sudo, su)')
    .option('-K, --ask-become-pass', 'ask for the become password')
    .option('--accept-new-host-keys', 'trust and record host keys not yet in known_hosts')
    .option('--json', 'one JSON result per host')
    .addOption(new Option('-f, --forks <n>', 'hosts in parallel').default(100).argParser(parseForks))
    .action(async (pattern: string, command: string[], flags: {inventory?: string[]; limit?: string; become?: boolean; acceptNewHostKeys?: boolean; json?: boolean; askBecomePass?: boolean; forks: number}) => {
      process.exitCode = await adhoc('exec', pattern, command.join(' '), flags, defaultInventory, {keyring: commandKeyring(undefined), secrets});
    });

  registerLab(program, labInventory);
  registerVault(program);
  registerInit(program);
  registerWatch(program, {run: (pb, flags, hooks) => run(pb, flags, secrets, hooks), exitCodeOf, secrets});
  return program;
}

/** Entry point: parse argv, run, map every error to one line and an exit code. */
export async function main(argv: readonly string[]): Promise<void> {
  // The secrets this command meets (vault values, a playbook's Secrets): its writers and its error
  // lines mask them. One command per process: made here, passed to the command, not held by a module.
  const secrets = new Secrets();
  const {mask} = secrets;
  const program = buildProgram(secrets);
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message (or the help / version).
      process.exitCode = e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : ExitCode.badOptions;
      return;
    }
    if (e instanceof UserErrors) {
      for (const line of e.lines) process.stderr.write(`provision: ${mask(line).replace(/[\r\n]+/g, ' ')}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof UserError) {
      process.stderr.write(`provision: ${e.oneLine(mask)}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`provision: internal error: ${mask(err.message)}\n${process.env.PROVISION_DEBUG ? mask(err.stack ?? '') + '\n' : ''}This is a bug in provision; please report it with the command you ran (PROVISION_DEBUG=1 shows the stack).\n`);
    process.exitCode = ExitCode.error;
  }
}

