/**
 * A plugin name's look-alike skeleton (see look-alike.ts for the rule and why it is no wider): the one
 * definition the publish's `NAME_TOO_SIMILAR` judges by and the search's look-alike flags group by
 * (search.ts), in a module of its own so the search function's bundle and the client take the rule without
 * the name index's storage (filed-index.ts, layout.ts).
 */

/** What a refusal says of the rule, in one sentence a publisher can check a name against. */
export const LOOK_ALIKE_RULE =
  'names are compared ignoring case and the separators "-", "_" and ".", with "0" read as "o" and "1" as "l"';

/**
 * The form two names share when one would pass for the other: lowercase, no `-`, `_` or `.`, `0` as `o` and
 * `1` as `l`. Total over any string (a document a rebuild takes as it is may hold a name of an older rule).
 * @example nameSkeleton('aws-c0st') === nameSkeleton('awscost') // 'awscost'
 */
export function nameSkeleton(name: string): string {
  return name.toLowerCase().replace(/[-_.]/g, '').replace(/0/g, 'o').replace(/1/g, 'l');
}

/**
 * Whether two plugins' owners (fingerprints, uppercase) are the same keys, and some: no key may publish one
 * name and not the other. The one test that clears a look-alike pair, for the search's flags (search.ts
 * `lookAlikesOf`) and a plugin document's `look_alikes` (look-alike.ts `lookAlikesWithin`).
 */
export function sameHands(mine: ReadonlySet<string>, theirs: ReadonlySet<string>): boolean {
  if (mine.size === 0 || mine.size !== theirs.size) return false;
  for (const owner of mine) if (!theirs.has(owner)) return false;
  return true;
}
