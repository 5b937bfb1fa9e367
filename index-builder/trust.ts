/**
 * Publisher trust: who signed a submission, and may that key publish this name. The registry key is never a
 * publisher key, whatever the bundle or the config says.
 */
import { type Key, readKeys } from 'openpgp';
import picomatch from 'picomatch';
import type { PublishPolicy, RegistryConfig } from './config.ts';
import { type Problem, type ProblemCode, problem } from './errors.ts';
import {
  keyComplexityProblem,
  keyUsableAt,
  type PublicKeyInfo,
  readPublicKey,
  verifyDetachedSignature,
} from './signing.ts';

/** The configured publisher keys, read once per batch. */
export interface TrustedKeys {
  readonly keys: readonly PublicKeyInfo[];
  /** Every fingerprint (primary and subkeys) of the registry's own key. */
  readonly registryFingerprints: readonly string[];
}

export async function loadTrustedKeys(
  config: RegistryConfig,
  registryFingerprints: readonly string[],
): Promise<TrustedKeys> {
  const keys = await Promise.all(config.publishers.map((p) => readPublicKey(p.key)));
  return { keys, registryFingerprints };
}

const keyIdOf = (fingerprint: string): string => fingerprint.slice(-16);

export type SignerCheck =
  | { readonly fingerprint: string; readonly problems: readonly [] }
  | { readonly fingerprint?: undefined; readonly problems: readonly Problem[] };

/**
 * Why `publisher.asc` is not one plain key, or undefined: one armored block holding one key, and no more
 * user IDs, subkeys and signatures than a publisher needs (the work of checking a key grows with them).
 */
async function publisherKeyProblem(armored: string, key: Key): Promise<Problem | undefined> {
  const blocks = (armored.match(/-----BEGIN PGP [A-Z ]+-----/g) ?? []).length;
  const keys = blocks === 1 ? (await readKeys({ armoredKeys: armored }).catch(() => [])).length : blocks;
  if (keys !== 1)
    return problem(
      'PUBLISHER_KEY_INVALID',
      'bundle:publisher.asc',
      'publisher.asc must hold exactly one key',
      {
        expected: 'one armored public key (gpg --export --armor FINGERPRINT)',
        found: `${keys} keys`,
      },
    );
  const complexity = keyComplexityProblem(key);
  if (complexity)
    return problem('PUBLISHER_KEY_TOO_COMPLEX', 'bundle:publisher.asc', `the key holds ${complexity}`, {
      expected: 'a minimal export: gpg --export --armor --export-options export-minimal FINGERPRINT',
    });
  return undefined;
}

/** Why a key could not sign, whether at the signature's time (openpgp.js) or at the time of publishing. */
const UNUSABLE_CODES: Record<'key-revoked' | 'key-expired' | 'not-for-signing', ProblemCode> = {
  'key-revoked': 'PUBLISHER_KEY_REVOKED',
  'key-expired': 'PUBLISHER_KEY_EXPIRED',
  'not-for-signing': 'PUBLISHER_KEY_NOT_FOR_SIGNING',
};
const UNUSABLE_EXPECTED = 'a signature by a key that is valid for signing now (not expired, not revoked)';

/**
 * Verifies the publisher's detached signature over the manifest bytes. Under the `open` policy the key may
 * travel in the bundle (`publisher.asc`); under `restricted` only configured keys count. The key is judged
 * at `now`, the time of publishing: an expired or revoked key is refused whatever time its signature
 * claims, and a signature dated after `now` is refused.
 */
