/** Files the controller writes for itself (vaults, caches, lab state): never half-written. */
import {chmodSync, mkdirSync, renameSync, writeFileSync} from 'node:fs';
import {randomBytes} from 'node:crypto';
import {basename, dirname, join} from 'node:path';

/**
 * Write `content` to a temp file beside `path` (unique per process and call, so concurrent writers do
 * not collide) and rename it over `path`: a reader sees the old file or the new one, never a part.
 */
export function writeFileAtomic(path: string, content: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(path), {recursive: true});
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, content, {mode});
  chmodSync(tmp, mode); // the umask may have narrowed it
  renameSync(tmp, path);
}
