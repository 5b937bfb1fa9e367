/**
 * `plugindex submit FILE`: a signed action made elsewhere (`yank ... --output FILE` on an offline machine,
 * say) submitted as the command that made it would have: locally or to the upload bucket, then its
 * recorded outcome. The file is read as the registry reads it first, so what is not a signed action is
 * refused here, with every fault, and never uploaded.
 */
import { readSignedAction } from '../../index-builder/actions.ts';
import { positionals } from '../action.ts';
import type { Parsed } from '../args.ts';
import { readInput } from '../inputs.ts';
import { reportOutcome, submit, submitTarget } from '../submit.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [file] = positionals(parsed, 1, 'one FILE (a signed action, as --output writes it)');
  const target = submitTarget(parsed);
  const bytes = await readInput(file as string);
  readSignedAction(bytes);
  const outcome = await submit(target, {
    name: file as string,
    contentType: 'application/json',
    body: { bytes },
  });
  return reportOutcome(parsed, outcome);
}
