/**
 * OCI artifact references (Diginfra's distribution: plugins kept in OCI registries), read one way wherever
 * the registry meets them: the manifest schema and rules, the artifact records, the falcoctl index. Pure.
 *
 * A reference is `registry[:port]/repository[:tag]` or `registry[:port]/repository@sha256:<hex>`: the
 * registry is always written out (a bare `acme/x` would be read as Docker Hub's by some tools and as a host
 * `acme` by others), the repository is lowercase path components by the OCI distribution spec.
 */
import { isLoopbackHost } from './layout.ts';
import type { OciArtifact } from './model.ts';

/** A host name or IPv4 address, or an IPv6 address in brackets, with an optional port. */
const REGISTRY =
  '(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?';
/**
 * The OCI distribution spec's repository name: `/`-separated components of lowercase letters and digits
 * joined by `.`, `_`, `__` or a run of `-`.
 */
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = `${COMPONENT}(?:/${COMPONENT})*`;
/**
 * The first component must name a registry as docker decides (it holds a `.` or a `:`, or is `localhost`):
 * `acme/lens` would be read as a repository of some tool's default registry, and as a host `acme` by others.
 */
const NAMES_A_REGISTRY = '(?=localhost[:/]|[^/]*[.:])';
const TAG = '[A-Za-z0-9_][A-Za-z0-9._-]{0,127}';
/** The digest an OCI artifact is pinned by: SHA-256, lowercase hex, as registries write it. */
export const OCI_DIGEST_PATTERN = '^sha256:[a-f0-9]{64}$';
/** The whole reference, as a JSON Schema pattern (the manifest's `artifacts[].oci.reference`). */
export const OCI_REFERENCE_PATTERN = `^${NAMES_A_REGISTRY}(${REGISTRY})/(${REPOSITORY})(?::(${TAG}))?(?:@(sha256:[a-f0-9]{64}))?$`;

const REFERENCE = new RegExp(OCI_REFERENCE_PATTERN);

/** A reference taken apart. */
export interface OciReferenceParts {
  /** `host[:port]`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  /** `sha256:<hex>`, when the reference pins one itself. */
  readonly digest?: string;
}

/**
 * Takes a reference apart, or undefined when it is not one (the schema has already said why).
 * @example parseOciReference('registry.example:5000/acme/lens:1.2.0') // {registry: 'registry.example:5000', repository: 'acme/lens', tag: '1.2.0'}
 */
export function parseOciReference(reference: string): OciReferenceParts | undefined {
  const match = REFERENCE.exec(reference);
  if (!match) return undefined;
  const [, registry, repository, tag, digest] = match;
  return {
    registry: registry as string,
    repository: repository as string,
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {}),
  };
}

/**
 * Docker Hub's names for itself, as its documentation and docker give them: one registry, whichever a
 * reference writes. The only aliases known: another registry reachable under several host names (a CDN's,
 * a vanity domain) is as many registries here, since nothing signed says those names are one.
 */
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * A registry host as Docker Hub's names are one: any of them (in any case) is `docker.io`, docker's
 * reference grammar's default domain; any other host lowercase and otherwise as written. The one place
 * Docker Hub's aliases are folded, for repositories (`ociRepositoryOf`) and credentials (client/oci-auth.ts)
 * alike.
 * @example dockerHubHostOf('Registry-1.Docker.IO') // 'docker.io'
 */
export function dockerHubHostOf(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB.has(lower) ? 'docker.io' : lower;
}

/** Where docker and containerd reach Docker Hub's registry API, whichever of its names a reference writes. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

/**
 * Where a reference's Distribution API is asked (`https://<registry>/v2/<repository>/…`): Docker Hub, by any
 * of its names (on no port, or 443), at `registry-1.docker.io` with a one-component name under `library/`,
 * as docker's tools resolve it (`docker.io` is Hub's name, not its API's host, and `docker.io/lens` is
 * `library/lens` there); any other registry as written. The repository it gives is the one a token's scope
 * names. The same Hub as `ociRepositoryOf` compares, so a pull goes where the claim it matched is held.
 * @example ociApiOf('docker.io', 'lens') // {registry: 'registry-1.docker.io', repository: 'library/lens'}
 */
