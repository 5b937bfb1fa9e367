/**
 * `plugindex publish FILE.tgz`: into a local registry (the pipeline runs once, under the registry's lock, in
 * the server running on it if there is one)
 * or to a deployed one (the upload bucket; then wait for the outcome the publish function records), the
 * way every submission goes (cli/submit.ts). The bundle is streamed, never read whole, and only the side
 * asked for is loaded: the AWS SDK for --bucket.
 */
import { open } from 'node:fs/promises';
import { SECRET_KEY_ARMOR } from '../../index-builder/armor.ts';
import type { Parsed } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import { requireFile } from '../inputs.ts';
import { reportOutcome, submit, submitTarget } from '../submit.ts';

/**
 * The first byte of a binary secret key (gpg --export-secret-keys): a Secret-Key Packet, tag 5, in the old
 * packet format (0x94-0x97, by length type) or the new one (0xC5) (RFC 9580 §4.2, §5.5.1.3).
 */
const SECRET_KEY_PACKET_BYTES = new Set([0x94, 0x95, 0x96, 0x97, 0xc5]);

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
  // A secret key file begins with its armor, after any blank space or byte order mark.
  const text = head.toString('latin1').replace(/^(\xef\xbb\xbf)?\s*/, '');
  if (text.startsWith(SECRET_KEY_ARMOR) || SECRET_KEY_PACKET_BYTES.has(head[0] ?? -1))
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
