/**
 * `plugindex publish FILE.tgz`: into a local registry (the pipeline runs once, under the registry's lock, in
 * the server running on it if there is one)
 * or to a deployed one (the upload bucket; then wait for the outcome the publish function records), the
 * way every submission goes (cli/submit.ts). The bundle is streamed, never read whole, and only the side
 * asked for is loaded: the AWS SDK for --bucket.
 */
import { open } from 'node:fs/promises';
import type { Parsed } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import { holdsSecretKey, requireFile } from '../inputs.ts';
import { reportOutcome, submit, submitTarget } from '../submit.ts';

/**
 * Refuses a FILE that is a secret key (a completion one folder off: `publish my-key/secret.asc`), before
 * anything is sent: the registry would refuse it as no bundle, but only after keeping it (in `rejected/`,
 * on AWS in the upload bucket), where the operator reads it.
 */
async function refuseSecretKey(file: string): Promise<void> {
  const handle = await open(file, 'r');
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  // A secret key file holds its armor in its first KiB, after any blank space, byte order mark or comment.
  if (holdsSecretKey(head))
    throw new CliError(
      'SECRET_KEY_GIVEN',
      `${file} is a secret key, not a bundle: nothing was sent (publish the .tgz that plugindex pack wrote)`,
      { exitCode: 2 },
    );
}

export async function run(parsed: Parsed): Promise<number> {
  const file = parsed.positionals[0];
  if (!file || parsed.positionals.length > 1) throw usage('publish takes exactly one FILE');
  const target = submitTarget(parsed);
  await requireFile(file);
  await refuseSecretKey(file);
  const outcome = await submit(target, { name: file, contentType: 'application/gzip', body: { file } });
  return reportOutcome(parsed, outcome);
}
