/**
 * Reading a regex match's capture groups where the pattern guarantees them (`noUncheckedIndexedAccess`
 * types every group `string | undefined`): a group outside any `?`, `|` or `*` always holds a string
 * once the regex matched, so a missing one is a bug in provision, not in the user's input.
 */

/** Capture group `i` of `m`, which the regex always captures when it matches; throws an internal Error if not. */
export function group(m: RegExpExecArray | RegExpMatchArray, i: number): string {
  const g = m[i];
  if (g === undefined) throw new Error(`internal error: regex group ${i} did not capture in ${JSON.stringify(m[0])}`);
  return g;
}
