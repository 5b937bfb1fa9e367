/** `plugindex yank NAME@VERSION [--reason TEXT]`: a signed action that takes a version out of resolution. */

import { nameAtVersion, optionalFields, positionals, runAction } from '../action.ts';
import type { Parsed } from '../args.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [spec] = positionals(parsed, 1, 'one NAME@VERSION');
  return runAction(parsed, {
    body: { action: 'yank', ...nameAtVersion(spec as string), ...optionalFields(parsed, ['reason']) },
  });
}
