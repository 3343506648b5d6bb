/** `--json`: one event per line on stdout, secrets masked in every field. */
import type {RunEvent} from '../core/events.ts';
import type {Secrets} from '../core/secret.ts';

export function jsonWriter(write: (line: string) => void, secrets: Pick<Secrets, 'maskValue'>): (event: RunEvent) => void {
  // Mask the values, then serialise: the serialiser escapes a secret's `"`, `\` or newline.
  return (event) => write(JSON.stringify(secrets.maskValue(event)) + '\n');
}
