/**
 * The one shell-quoting function. `core/cmd.ts` builds typed commands on it; `facts/` quotes the paths
 * of its probes with it.
 */
import {quote} from 'shell-quote';

/** Quote one word for a POSIX shell. */
export function q(word: string): string {
  return quote([word]);
}