export async function checkPublisherSignature(options: {
  /** Whose keys count: `open` takes the bundled key too (the publisher-side check uses it alone). */
  readonly policy: PublishPolicy;
  readonly trusted: TrustedKeys;
  readonly manifestName: string;
  readonly manifest: Uint8Array;
  readonly signature: Uint8Array | undefined;
  readonly publisherKey: Uint8Array | undefined;
  readonly now: Date;
}): Promise<SignerCheck> {
  const { policy, trusted } = options;
  const sigPath = `bundle:${options.manifestName}.asc`;
  if (!options.signature) {
    return {
      problems: [
        problem(
          'BUNDLE_MISSING_SIGNATURE',
          sigPath,
          `the bundle has no detached signature over ${options.manifestName}`,
          {
            expected: `${options.manifestName}.asc, an armored OpenPGP signature by the publisher`,
          },
        ),
      ],
    };
  }
  const isRegistryFingerprint = (fp: string): boolean => trusted.registryFingerprints.includes(fp);
  const candidates: Key[] = trusted.keys.map((k) => k.key);
  let bundled: PublicKeyInfo | undefined;
  if (options.publisherKey) {
    const armored = new TextDecoder().decode(options.publisherKey);
    try {
      bundled = await readPublicKey(armored);
    } catch {
      return {
        problems: [
          problem(
            'PUBLISHER_KEY_INVALID',
            'bundle:publisher.asc',
            'publisher.asc is not an armored OpenPGP public key',
          ),
        ],
      };
    }
    const shape = await publisherKeyProblem(armored, bundled.key);
    if (shape) return { problems: [shape] };
    if (bundled.fingerprints.some(isRegistryFingerprint)) {
      return {
        problems: [
          problem(
            'PUBLISHER_IS_REGISTRY_KEY',
            'bundle:publisher.asc',
            'the registry signing key cannot be used as a publisher key',
          ),
        ],
      };
    }
    if (policy === 'open') candidates.push(bundled.key);
  }
  const result = await verifyDetachedSignature(
    options.manifest,
    new TextDecoder().decode(options.signature),
    candidates,
    options.now,
  );
  if (result.ok) {
    if (isRegistryFingerprint(result.fingerprint)) {
      return {
        problems: [
          problem(
            'PUBLISHER_IS_REGISTRY_KEY',
            sigPath,
            'the registry signing key cannot be used as a publisher key',
          ),
        ],
      };
    }
    const usable = await keyUsableAt(result.key, result.signingKeyId, options.now);
    if (!usable.usable) {
      return {
        problems: [
          problem(UNUSABLE_CODES[usable.reason], sigPath, `key ${result.fingerprint}: ${usable.message}`, {
            expected: UNUSABLE_EXPECTED,
          }),
        ],
      };
    }
    return { fingerprint: result.fingerprint, problems: [] };
  }
  if (result.reason === 'malformed') {
    return { problems: [problem('SIGNATURE_MALFORMED', sigPath, result.message)] };
  }
  if (result.reason === 'time') {
    return {
      problems: [
        problem('SIGNATURE_TIME_INVALID', sigPath, `the signature is not valid now: ${result.message}`, {
          expected: `a signature made before ${options.now.toISOString()}, and not expired`,
        }),
      ],
    };
  }
  if (
    result.reason === 'key-revoked' ||
    result.reason === 'key-expired' ||
    result.reason === 'not-for-signing'
  ) {
    return {
      problems: [
        problem(UNUSABLE_CODES[result.reason], sigPath, result.message, { expected: UNUSABLE_EXPECTED }),
      ],
    };
  }
  if (result.reason === 'bad-signature') {
    return {
      problems: [
        problem(
          'SIGNATURE_INVALID',
          sigPath,
          `the signature does not match ${options.manifestName}: ${result.message}`,
        ),
      ],
    };
  }
  const registryKeyIds = trusted.registryFingerprints.map(keyIdOf);
  if (result.keyIds.some((id) => registryKeyIds.includes(id))) {
    return {
      problems: [
        problem(
          'PUBLISHER_IS_REGISTRY_KEY',
          sigPath,
          'signed with the registry key, which is never a publisher key',
        ),
      ],
    };
  }
  if (policy === 'open' && !bundled) {
    return {
      problems: [
        problem(
          'PUBLISHER_KEY_MISSING',
          'bundle:publisher.asc',
          `signed by key ${result.keyIds.join(', ')}, which the registry does not know`,
          {
            expected: 'the publisher public key in the bundle as publisher.asc (plugindex pack adds it)',
          },
        ),
      ],
    };
  }
  return {
    problems: [
      problem(
        'PUBLISHER_UNTRUSTED',
        sigPath,
        `signed by key ${result.keyIds.join(', ') || '(unnamed)'}, which is not a trusted publisher`,
        {
          expected:
            policy === 'restricted'
              ? 'a key listed by `plugindex publishers add`'
              : 'the key in publisher.asc',
        },
      ),
    ],
  };
}

/** May `fingerprint` publish a version of `name`, given the config and the plugin's current owners? */
export function authorizePublisher(options: {
  readonly config: RegistryConfig;
  readonly fingerprint: string;
  readonly name: string;
  readonly owners: readonly string[] | undefined;
}): Problem[] {
  const { config, fingerprint, name } = options;
  const listed = config.publishers.find((p) => p.fingerprint === fingerprint);
  if (config.policy === 'restricted' && !listed) {
    return [
      problem(
        'PUBLISHER_UNTRUSTED',
        '/name',
        `key ${fingerprint} is not a trusted publisher of this registry`,
      ),
    ];
  }
  if (listed && !picomatch.isMatch(name, [...listed.names])) {
    return [
      problem('PUBLISHER_NAME_NOT_ALLOWED', '/name', `key ${fingerprint} may not publish "${name}"`, {
        expected: `a name matching ${listed.names.join(', ')}`,
        found: name,
      }),
    ];
  }
  if (
    config.ownership === 'first-come' &&
    options.owners &&
    options.owners.length > 0 &&
    !options.owners.includes(fingerprint)
  ) {
    return [
      problem(
        'PUBLISHER_NOT_OWNER',
        '/name',
        `"${name}" is owned by another publisher; key ${fingerprint} is not an owner`,
        {
          expected: `a signature by an owner: ${options.owners.join(', ')}`,
        },
      ),
    ];
  }
  return [];
}
