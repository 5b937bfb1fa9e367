/** `plugindex undeprecate NAME[@RANGE]`: a signed action that lifts a deprecation. */

import { nameAtRange, positionals, runAction } from '../action.ts';
import type { Parsed } from '../args.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [spec] = positionals(parsed, 1, 'one NAME or NAME@RANGE');
  return runAction(parsed, { body: { action: 'undeprecate', ...nameAtRange(spec as string) } });
}
