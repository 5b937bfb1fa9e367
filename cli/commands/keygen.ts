/** `plugindex keygen`: a publisher key pair, the secret half readable by its owner only. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateKeyPair } from '../../index-builder/signing.ts';
import { type Parsed, requiredOption, stringOption } from '../args.ts';
import { readPassphrase } from '../inputs.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = requiredOption(parsed, 'out');
  const passphrase = await readPassphrase(parsed);
  const email = stringOption(parsed, 'email');
  const pair = await generateKeyPair({
    name: stringOption(parsed, 'name') ?? 'plugindex publisher',
    ...(email ? { email } : {}),
    ...(passphrase ? { passphrase } : {}),
  });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'secret.asc'), pair.secretKey, { mode: 0o600 });
  await writeFile(path.join(dir, 'public.asc'), pair.publicKey);
  out(pair.fingerprint);
  return 0;
}
