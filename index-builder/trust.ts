/**
 * Publisher trust: who signed a submission, and may that key publish this name. The registry key is never a
 * publisher key, whatever the bundle or the config says.
 */
import type { Key } from 'openpgp';
import picomatch from 'picomatch';
import type { RegistryConfig } from './config.ts';
import { type Problem, problem } from './errors.ts';
import { type PublicKeyInfo, readPublicKey, verifyDetachedSignature } from './signing.ts';

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
 * Verifies the publisher's detached signature over the manifest bytes. Under the `open` policy the key may
 * travel in the bundle (`publisher.asc`); under `restricted` only configured keys count.
 */
export async function checkPublisherSignature(options: {
  readonly config: RegistryConfig;
  readonly trusted: TrustedKeys;
  readonly manifestName: string;
  readonly manifest: Uint8Array;
  readonly signature: Uint8Array | undefined;
  readonly publisherKey: Uint8Array | undefined;
}): Promise<SignerCheck> {
  const { config, trusted } = options;
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
    try {
      bundled = await readPublicKey(new TextDecoder().decode(options.publisherKey));
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
    if (config.policy === 'open') candidates.push(bundled.key);
  }
  const result = await verifyDetachedSignature(
    options.manifest,
    new TextDecoder().decode(options.signature),
    candidates,
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
    return { fingerprint: result.fingerprint, problems: [] };
  }
  if (result.reason === 'malformed') {
    return { problems: [problem('SIGNATURE_MALFORMED', sigPath, result.message)] };
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
  if (config.policy === 'open' && !bundled) {
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
            config.policy === 'restricted'
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
