/**
 * `plugindex publish FILE.tgz`: into a local registry (the pipeline runs once, under the registry's lock, in
 * the server running on it if there is one)
 * or to a deployed one (the upload bucket; then wait for the outcome the publish function records), the
 * way every submission goes (cli/submit.ts). The bundle is streamed, never read whole, and only the side
 * asked for is loaded: the AWS SDK for --bucket.
 */
import type { Parsed } from '../args.ts';
import { usage } from '../errors.ts';
import { requireFile } from '../inputs.ts';
import { reportOutcome, submit, submitTarget } from '../submit.ts';

export async function run(parsed: Parsed): Promise<number> {
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length > 1) throw usage('publish takes exactly one FILE');
  const target = submitTarget(parsed);
  await requireFile(file);
  const outcome = await submit(target, { name: file, contentType: 'application/gzip', body: { file } });
  return reportOutcome(parsed, outcome);
}
