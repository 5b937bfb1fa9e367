/**
 * Whether a plugin folder found on disk (disk/discover.ts) can be trusted: its manifest signed by a key
 * this client trusts (a configured registry's pinned key, or a key a plugin set pins), and every artifact
 * present beside it hashing to what that manifest signed. `plugindex list` shows the answer beside what
 * installed.json records, so a plugin copied in by hand is seen, and seen to be unverified.
 */
import type { Key } from 'openpgp';
import { normalizeDigest } from '../index-builder/digest.ts';
import {
  artifactServing,
  LIBC_OS,
  LIBC_VALUES,
  platformKey,
  UNIVERSAL_ARCH,
  UNIVERSAL_ARCHES,
} from '../index-builder/model.ts';
import type { FoundFolder } from './disk/discover.ts';
import { isObject } from './json-input.ts';

export type DiscoveryStatus = 'verified' | 'unsigned' | 'untrusted' | 'modified' | 'invalid';

export interface DiscoveredPlugin {
  readonly name?: string;
  readonly version?: string;
  /** The version folder. */
  readonly dir: string;
  /** The configured path it was found under. */
  readonly root: string;
  readonly status: DiscoveryStatus;
  /** Why, in a sentence: who signed it, or what does not match. */
  readonly detail: string;
  /** The fingerprint of the key that verified the manifest. */
  readonly signer?: string;
  /** `os-arch` of the artifacts present that match. */
  readonly platforms: readonly string[];
}

export interface TrustedKey {
  readonly fingerprint: string;
  readonly key: Key;
  /** Whose key it is, for messages (`registry community`, `plugins.yaml provider local`). */
  readonly label: string;
}

/** Verifies one found folder against the trusted keys. Never throws for what it finds: it says it. */
export async function verifyFound(
  found: FoundFolder,
  keys: readonly TrustedKey[],
): Promise<DiscoveredPlugin> {
  const base = { dir: found.dir, root: found.root };
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder().decode(found.manifest));
  } catch {
    return { ...base, status: 'invalid', detail: 'manifest.json is not JSON', platforms: [] };
  }
  if (!isObject(manifest) || typeof manifest.name !== 'string' || typeof manifest.version !== 'string')
    return { ...base, status: 'invalid', detail: 'manifest.json has no name and version', platforms: [] };
  const named = { ...base, name: manifest.name, version: manifest.version };
  const artifacts =
    isObject(manifest.installation) && Array.isArray(manifest.installation.artifacts)
      ? (manifest.installation.artifacts as unknown[]).filter(isObject)
      : [];
  const platforms: string[] = [];
  const mismatched: string[] = [];
  // Each install folder, with the artifacts that may be in it (best first) and the publisher's `file` paths.
  // A publisher's folder keeps `file` where the manifest says; an install keeps `<os>-<arch>/<file>`,
  // a universal build in the folder of each host arch it was installed for (`darwin-arm64/`), and the
  // folder of an arch with its own build holds that one (model.ts artifactServing). A musl host's folder
  // (`linux-amd64-musl/`) holds the musl build, or the glibc one: a lock an older client wrote pins no musl
  // build, and --locked or --frozen gives a musl host the glibc build it pins (install.ts planTarget).
  // `files`: the publisher's `file` paths, each held to its own artifact; `sha256`: the artifacts whose
  // build an install may have placed in the folder.
  const folders = new Map<string, { sha256: string[]; files: [string, string][] }>();
  for (const artifact of artifacts) {
    const sha256 = typeof artifact.sha256 === 'string' ? normalizeDigest(artifact.sha256) : '';
    const os = String(artifact.os);
    const hosts: { os: string; arch: string; libc?: string }[] =
      artifact.arch === UNIVERSAL_ARCH
        ? (UNIVERSAL_ARCHES[os] ?? []).map((arch) => ({ os, arch }))
        : typeof artifact.libc === 'string'
          ? [{ os, arch: String(artifact.arch), libc: artifact.libc }]
          : [
              { os, arch: String(artifact.arch) },
              ...(os === LIBC_OS
                ? LIBC_VALUES.map((libc) => ({ os, arch: String(artifact.arch), libc }))
                : []),
            ];
    const served = hosts.filter(
      (host) =>
        artifactServing(artifacts, host) === artifact ||
        (host.libc !== undefined && typeof artifact.libc !== 'string'),
    );
    for (const [i, host] of served.entries()) {
      const folder = platformKey(host);
      const at = folders.get(folder) ?? { sha256: [], files: [] };
      at.sha256.push(sha256);
      if (typeof artifact.file === 'string' && i === 0) at.files.push([artifact.file, sha256]);
      folders.set(folder, at);
    }
  }
  for (const [folder, { sha256, files }] of folders) {
    const installed = Object.keys(found.files).filter((path) => path.startsWith(`${folder}/`));
    const own = files.filter(([path]) => found.files[path] !== undefined);
    const present = installed.filter((path) => found.files[path] !== undefined);
    if (own.length + present.length === 0) continue;
    // Every file there must be one artifact that was signed: a copy of the original beside a replaced one
    // proves nothing. A publisher's `file` is its own artifact's alone.
    const wrong = own.filter(([path, digest]) => found.files[path]?.sha256 !== digest).map(([path]) => path);
    const one = sha256.find((digest) => present.every((path) => found.files[path]?.sha256 === digest));
    if (wrong.length === 0 && one !== undefined) platforms.push(folder);
    else {
      const stray = present.filter((path) => !sha256.includes(found.files[path]?.sha256 ?? ''));
      const named = [...wrong, ...(stray.length > 0 || one !== undefined ? stray : present)];
      mismatched.push(`${named.join(', ')} (${folder})`);
    }
  }
  if (found.signature === undefined)
    return { ...named, status: 'unsigned', detail: 'no manifest.json.asc beside the manifest', platforms };
  const { verifyDetachedSignature } = await import('../index-builder/signing.ts');
  const result = await verifyDetachedSignature(
    found.manifest,
    found.signature,
    keys.map((k) => k.key),
  );
  if (!result.ok)
    return {
      ...named,
      status: 'untrusted',
      detail:
        result.reason === 'unknown-key'
          ? `signed by ${result.keyIds.join(', ') || 'an unknown key'}, which no configured registry or plugin set trusts`
          : `its signature does not verify: ${result.message}`,
      platforms,
    };
  const signer = keys.find((k) => k.fingerprint === result.fingerprint);
  if (mismatched.length > 0)
    return {
      ...named,
      status: 'modified',
      detail: `${mismatched.join('; ')} no longer hash to what the signed manifest gives`,
      signer: result.fingerprint,
      platforms,
    };
  return {
    ...named,
    status: 'verified',
    detail: `signed by ${signer?.label ?? result.fingerprint}${platforms.length === 0 ? '; no artifact present' : ''}`,
    signer: result.fingerprint,
    platforms,
  };
}
