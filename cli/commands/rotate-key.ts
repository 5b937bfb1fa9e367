/**
 * `plugindex rotate-key`: move a registry to a new signing key, published as a rotation signed by the old
 * key and the new one, after which everything is signed again by the new key and clients that pinned the
 * old one follow the rotation. Locally (`--registry DIR --new-key FILE`, cli/local/rotate-key.ts), or on a
 * deployed registry (`--bucket ... --queue-url ...`, cli/remote.ts) once the new key is in the signing key
 * secret. Secret keys are decrypted with PLUGINDEX_KEY_PASSPHRASE, as the registry's own is; on a deployed
 * registry the new key may have a passphrase of its own (`--new-passphrase-file`), as it should after a
 * compromise: the old passphrase may be known to whoever took the old key. `--compromised` (either form)
 * marks the signed rotation as made because the old key is no longer secret: clients that follow it stop
 * trusting the old key for anything (client/key-chain.ts). Exit codes as `publish`: 0 done,
 * 1 refused (the problems say why) or no outcome in time (OUTCOME_TIMEOUT, as `publish --bucket`), 2 usage.
 */
import { type Parsed, requiredOption, stringOption } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import {
  readPassphrase,
  readSecretKeyFile,
  refuseOutputOver,
  registryUrlOptionText,
  serviceUrlOption,
} from '../inputs.ts';
import { formatProblems, outJson } from '../output.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const dir = stringOption(parsed, 'registry');
  const bucket = stringOption(parsed, 'bucket');
  if ((dir === undefined) === (bucket === undefined))
    throw usage('give exactly one of --registry DIR or --bucket UPLOAD_BUCKET');
  const newKey = await readSecretKeyFile(requiredOption(parsed, 'new-key'), '--new-key');
  const passphrase = process.env.PLUGINDEX_KEY_PASSPHRASE;
  return dir !== undefined
    ? rotateLocally(parsed, dir, newKey, passphrase)
    : rotateDeployed(parsed, bucket as string, newKey, passphrase);
}

async function rotateLocally(
  parsed: Parsed,
  dir: string,
  newKey: string,
  passphrase: string | undefined,
): Promise<number> {
  // --new-passphrase-file too: the local registry opens its key file, the new key once it is swapped in
  // (and again by a resumed rotation), with PLUGINDEX_KEY_PASSPHRASE alone.
  for (const option of ['queue-url', 'old-key', 'url', 'new-passphrase-file', 'endpoint', 'timeout'])
    if (stringOption(parsed, option) !== undefined) throw usage(`--${option} is for --bucket`);
  const output = stringOption(parsed, 'output');
  // Never over the new key it is signed with (the rotation's only way to be finished), another secret key, or
  // into the registry's folder (its config, its key, its published state).
  if (output !== undefined) await refuseOutputOver('output', output, [stringOption(parsed, 'new-key')], dir);
  const { rotateLocalRegistry } = await import('../local/rotate-key.ts');
  const result = await rotateLocalRegistry(dir, newKey, {
    ...(passphrase ? { passphrase } : {}),
    ...(parsed.values.compromised === true ? { compromised: true } : {}),
    ...(output !== undefined ? { output } : {}),
  });
  if (parsed.values.json) {
    outJson(result);
    return 0;
  }
  if ('written' in result) {
    out(
      `wrote rotation ${result.sequence} to key ${result.fingerprint} in ${result.written}${result.compromised ? ' (the old key marked compromised)' : ''}`,
    );
    return 0;
  }
  if (result.status === 'already-rotated') {
    out(`rotation ${result.sequence} to key ${result.fingerprint} was already complete`);
    return 0;
  }
  out(
    `${result.resumed ? 'finished' : 'published'} rotation ${result.sequence}: key ${result.previous} -> ${result.fingerprint}`,
  );
  out(
    `  signed again: ${result.plugins} plugins, ${result.manifests} manifests; generation ${result.generation}`,
  );
  out(`  the old secret key is kept in ${result.retired}`);
  if (result.compromised)
    out(
      `  marked compromised: clients that follow rotation ${result.sequence} no longer trust key ${result.previous} for anything`,
    );
  return 0;
}

/**
 * `--url`: the registry's URL as its config holds it (no trailing slash), which the function holds the
 * rotation's to; a usage error, before any key is read, for one that could not be a registry's URL.
 */
function registryUrlOption(parsed: Parsed): string | undefined {
  const raw = stringOption(parsed, 'url');
  return raw === undefined ? undefined : registryUrlOptionText(raw, "--url must be the registry's URL");
}

async function rotateDeployed(
  parsed: Parsed,
  bucket: string,
  newKey: string,
  passphrase: string | undefined,
): Promise<number> {
  if (stringOption(parsed, 'output') !== undefined) throw usage('--output is for --registry');
  requiredOption(parsed, 'queue-url');
  const queueUrl = serviceUrlOption(parsed, 'queue-url') as string;
  const url = registryUrlOption(parsed);
  const oldKey = await readSecretKeyFile(requiredOption(parsed, 'old-key'), '--old-key');
  // The new key's own passphrase, read as keygen reads it (an empty file refused); without it the new key
  // is decrypted with PLUGINDEX_KEY_PASSPHRASE, as the old one is.
  const newPassphrase = await readPassphrase(parsed, 'new-passphrase-file');
  const rawTimeout = stringOption(parsed, 'timeout') ?? '300';
  const timeout = Number(rawTimeout);
  // An empty one read as 0 s (Number('')), the outcome never waited for.
  if (rawTimeout.trim() === '' || !Number.isFinite(timeout) || timeout < 0)
    throw usage('--timeout must be a number of seconds');
  const endpoint = serviceUrlOption(parsed, 'endpoint');
  const { rotateThroughQueue } = await import('../remote.ts');
  const result = await rotateThroughQueue({
    bucket,
    queueUrl,
    oldSecretKey: oldKey,
    newSecretKey: newKey,
    ...(parsed.values.compromised === true ? { compromised: true } : {}),
    ...(passphrase ? { passphrase } : {}),
    ...(newPassphrase !== undefined ? { newPassphrase } : {}),
    ...(url !== undefined ? { url } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    timeoutSeconds: timeout,
    log: err,
  });
  const { outcome } = result;
  // No outcome in time is a failure like any other (exit 1), as `publish`'s is (cli/submit.ts): under --json
  // the result was printed without its outcome, which a program could not tell from a rotation done, nor
  // read as the `{"ok": false, "error"}` every other --json failure prints.
  if (!outcome)
    throw new CliError(
      'OUTCOME_TIMEOUT',
      `uploaded rotation ${result.sequence} to s3://${bucket}/${result.uploadKey}; no outcome after ${timeout} s: read s3://${bucket}/${result.outcomeKey} later`,
      {
        detail: {
          bucket,
          upload_key: result.uploadKey,
          status_keys: [result.outcomeKey],
          sequence: result.sequence,
        },
      },
    );
  if (parsed.values.json) {
    outJson(result);
    return outcome.status === 'rejected' ? 1 : 0;
  }
  if (outcome.status === 'rejected') {
    out(`rejected rotation ${result.sequence} (${result.uploadKey})`);
    for (const line of formatProblems(outcome.problems)) out(line);
    return 1;
  }
  out(
    `${outcome.status === 'rotated' ? 'published' : 'already published'} rotation ${outcome.sequence}: key ${outcome.previous} -> ${outcome.fingerprint}, generation ${outcome.generation}`,
  );
  if (outcome.compromised)
    out(
      `  marked compromised: clients that follow rotation ${outcome.sequence} no longer trust key ${outcome.previous} for anything`,
    );
  return 0;
}
