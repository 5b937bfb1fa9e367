/** `plugindex unyank NAME@VERSION`: a signed action that puts a yanked version back. */

import { nameAtVersion, positionals, runAction } from '../action.ts';
import type { Parsed } from '../args.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [spec] = positionals(parsed, 1, 'one NAME@VERSION');
  return runAction(parsed, { body: { action: 'unyank', ...nameAtVersion(spec as string) } });
}
