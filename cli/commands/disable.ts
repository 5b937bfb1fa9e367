/** `plugindex disable NAME`: a disabled plugin stays installed; hosts reading installed.json skip it. */
import type { Parsed } from '../args.ts';
import { setEnabled } from './enable.ts';

export function run(parsed: Parsed): Promise<number> {
  return setEnabled(parsed, false);
}
