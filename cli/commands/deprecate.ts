/**
 * `plugindex deprecate NAME[@RANGE] --message TEXT [--replacement NAME]`: a signed action that deprecates
 * the versions in RANGE, or without one the whole plugin (later versions too).
 */

import { nameAtRange, optionalFields, positionals, requiredText, runAction } from '../action.ts';
import type { Parsed } from '../args.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [spec] = positionals(parsed, 1, 'one NAME or NAME@RANGE');
  return runAction(parsed, {
    body: {
      action: 'deprecate',
      ...nameAtRange(spec as string),
      message: requiredText(parsed, 'message', 'TEXT (what users should know)'),
      ...optionalFields(parsed, ['replacement']),
    },
  });
}
