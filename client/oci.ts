/**
 * The OCI side of an artifact, without the network: reading references (`registry.example/acme/lens:1.2`,
 * `…@sha256:<hex>`), the command line's artifact references (falcoctl's forms beside our `NAME@SPEC`), the
 * `WWW-Authenticate` challenges of a registry, and reading what a manifest or an index lists and, for a
 * digest a user pasted from the registry (client.ts), walking the indexes it lists within bounds
 * (`walkManifests`, its documents read through a reader it is given). client/fetcher.ts does the requests.
 *
 * Grammar after the distribution project's `reference` package (the one docker, oras and falcoctl share),
 * so a reference means the same registry, repository and tag to them as to us; a form they would read
 * otherwise (a first component that docker takes for a repository of its default registry) is refused.
 *
 * @example
 * const ref = parseOciReference('registry.example:5000/acme/kubecost-lens:1.2.0');
 * // { registry: 'registry.example:5000', repository: 'acme/kubecost-lens', tag: '1.2.0' }
 */

import { sha256Hex } from '../index-builder/digest.ts';
import { TrustError } from '../index-builder/errors.ts';
import { parseOciReference as parseRegistryReference } from '../index-builder/oci.ts';
import { ClientError } from './errors.ts';
import { isObject } from './json-input.ts';
import { parseRequest } from './resolve.ts';

export interface OciReference {
  /** `host[:port]`, as written (an IPv6 host in brackets). */
  readonly registry: string;
  /** Path components joined by `/`, e.g. `acme/kubecost-lens`. */
  readonly repository: string;
  readonly tag?: string;
  /** `sha256:<64 lowercase hex>`: pins the manifest whatever the tag now names. */
  readonly digest?: string;
}

export type ArtifactReference =
  | { readonly kind: 'name'; readonly name: string; readonly tag?: string; readonly spec?: string }
  | ({ readonly kind: 'oci' } & OciReference);

export interface AuthChallenge {
  /** Lower case, as schemes compare case-insensitively. */
  readonly scheme: 'bearer' | 'basic';
  /** Every parameter, names in lower case, quoted strings unquoted. */
  readonly params: Readonly<Record<string, string>>;
  readonly realm?: string;
  readonly service?: string;
  readonly scope?: string;
}

/** A content descriptor of a manifest or an index (OCI image-spec `descriptor.md`). */
export interface OciDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly os: string; readonly architecture: string; readonly variant?: string };
}

/**
 * What a manifest or an index lists: an index (OCI image index, Docker manifest list) its manifests, a
 * manifest its layers. Nothing is chosen here by platform: an index names `os`/`architecture`/`variant`, no
 * C library and no universal arch, so it cannot tell a musl or universal build from another (ARCHITECTURE.md,
 * Platforms); what to install is always the blob the signed manifest pins.
 */
export type ManifestContents =
  | { readonly kind: 'index'; readonly manifests: readonly OciDescriptor[] }
  | { readonly kind: 'image'; readonly layers: readonly OciDescriptor[] };

