/**
 * Retry files, as Ansible writes them: after a run where hosts failed or were unreachable, their
 * names (one a line) go to `<playbook>.retry` in $PROVISION_RETRY_DIR, else the working directory;
 * `--limit @<playbook>.retry` then runs on those hosts only (patterns read `@file`).
 */
import {mkdirSync, writeFileSync} from 'node:fs';
import {basename, extname, join, relative, resolve} from 'node:path';
import type {RunSummary} from '../core/engine.ts';

/** The hosts to retry: those with a failed task (not ignored) or unreachable, in the summary's order. */
export function hostsToRetry(summary: RunSummary): string[] {
  return Object.entries(summary.hosts).filter(([, c]) => c.failed > 0 || c.unreachable > 0).map(([h]) => h);
}

/** Where the retry file of a playbook goes. */
export function retryFilePath(playbookPath: string, env: NodeJS.ProcessEnv = process.env): string {
  const name = basename(playbookPath, extname(playbookPath));
  return resolve(env.PROVISION_RETRY_DIR || process.cwd(), `${name}.retry`);
}

/**
 * Write the retry file when some hosts failed; returns the hint to print ("to retry, use: --limit
 * @…"), or undefined when there is nothing to retry or the file cannot be written (then a warning).
 */
export function writeRetryFile(playbookPath: string, summary: RunSummary, warn: (msg: string) => void): string | undefined {
  const hosts = hostsToRetry(summary);
  if (hosts.length === 0) return undefined;
  const path = retryFilePath(playbookPath);
  try {
    mkdirSync(join(path, '..'), {recursive: true});
    writeFileSync(path, hosts.map((h) => `${h}\n`).join(''));
  } catch (e) {
    warn(`could not write the retry file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return undefined;
  }
  const shown = relative(process.cwd(), path);
  return `to retry, use: --limit @${shown && !shown.startsWith('..') ? shown : path}`;
}
