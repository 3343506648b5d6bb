/**
 * A small CLI entry for the e2e tests: `provision lab …` through the real `registerLab`, with the
 * same error mapping as src/cli/main.ts (one line, exit code). Run with `node --import=tsx`.
 */
import {Command, CommanderError} from 'commander';
import {UserError} from '../../src/core/errors.ts';
import {registerLab} from '../../src/cli/lab.ts';

const program = new Command('provision').exitOverride();
registerLab(program, () => 'inventory/lab.yml');
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode;
  else if (e instanceof UserError) {
    process.stderr.write(`provision: ${e.oneLine()}\n`);
    process.exitCode = e.exitCode;
  } else {
    process.stderr.write(`provision: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  }
}