export interface ReadManifestOptions {
  /** Where the document came from, for messages (e.g. the reference). */
  readonly source?: string;
  /** The Content-Type it was served with, used when the document does not name its own mediaType. */
  readonly mediaType?: string;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

/** The manifest types this client reads, for the `Accept` header of a manifest GET (a registry converts nothing then). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = Object.freeze([
  OCI_MANIFEST,
  OCI_INDEX,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
]);

const INDEX_TYPES = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST]);
const IMAGE_TYPES = new Set([OCI_MANIFEST, DOCKER_MANIFEST]);

/** One label of a host name: letters, digits and inner hyphens. */
const HOST_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const REGISTRY = new RegExp(
  `^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::([0-9]{1,5}))?$`,
);
/** A path component: lower-case words joined by `.`, `_`, `__` or runs of `-`. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
/** The distribution project's limit on a repository name. */
const MAX_REPOSITORY = 255;

const REFERENCE_FORM =
  'REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:HEX] (e.g. registry.example/acme/lens:1.2.0)';

/**
 * `registry[:port]/repo/path[:tag][@sha256:hex]` -> its parts. The first component must name a registry
 * (hold a `.` or a `:port`, or be `localhost`), as docker decides: a reference docker would send to its
 * default registry is refused rather than read as a host.
 * @throws ClientError REQUEST_INVALID naming the text, what was expected and what was found.
 * @example parseOciReference('127.0.0.1:5000/acme/lens@sha256:…') // { registry: '127.0.0.1:5000', repository: 'acme/lens', digest: 'sha256:…' }
 */
export function parseOciReference(text: string): OciReference {
  const invalid = (found: string) =>
    new ClientError(
      'REQUEST_INVALID',
      `OCI reference ${JSON.stringify(text)} is not ${REFERENCE_FORM}: ${found}`,
    );
  refuseUserInformation(text, 'OCI reference');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!SHA256_DIGEST.test(digest)) {
      throw invalid(
        /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(digest) && !digest.startsWith('sha256:')
          ? `its digest ${JSON.stringify(digest)} is not sha256 (the only algorithm the registry's digests use)`
          : `its digest ${JSON.stringify(digest)} is not sha256: and 64 lower-case hex digits`,
      );
    }
  }
  const slash = rest.indexOf('/');
  if (slash === -1) throw invalid('it has no REGISTRY/ before the repository');
  const registry = rest.slice(0, slash);
  let path = rest.slice(slash + 1);
  const registryMatch = REGISTRY.exec(registry);
  if (!registryMatch) throw invalid(`its registry ${JSON.stringify(registry)} is not a host name[:port]`);
  const port = registryMatch[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(`its registry's port ${port} is not between 1 and 65535`);
  }
  if (!looksLikeRegistry(registry)) {
    throw invalid(
      `its first component ${JSON.stringify(registry)} is not a registry (one holds a '.' or a ':port', or is ` +
        'localhost): other tools would read it as a repository of their default registry',
    );
  }
  // A ':' after the last '/' starts the tag; one before it would be in the registry, already split off.
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(
        `its tag ${JSON.stringify(tag)} is not 1 to 128 letters, digits, '_', '.' or '-' (not first)`,
      );
    }
  }
  if (path === '') throw invalid('it names no repository after the registry');
  if (path.length > MAX_REPOSITORY) {
    throw invalid(`its repository has ${path.length} characters, over the limit of ${MAX_REPOSITORY}`);
  }
  const bad = path.split('/').find((component) => !PATH_COMPONENT.test(component));
  if (bad !== undefined) {
    throw invalid(
      `its repository component ${JSON.stringify(bad)} is not lower-case letters and digits joined by '.', '_', '__' or '-'`,
    );
  }
  // The checks above say what is wrong; the registry's own grammar (the one its manifests are held to)
  // decides, so a reference is read the same way on both sides.
  if (!parseRegistryReference(text)) throw invalid('it is not a reference a registry manifest may name');
  return {
    registry,
    repository: path,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/**
 * REQUEST_INVALID for a reference with an `@` before its last `/`: no reference has one there (a digest
 * follows the repository's last component), so it is a URL's `user:password@` typed before the registry,
 * refused before any message names the text, and shown as `***@` (every refusal printed it whole, on stderr
 * and in --json). The last `/`, not the first: a password may hold one (a base64 token), and its `@` was
 * then read as a digest's, the text echoed whole.
 */
function refuseUserInformation(text: string, what: string): void {
  const slash = text.lastIndexOf('/');
  const at = slash < 1 ? -1 : text.lastIndexOf('@', slash - 1);
  if (at < 0) return;
  throw new ClientError(
    'REQUEST_INVALID',
    `${what} ${JSON.stringify(`***${text.slice(at)}`)} holds a user name or password before its registry: credentials go where docker keeps them (\`docker login\`), not in a reference`,
  );
}

/**
 * A command line's artifact reference, in falcoctl's forms and ours:
 * `NAME` and `NAME:TAG` (a plugin of the configured registries), `NAME@SPEC` (ours: a version range, e.g.
 * `kubecost-lens@^1.2`), and `REGISTRY/REPO[:TAG]` or `REGISTRY/REPO@sha256:…` (pulled from that registry;
 * without a tag or digest, the tag `latest`). A first component is a registry when it holds `.` or `:` or
 * is `localhost`, as docker decides.
 * @throws ClientError REQUEST_INVALID naming the text and the forms expected.
 * @example parseArtifactReference('kubecost-lens:1.2.0') // { kind: 'name', name: 'kubecost-lens', tag: '1.2.0' }
 */
export function parseArtifactReference(text: string): ArtifactReference {
  const forms =
    'NAME, NAME:TAG, NAME@VERSION-RANGE, REGISTRY/REPOSITORY[:TAG] or REGISTRY/REPOSITORY@sha256:HEX';
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  if (slash !== -1) {
    refuseUserInformation(trimmed, 'artifact reference');
    const first = trimmed.slice(0, slash);
    if (!looksLikeRegistry(first.replace(/@.*$/, ''))) {
      throw new ClientError(
        'REQUEST_INVALID',
        `artifact reference ${JSON.stringify(text)} is not one of ${forms}: its first component ` +
          `${JSON.stringify(first)} is not a registry (one holds a '.' or a ':port', or is localhost)`,
      );
    }
    const reference = parseOciReference(trimmed);
    return reference.tag === undefined && reference.digest === undefined
      ? { kind: 'oci', ...reference, tag: 'latest' }
      : { kind: 'oci', ...reference };
  }
  const at = trimmed.indexOf('@');
  if (at !== -1) {
    const after = trimmed.slice(at + 1);
    if (after.startsWith('sha256:')) {
      throw new ClientError(
        'REQUEST_INVALID',
        `artifact reference ${JSON.stringify(text)} pins a digest without a registry: a digest names a blob of ` +
          `one registry, so write REGISTRY/REPOSITORY@${after}`,
      );
    }
    const { name, spec } = parseRequest(trimmed);
    return { kind: 'name', name, spec };
  }
  const colon = trimmed.indexOf(':');
  const name = colon === -1 ? trimmed : trimmed.slice(0, colon);
  const tag = colon === -1 ? undefined : trimmed.slice(colon + 1);
  if (tag !== undefined && !TAG.test(tag)) {
    throw new ClientError(
      'REQUEST_INVALID',
      `artifact reference ${JSON.stringify(text)} is not one of ${forms}: its tag ${JSON.stringify(tag)} is not ` +
        "1 to 128 letters, digits, '_', '.' or '-' (not first)",
    );
  }
  // parseRequest holds the plugin name rules (and says which one a name breaks).
  parseRequest(name);
  return tag === undefined ? { kind: 'name', name } : { kind: 'name', name, tag };
}

/**
 * A `WWW-Authenticate` header -> its Bearer challenge (preferred: it is what registries answer anonymous
 * pulls with) or else its Basic one; undefined when it holds neither or does not parse (RFC 9110 §11.6.1:
 * `scheme param=value, param="quoted, with commas"`, several challenges separated by commas).
 * @example parseBearerChallenge('Bearer realm="https://auth.example/token",service="registry.example"')
 */
export function parseBearerChallenge(header: string | null | undefined): AuthChallenge | undefined {
  if (header === null || header === undefined) return undefined;
  const challenges = parseChallenges(header);
  if (challenges === undefined) return undefined;
  const chosen =
    challenges.find((challenge) => challenge.scheme === 'bearer') ??
    challenges.find((challenge) => challenge.scheme === 'basic');
  if (chosen === undefined) return undefined;
  const { scheme, params } = chosen;
  return {
    scheme: scheme as 'bearer' | 'basic',
    params,
    ...(params.realm === undefined ? {} : { realm: params.realm }),
    ...(params.service === undefined ? {} : { service: params.service }),
    ...(params.scope === undefined ? {} : { scope: params.scope }),
  };
}

/** Every challenge of the header, or undefined when it does not parse. */
function parseChallenges(header: string): { scheme: string; params: Record<string, string> }[] | undefined {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
  let rest = header.trim();
  let current: { scheme: string; params: Record<string, string> } | undefined;
  while (rest !== '') {
    const name = token.exec(rest)?.[0];
    if (name === undefined) return undefined;
    rest = rest.slice(name.length);
    const afterSpace = rest.replace(/^[ \t]*/, '');
    if (current !== undefined && afterSpace.startsWith('=')) {
      // A parameter of the current challenge.
      rest = afterSpace.slice(1).replace(/^[ \t]*/, '');
      let value: string;
      if (rest.startsWith('"')) {
        const quoted = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
        if (!quoted) return undefined;
        value = (quoted[1] as string).replace(/\\(.)/g, '$1');
        rest = rest.slice(quoted[0].length);
      } else {
        const bare = token.exec(rest)?.[0];
        if (bare === undefined) return undefined;
        value = bare;
        rest = rest.slice(bare.length);
      }
      const key = name.toLowerCase();
      // A repeated parameter has two readings; none is chosen.
      if (Object.hasOwn(current.params, key)) return undefined;
      current.params[key] = value;
    } else {
      // A new challenge: `scheme` then its parameters (a token68 form is not used by registries).
      current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
      challenges.push(current);
      rest = afterSpace;
      continue;
    }
    rest = rest.replace(/^[ \t]*/, '');
    if (rest.startsWith(',')) rest = rest.slice(1).replace(/^[ \t]*/, '');
    else if (rest !== '') return undefined;
  }
  return challenges;
}

/**
 * A parsed manifest or index -> the descriptors it lists (an index's manifests, a manifest's layers). A
 * document that holds both `manifests` and `layers`, or whose declared type disagrees with its shape, is
 * refused: readers would differ on what it is.
 * @throws TrustError DOCUMENT_MALFORMED (not a manifest or index), naming the JSON pointer.
 * @example readManifest(JSON.parse(text), { source: 'registry.example/acme/lens@sha256:…' })
 */
export function readManifest(json: unknown, options: ReadManifestOptions = {}): ManifestContents {
  const source = options.source ?? 'the manifest';
  const malformed = (pointer: string, expected: string) =>
    new TrustError('DOCUMENT_MALFORMED', `${source}#${pointer}: expected ${expected}`);
  if (!isObject(json)) throw malformed('', 'a JSON object (an OCI manifest or index)');
  const declared = json.mediaType ?? options.mediaType?.split(';')[0]?.trim().toLowerCase();
  if (declared !== undefined && typeof declared !== 'string') throw malformed('/mediaType', 'a string');
  const hasManifests = json.manifests !== undefined;
  const hasLayers = json.layers !== undefined;
  if (hasManifests && hasLayers) {
    throw malformed('', 'either "manifests" (an index) or "layers" (a manifest), not both');
  }
  const isIndex = declared !== undefined && declared !== '' ? INDEX_TYPES.has(declared) : hasManifests;
  const isImage = declared !== undefined && declared !== '' ? IMAGE_TYPES.has(declared) : hasLayers;
  if (!isIndex && !isImage) {
    throw malformed(
      '/mediaType',
      `one of ${MANIFEST_MEDIA_TYPES.join(', ')} (found ${JSON.stringify(declared)})`,
    );
  }
  if (isIndex) {
    if (!hasManifests) throw malformed('/manifests', `an array (the document is declared ${declared})`);
    return { kind: 'index', manifests: readDescriptors(json.manifests, '/manifests', malformed) };
  }
  if (!hasLayers) throw malformed('/layers', `an array (the document is declared ${declared})`);
  return { kind: 'image', layers: readDescriptors(json.layers, '/layers', malformed) };
}

/** How many levels of documents below the digest given a walk reads: an index 4 deep lists none it follows. */
export const OCI_WALK_MAX_DEPTH = 4;
/** How many documents below the digest given a walk reads in all, across every index it follows. */
export const OCI_WALK_MAX_MANIFESTS = 32;

/** A manifest or index as a registry served it. */
export interface ServedManifest {
  readonly bytes: Uint8Array;
  /** Its Content-Type, lower case, without parameters ('' when none). */
  readonly mediaType: string;
}

export interface WalkManifestsOptions {
  /** The document of `digest` (its bytes held to it here again), or undefined when the registry has none. */
  readonly read: (digest: string) => Promise<ServedManifest | undefined>;
  /** What a digest is called in messages, e.g. `registry.example/acme/lens@sha256:…`. */
  readonly source: (digest: string) => string;
  /** Default OCI_WALK_MAX_DEPTH. */
  readonly maxDepth?: number;
  /** Default OCI_WALK_MAX_MANIFESTS. */
  readonly maxManifests?: number;
}

export interface ManifestWalk {
  /** What the digest given names. */
  readonly kind: ManifestContents['kind'];
  /** Every layer digest of every image manifest reached, the digest's own when it is one. */
  readonly layers: ReadonlySet<string>;
}

/**
 * The layers a manifest or an index leads to: an index's image manifests', and through an index it lists
 * (an index of per-platform indexes, attestations beside each platform's image) theirs, level by level.
 * Bounded, as the registry chooses what it lists: at most `maxDepth` levels below `digest`
 * (`OCI_INDEX_TOO_DEEP`) and `maxManifests` documents read below it in all (`OCI_INDEX_TOO_MANY_MANIFESTS`,
 * refused before any entry of the index that would pass it is read), each error naming the index and the
 * bound. A digest is read once however many indexes list it, so a walk ends (a cycle cannot be built of
 * documents each held to its digest, as one would hold its own hash; the set of digests seen ends one
 * should a reader not hold them). Every document is held to its digest, to the size and to the kind of
 * media type the descriptor naming it gives (`DOCUMENT_MISMATCH`). Entries of other types (a layer, an
 * artifact of a type not listed) and of another algorithm than sha256 are not read. Nothing is chosen by
 * platform (see `ManifestContents`).
 * @returns undefined when the registry holds no document of `digest`; an entry it holds none of is passed.
 * @throws ClientError OCI_INDEX_TOO_DEEP, OCI_INDEX_TOO_MANY_MANIFESTS; TrustError DOCUMENT_MISMATCH,
 *   DOCUMENT_MALFORMED (not JSON, not a manifest or index); what `read` throws.
 * @example await walkManifests('sha256:…', { read, source: (d) => `registry.example/acme/lens@${d}` })
 */
export async function walkManifests(
  digest: string,
  options: WalkManifestsOptions,
): Promise<ManifestWalk | undefined> {
  const maxDepth = options.maxDepth ?? OCI_WALK_MAX_DEPTH;
  const maxManifests = options.maxManifests ?? OCI_WALK_MAX_MANIFESTS;
  const top = await readServed(digest, undefined, options);
  if (top === undefined) return undefined;
  const layers = new Set<string>();
  const seen = new Set([digest]);
  let read = 0;
  let level = [{ digest, contents: top }];
  for (let depth = 0; level.length > 0; depth += 1) {
    const next: { digest: string; contents: ManifestContents }[] = [];
    for (const at of level) {
      if (at.contents.kind === 'image') {
        for (const layer of at.contents.layers) layers.add(layer.digest);
        continue;
      }
      const fresh: OciDescriptor[] = [];
      for (const entry of at.contents.manifests) {
        const followed = IMAGE_TYPES.has(entry.mediaType) || INDEX_TYPES.has(entry.mediaType);
        if (!followed || !SHA256_DIGEST.test(entry.digest) || seen.has(entry.digest)) continue;
        seen.add(entry.digest);
        fresh.push(entry);
      }
      if (fresh.length === 0) continue;
      if (depth >= maxDepth)
        throw new ClientError(
          'OCI_INDEX_TOO_DEEP',
          `${options.source(digest)}: the image index ${at.digest}, ${depth} levels below ${digest}, lists ${fresh.length} more: at most ${maxDepth} levels are followed`,
        );
      if (read + fresh.length > maxManifests)
        throw new ClientError(
          'OCI_INDEX_TOO_MANY_MANIFESTS',
          `${options.source(digest)}: the image index ${at.digest} lists ${fresh.length} manifests not yet read, past the ${maxManifests} read in all below ${digest} (${read} read)`,
        );
      for (const entry of fresh) {
        read += 1;
        const contents = await readServed(entry.digest, { descriptor: entry, listedBy: at.digest }, options);
        if (contents !== undefined) next.push({ digest: entry.digest, contents });
      }
    }
    level = next;
  }
  return { kind: top.kind, layers };
}

/** One document of a walk, held to its digest and to the descriptor that listed it, then read. */
async function readServed(
  digest: string,
  listed: { readonly descriptor: OciDescriptor; readonly listedBy: string } | undefined,
  options: WalkManifestsOptions,
): Promise<ManifestContents | undefined> {
  const served = await options.read(digest);
  if (served === undefined) return undefined;
  const source = options.source(digest);
  const mismatch = (found: string, listedAs: string | number) =>
    new TrustError(
      'DOCUMENT_MISMATCH',
      `${source} is ${found}, where ${listed?.listedBy} lists it as ${listedAs}`,
    );
  // The fetcher holds a manifest read by digest to it; held here too, as the walk's end rests on it.
  const hashed = `sha256:${sha256Hex(served.bytes)}`;
  if (hashed !== digest)
    throw new TrustError(
      'DOCUMENT_MISMATCH',
      `${source} does not match its digest: its bytes hash to ${hashed}`,
    );
  // A descriptor's size is part of what names the document (image-spec descriptor.md).
  if (listed !== undefined && served.bytes.byteLength !== listed.descriptor.size)
    throw mismatch(`${served.bytes.byteLength} bytes`, listed.descriptor.size);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(served.bytes));
  } catch (error) {
    throw new TrustError('DOCUMENT_MALFORMED', `${source} is not JSON (an OCI manifest or index)`, {
      cause: error,
    });
  }
  const contents = readManifest(json, { source, mediaType: served.mediaType });
  if (listed !== undefined) {
    // Read as an image where listed as an index (or the reverse), readers would differ on what it leads to.
    const declared = isObject(json) && typeof json.mediaType === 'string' ? json.mediaType : undefined;
    const kind = INDEX_TYPES.has(listed.descriptor.mediaType) ? 'index' : 'image';
    if (contents.kind !== kind || (declared !== undefined && declared !== listed.descriptor.mediaType))
      throw mismatch(
        declared ?? `an ${contents.kind === 'index' ? 'image index' : 'image manifest'}`,
        listed.descriptor.mediaType,
      );
  }
  return contents;
}

