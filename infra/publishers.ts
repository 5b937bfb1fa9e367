/**
 * Trusted publishers from the deployment (`-c publishers=FILE`): the trust list is code, reviewed and
 * deployed like the rest of the stack, rather than an object anyone with bucket access could replace.
 *
 * FILE is JSON: `{"publishers": [{"key": "keys/acme.asc", "names": ["acme-*"], "label": "ACME"}]}`, each key
 * an armored OpenPGP public key file, relative to FILE. At synth the keys are read and checked, and the
 * list (fingerprint, names, public key) is written as `publishers.json` next to each function's bundle,
 * where functions/env.ts reads it at cold start.
 *
 * @example
 * const publishers = await loadTrustedPublishers('deploy/publishers.json');
 * new PlugindexStack(app, 'Plugindex', { functionsDir, trustedPublishers: publishers });
 */
import { cpSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PUBLISHERS_FILE } from '../functions/env.ts';
import { parseTrustedPublishers, type TrustedPublisher } from '../index-builder/config.ts';
import { readPublicKey } from '../index-builder/signing.ts';
import { InfraError } from './errors.ts';

function fail(where: string, message: string, cause?: unknown): never {
  throw new InfraError('PUBLISHERS_INVALID', `${where}: ${message}`, cause ? { cause } : undefined);
}

/**
 * Reads and checks a trust-list file.
 * @throws InfraError PUBLISHERS_INVALID naming the file, the JSON pointer and what was expected.
 */
export async function loadTrustedPublishers(file: string): Promise<TrustedPublisher[]> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    fail(file, `cannot read it as JSON: ${(cause as Error).message}`, cause);
  }
  const list = (value as { publishers?: unknown } | null)?.publishers;
  if (!Array.isArray(list) || list.length === 0) {
    fail(`${file}#/publishers`, 'expected a non-empty array of {"key", "names", "label"?}');
  }
  const publishers: TrustedPublisher[] = [];
  for (const [i, entry] of list.entries()) {
    const at = `${file}#/publishers/${i}`;
    const { key, names, label } = (entry ?? {}) as Record<string, unknown>;
    if (typeof key !== 'string' || key === '') fail(`${at}/key`, 'expected the path of a public key file');
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n)) {
      fail(`${at}/names`, 'expected a non-empty array of plugin name globs, e.g. ["acme-*"]');
    }
    if (label !== undefined && typeof label !== 'string') fail(`${at}/label`, 'expected a string');
    const keyFile = path.resolve(path.dirname(file), key);
    let armored: string;
    try {
      armored = await readFile(keyFile, 'utf8');
    } catch (cause) {
      fail(`${at}/key`, `cannot read ${keyFile}: ${(cause as Error).message}`, cause);
    }
    // A secret key here would be copied into the function bundle: refuse it rather than strip it quietly.
    if (armored.includes('PRIVATE KEY BLOCK')) {
      fail(`${at}/key`, `${keyFile} is a secret key; give the publisher's public key (public.asc)`);
    }
    const publicKey = await readPublicKey(armored).catch((cause: unknown) =>
      fail(`${at}/key`, `${keyFile}: ${(cause as Error).message}`, cause),
    );
    if (publishers.some((p) => p.fingerprint === publicKey.fingerprint)) {
      fail(`${at}/key`, `key ${publicKey.fingerprint} is listed twice; give one entry all its names`);
    }
    publishers.push({
      fingerprint: publicKey.fingerprint,
      names: names as string[],
      key: publicKey.armored,
      ...(label !== undefined ? { label } : {}),
    });
  }
  // The functions check the list again at cold start with the same parser: fail here, not in production.
  parseTrustedPublishers(publishers);
  return publishers;
}

/**
 * Copies a function's bundle folder to `outputDir` and writes the trust list beside it: the CDK asset's
 * local bundling step (constructs/publishing.ts), and what the tests run.
 */
export function stageFunction(
  bundleDir: string,
  outputDir: string,
  publishers: readonly TrustedPublisher[],
): void {
  cpSync(bundleDir, outputDir, { recursive: true });
  writeFileSync(path.join(outputDir, PUBLISHERS_FILE), `${JSON.stringify({ publishers }, null, 2)}\n`);
}