export function ociApiOf(
  registry: string,
  repository: string,
): { readonly registry: string; readonly repository: string } {
  const [, host, port] = /^([^:[\]]+)(?::([0-9]+))?$/.exec(registry) ?? [];
  const hub =
    host !== undefined &&
    dockerHubHostOf(host) === 'docker.io' &&
    (port === undefined || Number(port) === 443);
  if (!hub) return { registry, repository };
  return {
    registry: DOCKER_HUB_API_HOST,
    repository: repository.includes('/') ? repository : `library/${repository}`,
  };
}

/**
 * The URL an OCI registry's API is reached at (the client's fetcher.ts `ociTarget`): https:, but http: for a
 * loopback host given no CA (cleartext only where nothing leaves the machine), as WHATWG URL parsing
 * writes it (the host lowercase, an IPv4 literal in its one form, the port a number and dropped when it is
 * the scheme's own). Undefined for a `host[:port]` no URL parser takes (a port past 65535, `registry.5`).
 * @example ociRegistryUrl('LocalHost:443')?.href // 'http://localhost:443/'
 */
export function ociRegistryUrl(registry: string, options: { readonly ca?: boolean } = {}): URL | undefined {
  if (!URL.canParse(`http://${registry}`)) return undefined;
  const loopback = isLoopbackHost(new URL(`http://${registry}`).hostname) && options.ca !== true;
  return new URL(`${loopback ? 'http' : 'https'}://${registry}`);
}

/**
 * The repository a reference keeps its artifact in, one meaning wherever repositories are compared: publish
 * judging claims (oci-repositories.ts) and the client finding the plugin of a pasted reference (client.ts
 * `#ociReference`), so a reference finds what a claim holds. `host[:port]/path`, the host and port as the
 * client reaches them (`ociRegistryUrl`'s, given no CA, as an install pulls: lowercase, the port a number,
 * `:443` dropped on an https: registry and `:80` on a loopback one, reached over http:, so
 * `localhost:443/x` is another repository than `localhost/x`, port 80, where dropping `:443` everywhere
 * made them one: two spellings are one repository exactly when the client reaches them at one origin),
 * Docker Hub's aliases as `docker.io` and its one-component names under `library/` (where Docker Hub
 * serves them). Undefined for a reference that does not parse, or whose `host[:port]` no URL parser takes
 * (a port past 65535, a last label of digits that is no IPv4 address): no client reaches it, so it holds nothing.
 * @example ociRepositoryOf('Registry.Example:443/acme/lens:1.2.0') // 'registry.example/acme/lens'
 */
export function ociRepositoryOf(reference: string): string | undefined {
  const parts = parseOciReference(reference);
  const url = parts ? ociRegistryUrl(parts.registry) : undefined;
  if (!parts || !url) return undefined;
  let host = url.host;
  let path = parts.repository;
  host = dockerHubHostOf(host);
  if (host === 'docker.io') {
    // Docker Hub serves a one-component name from `library/` (its official images): `docker.io/lens` and
    // `docker.io/library/lens` are one repository, so a claim on one must hold the other.
    if (!path.includes('/')) path = `library/${path}`;
  }
  return `${host}/${path}`;
}

/**
 * The URL an OCI artifact's record gives: `oci://<registry>/<repository>@<digest>`, pinned by the digest
 * whatever tag the reference names (a tag can move, the digest cannot). Undefined for a reference that
 * does not parse.
 * @example ociArtifactUrl({reference: 'registry.example/acme/lens:1.2.0', digest: 'sha256:ab…'}) // 'oci://registry.example/acme/lens@sha256:ab…'
 */
export function ociArtifactUrl(oci: OciArtifact): string | undefined {
  const parts = parseOciReference(oci.reference);
  return parts ? `oci://${parts.registry}/${parts.repository}@${oci.digest}` : undefined;
}