function readDescriptors(
  value: unknown,
  pointer: string,
  malformed: (pointer: string, expected: string) => TrustError,
): OciDescriptor[] {
  if (!Array.isArray(value)) throw malformed(pointer, 'an array of descriptors');
  return value.map((item: unknown, index) => {
    const at = `${pointer}/${index}`;
    if (!isObject(item)) throw malformed(at, 'a descriptor object');
    const { mediaType, digest, size, platform } = item;
    if (typeof mediaType !== 'string') throw malformed(`${at}/mediaType`, 'a string');
    if (typeof digest !== 'string' || !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest)) {
      throw malformed(`${at}/digest`, 'a digest (algorithm:hex)');
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw malformed(`${at}/size`, 'a non-negative integer');
    }
    if (platform === undefined) return { mediaType, digest, size };
    if (!isObject(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string') {
      throw malformed(`${at}/platform`, 'an object with the strings "os" and "architecture"');
    }
    if (platform.variant !== undefined && typeof platform.variant !== 'string') {
      throw malformed(`${at}/platform/variant`, 'a string');
    }
    return {
      mediaType,
      digest,
      size,
      platform: {
        os: platform.os,
        architecture: platform.architecture,
        ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      },
    };
  });
}

/** Whether a reference's first component names a registry rather than a repository (docker's rule). */
function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}
