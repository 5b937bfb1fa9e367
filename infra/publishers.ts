/**
 * Trusted publishers from the deployment (`-c publishers=FILE`): the trust list is code, reviewed and
 * deployed like the rest of the stack, rather than an object anyone with bucket access could replace.
 *
 * FILE is JSON: `{"publishers": [{"key": "keys/acme.asc", "names": ["acme-*"], "label": "ACME"}],
 * "operators": [{"key": "keys/ops.asc", "label": "ops"}]}`, each key an armored OpenPGP public key file,
 * relative to FILE; `operators` (who may sign every lifecycle action, the operator-only ones too) is
 * optional, and a deployed list names every operator: none when it lists none. At synth the keys are read
 * and checked, and the list (fingerprint, names, public key) is written as `publishers.json` next to each
 * function's bundle, where functions/env.ts reads it at cold start.
 *
 * @example
 * const publishers = await loadTrustedPublishers('deploy/publishers.json');
 * new PlugindexStack(app, 'Plugindex', { functionsDir, trustedPublishers: publishers });
 */
import { cpSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PUBLISHERS_FILE } from '../functions/env.ts';
import { SECRET_KEY_ARMOR } from '../index-builder/armor.ts';
import {
  nameGlobProblem,
  parseTrustedOperators,
  parseTrustedPublishers,
  type TrustedOperator,
  type TrustedPublisher,
} from '../index-builder/config.ts';
import { readPublicKey, untrustedKeyProblem } from '../index-builder/signing.ts';
import { InfraError } from './errors.ts';

function fail(where: string, message: string, cause?: unknown): never {
  throw new InfraError('PUBLISHERS_INVALID', `${where}: ${message}`, cause ? { cause } : undefined);
}

/** A trust list as deployed: the publishers, and the operator's keys. */
export interface DeployedTrust {
  readonly publishers: TrustedPublisher[];
  readonly operators: TrustedOperator[];
}

/**
 * Reads a public key file named at `at` (relative to `file`): never a secret key, which would be copied
 * into the function bundle.
 */
async function readKeyFile(file: string, at: string, key: string) {
  const keyFile = path.resolve(path.dirname(file), key);
  let armored: string;
  try {
    armored = await readFile(keyFile, 'utf8');
  } catch (cause) {
    fail(at, `cannot read ${keyFile}: ${(cause as Error).message}`, cause);
  }
  // A secret key here would be copied into the function bundle: refuse it rather than strip it quietly.
  if (armored.includes(SECRET_KEY_ARMOR)) {
    fail(at, `${keyFile} is a secret key; give the public key (public.asc)`);
  }
  const info = await readPublicKey(armored).catch((cause: unknown) =>
    fail(at, `${keyFile}: ${(cause as Error).message}`, cause),
  );
  // The same under a public key's armor header: openpgp.js reads secret packets under either.
  if (info.secret) fail(at, `${keyFile} is a secret key; give the public key (public.asc)`);
  // Refused at deploy: the publish function would refuse every signature by it, publish after publish.
  const untrusted = untrustedKeyProblem(info.key);
  if (untrusted) fail(at, `${keyFile} is key ${info.fingerprint}, which cannot be trusted: ${untrusted}`);
  return info;
}

/**
 * Reads and checks a trust-list file: its publishers and its operators.
 * @throws InfraError PUBLISHERS_INVALID naming the file, the JSON pointer and what was expected.
 */
export async function loadTrustList(file: string): Promise<DeployedTrust> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    fail(file, `cannot read it as JSON: ${(cause as Error).message}`, cause);
  }
  const publishers = await readPublishers(file, value);
  const listed = (value as { operators?: unknown } | null)?.operators ?? [];
  if (!Array.isArray(listed)) fail(`${file}#/operators`, 'expected an array of {"key", "label"?}');
  const operators: TrustedOperator[] = [];
  for (const [i, entry] of listed.entries()) {
    const at = `${file}#/operators/${i}`;
    const { key, label } = (entry ?? {}) as Record<string, unknown>;
    if (typeof key !== 'string' || key === '') fail(`${at}/key`, 'expected the path of a public key file');
    if (label !== undefined && typeof label !== 'string') fail(`${at}/label`, 'expected a string');
    const publicKey = await readKeyFile(file, `${at}/key`, key);
    if (operators.some((o) => o.fingerprint === publicKey.fingerprint))
      fail(`${at}/key`, `key ${publicKey.fingerprint} is listed twice`);
    operators.push({
      fingerprint: publicKey.fingerprint,
      key: publicKey.armored,
      ...(label !== undefined ? { label } : {}),
    });
  }
  parseTrustedOperators(operators);
  return { publishers, operators };
}

/**
 * Reads and checks the publishers of a trust-list file.
 * @throws InfraError PUBLISHERS_INVALID naming the file, the JSON pointer and what was expected.
 */
export async function loadTrustedPublishers(file: string): Promise<TrustedPublisher[]> {
  return (await loadTrustList(file)).publishers;
}

async function readPublishers(file: string, value: unknown): Promise<TrustedPublisher[]> {
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
    for (const [j, glob] of (names as string[]).entries()) {
      const problem = nameGlobProblem(glob);
      if (problem) fail(`${at}/names/${j}`, problem);
    }
    if (label !== undefined && typeof label !== 'string') fail(`${at}/label`, 'expected a string');
    const publicKey = await readKeyFile(file, `${at}/key`, key);
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
  operators: readonly TrustedOperator[] = [],
): void {
  cpSync(bundleDir, outputDir, { recursive: true });
  const list = operators.length > 0 ? { publishers, operators } : { publishers };
  writeFileSync(path.join(outputDir, PUBLISHERS_FILE), `${JSON.stringify(list, null, 2)}\n`);
}
