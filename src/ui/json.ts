/** `--json`: one event per line on stdout, secrets masked in every field. */
import type {RunEvent} from '../core/events.ts';
import {mask} from '../core/secret.ts';

export function jsonWriter(write: (line: string) => void): (event: RunEvent) => void {
  return (event) => write(mask(JSON.stringify(event)) + '\n');
}
