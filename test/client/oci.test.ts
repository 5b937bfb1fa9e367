import { describe, expect, it } from 'vitest';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  MANIFEST_MEDIA_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
  parseArtifactReference,
  parseBearerChallenge,
  parseOciReference,
  readManifest,
  walkManifests,
} from '../../client/oci.ts';
import { sha256Hex } from '../../index-builder/digest.ts';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;
const OTHER = `sha256:${'b'.repeat(64)}`;

function descriptor(digest: string, extra: Record<string, unknown> = {}) {
  return { mediaType: 'application/octet-stream', digest, size: 10, ...extra };
}

function imageManifest(layers: unknown[], mediaType: string | undefined = OCI_MANIFEST) {
  return {
    schemaVersion: 2,
    ...(mediaType === undefined ? {} : { mediaType }),
    config: descriptor(OTHER, { mediaType: 'application/vnd.oci.image.config.v1+json' }),
    layers,
  };
}

function index(manifests: unknown[], mediaType = OCI_INDEX) {
  return { schemaVersion: 2, mediaType, manifests };
}

function onPlatform(digest: string, os: string, architecture: string, variant?: string) {
  return descriptor(digest, {
    mediaType: OCI_MANIFEST,
    platform: { os, architecture, ...(variant === undefined ? {} : { variant }) },
  });
}

describe('when an OCI reference is parsed', () => {
  it('reads a registry with a port, a nested repository and a tag', () => {
    expect(parseOciReference('registry.example:5000/acme/tools/lens:1.2.0')).toEqual({
      registry: 'registry.example:5000',
      repository: 'acme/tools/lens',
      tag: '1.2.0',
    });
  });

  it('reads a digest, alone or after a tag', () => {
    expect(parseOciReference(`127.0.0.1:5000/acme/lens@${DIGEST}`)).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'acme/lens',
      digest: DIGEST,
    });
    expect(parseOciReference(`registry.example/lens:1.0@${DIGEST}`)).toEqual({
      registry: 'registry.example',
      repository: 'lens',
      tag: '1.0',
      digest: DIGEST,
    });
  });

  it('reads localhost and a bracketed IPv6 host as registries', () => {
    expect(parseOciReference('localhost/lens')).toEqual({ registry: 'localhost', repository: 'lens' });
    expect(parseOciReference('[::1]:5000/acme/lens:v1')).toEqual({
      registry: '[::1]:5000',
      repository: 'acme/lens',
      tag: 'v1',
    });
  });

  it('reads repository components joined by ., _, __ and runs of -', () => {
    expect(parseOciReference('registry.example/a.b/c_d/e__f/g--h').repository).toBe('a.b/c_d/e__f/g--h');
  });

  for (const [text, why] of [
    ['lens:1.0', 'no REGISTRY/'],
    ['acme/lens:1.0', 'is not a registry'],
    ['registry.example/', 'no repository'],
    ['registry.example/:1.0', 'no repository'],
    ['registry.example/Acme/lens', 'component "Acme"'],
    ['registry.example/acme//lens', 'component ""'],
    ['registry.example/acme/-lens', 'component "-lens"'],
    ['registry.example/lens:.bad', 'its tag ".bad"'],
    [`registry.example/lens:${'x'.repeat(129)}`, 'its tag'],
    ['registry.example/lens@sha256:abc', 'not sha256: and 64'],
    [`registry.example/lens@sha256:${'A'.repeat(64)}`, 'not sha256: and 64'],
    [`registry.example/lens@sha512:${'a'.repeat(128)}`, 'is not sha256'],
    ['registry.example:99999/lens', 'port 99999'],
    ['bad_host.example/lens', 'is not a host name'],
    [`registry.example/${'a'.repeat(256)}`, 'over the limit of 255'],
  ] as const) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))} (${why})`, () => {
      expect(() => parseOciReference(text)).toThrow(
        expect.objectContaining({
          name: 'ClientError',
          code: 'REQUEST_INVALID',
          message: expect.stringContaining(why),
        }),
      );
    });
  }

  it('names the text and the form expected', () => {
    expect(() => parseOciReference('acme/lens')).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/"acme\/lens" is not REGISTRY\[:PORT\]\//) }),
    );
  });
});

describe('when a command-line artifact reference is parsed', () => {
  it('reads NAME and NAME:TAG as a plugin of the configured registries', () => {
    expect(parseArtifactReference('kubecost-lens')).toEqual({ kind: 'name', name: 'kubecost-lens' });
    expect(parseArtifactReference('kubecost-lens:1.2.0')).toEqual({
      kind: 'name',
      name: 'kubecost-lens',
      tag: '1.2.0',
    });
  });

  it('keeps our NAME@SPEC form apart, as a version range', () => {
    expect(parseArtifactReference('kubecost-lens@^1.2')).toEqual({
      kind: 'name',
      name: 'kubecost-lens',
      spec: '^1.2',
    });
  });

  it('reads REGISTRY/REPO:TAG and REGISTRY/REPO@sha256 as an OCI pull', () => {
    expect(parseArtifactReference('registry.example/acme/lens:1.2.0')).toEqual({
      kind: 'oci',
      registry: 'registry.example',
      repository: 'acme/lens',
      tag: '1.2.0',
    });
    expect(parseArtifactReference(`localhost:5000/lens@${DIGEST}`)).toEqual({
      kind: 'oci',
      registry: 'localhost:5000',
      repository: 'lens',
      digest: DIGEST,
    });
  });

  it('reads REGISTRY/REPO without a tag as the tag latest', () => {
    expect(parseArtifactReference('localhost/acme/lens')).toEqual({
      kind: 'oci',
      registry: 'localhost',
      repository: 'acme/lens',
      tag: 'latest',
    });
  });

  for (const [text, why] of [
    ['acme/lens:1.0', 'is not a registry'],
    [`kubecost-lens@${DIGEST}`, 'without a registry'],
    ['Kubecost-Lens', 'is not a plugin name'],
    ['kubecost-lens:', 'its tag ""'],
    ['kubecost-lens@not a range!', 'kubecost-lens@not a range!'],
    ['', 'no plugin name'],
  ] as const) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))} (${why})`, () => {
      expect(() => parseArtifactReference(text)).toThrow(
        expect.objectContaining({
          name: 'ClientError',
          code: 'REQUEST_INVALID',
          message: expect.stringContaining(why),
        }),
      );
    });
  }
});

describe('when a reference holds a user name and password before its registry, as a URL would', () => {
  /** `text` refused REQUEST_INVALID, its password (`s3cret`) not shown and its user information as `***@`. */
  const expectRefusedMasked = (text: string) => {
    let refused: unknown;
    try {
      parseArtifactReference(text);
    } catch (error) {
      refused = error;
    }
    expect(refused, text).toMatchObject({ name: 'ClientError', code: 'REQUEST_INVALID' });
    expect((refused as Error).message, text).not.toContain('s3cret');
    expect((refused as Error).message, text).toContain('***@');
  };

  it('refuses it without showing them (install user:token@registry/repo:tag printed the token)', () => {
    // No reference has an '@' before its first '/' (a digest follows the repository): one there is a URL's
    // user information, typed on the command line and echoed whole in each refusal, on stderr and in --json.
    for (const text of [
      'u:s3cret@ghcr.io/acme/lens:1.0',
      'u:s3cret@ghcr.io/acme/lens',
      `u:s3cret@ghcr.io/acme/lens@${DIGEST}`,
      'u:s3cret@acme/lens:1.0',
      'u@s3cret@registry.example:5000/acme/Lens',
    ]) {
      expectRefusedMasked(text);
    }
  });

  it('refuses one whose password holds a / (a base64 token) without showing it, and takes a digest or a range', () => {
    // Its first '/' is then inside the password, before the '@': the '@' was read as a digest's and the
    // refusal ("its digest ... is not sha256") echoed the text whole, token and all.
    for (const text of [
      'u:ab/s3cret@ghcr.io/acme/lens:1.0',
      'AWS:eyJ/s3cret+x=@registry.example:5000/acme/lens',
    ]) {
      expectRefusedMasked(text);
      expect(() => parseOciReference(text), text).toThrow(/\*\*\*@/);
    }
    expect(parseArtifactReference(`ghcr.io/acme/lens@${DIGEST}`)).toMatchObject({
      kind: 'oci',
      digest: DIGEST,
    });
    expect(parseArtifactReference('lens@^1.2')).toMatchObject({ kind: 'name', name: 'lens', spec: '^1.2' });
  });
});

describe('when a WWW-Authenticate challenge is parsed', () => {
  it('reads a Bearer challenge with quoted parameters, commas inside quotes and escapes', () => {
    const challenge = parseBearerChallenge(
      'Bearer realm="https://auth.example/token",service="registry.example",' +
        'scope="repository:acme/lens:pull,push", error="insufficient_scope",note="a \\"quoted\\" word"',
    );
    expect(challenge).toMatchObject({
      scheme: 'bearer',
      realm: 'https://auth.example/token',
      service: 'registry.example',
      scope: 'repository:acme/lens:pull,push',
      params: { error: 'insufficient_scope', note: 'a "quoted" word' },
    });
  });

  it('reads the scheme and parameter names in any case, and unquoted values', () => {
    expect(parseBearerChallenge('bEaReR Realm="https://auth.example/token" , Service=reg')).toMatchObject({
      scheme: 'bearer',
      realm: 'https://auth.example/token',
      service: 'reg',
    });
  });

  it('reads a Basic challenge', () => {
    expect(parseBearerChallenge('Basic realm="Registry Realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Registry Realm' },
      realm: 'Registry Realm',
    });
  });

  it('prefers Bearer when the header offers both', () => {
    expect(
      parseBearerChallenge('Basic realm="r", Bearer realm="https://auth.example/t",service="s"')?.scheme,
    ).toBe('bearer');
  });

  for (const header of [
    null,
    '',
    'Negotiate',
    'Bearer realm="unterminated',
    'Bearer realm="a",realm="b"',
    'Bearer realm="a" service="b"',
  ]) {
    it(`finds nothing usable in ${JSON.stringify(header)}`, () => {
      expect(parseBearerChallenge(header)).toBeUndefined();
    });
  }
});

describe('when a manifest or index is read', () => {
  it('accepts the four manifest media types', () => {
    expect(MANIFEST_MEDIA_TYPES).toEqual([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]);
  });

  it('lists a manifest’s layers, from a Docker manifest too', () => {
    expect(readManifest(imageManifest([descriptor(OTHER), descriptor(DIGEST)]))).toEqual({
      kind: 'image',
      layers: [descriptor(OTHER), descriptor(DIGEST)],
    });
    expect(readManifest(imageManifest([descriptor(DIGEST)], DOCKER_MANIFEST))).toEqual({
      kind: 'image',
      layers: [descriptor(DIGEST)],
    });
  });

  it('uses the Content-Type when the document names no mediaType', () => {
    const read = readManifest(imageManifest([descriptor(DIGEST)], undefined), {
      mediaType: `${OCI_MANIFEST}; charset=utf-8`,
    });
    expect(read.kind).toBe('image');
  });

  it('lists an index’s manifests with their platforms, choosing none', () => {
    const doc = index([onPlatform(OTHER, 'linux', 'amd64'), onPlatform(DIGEST, 'linux', 'arm', 'v7')]);
    expect(readManifest(doc)).toEqual({
      kind: 'index',
      manifests: [onPlatform(OTHER, 'linux', 'amd64'), onPlatform(DIGEST, 'linux', 'arm', 'v7')],
    });
    expect(readManifest(index([onPlatform(DIGEST, 'windows', '386')], DOCKER_MANIFEST_LIST)).kind).toBe(
      'index',
    );
  });

  for (const [what, doc, pointer] of [
    ['an array', [], '#: expected a JSON object'],
    ['both manifests and layers', { ...imageManifest([]), manifests: [] }, 'not both'],
    ['an unknown media type', { mediaType: 'text/plain', layers: [] }, '#/mediaType'],
    ['an index declared without manifests', { mediaType: OCI_INDEX, layers: [] }, '#/manifests'],
    ['a manifest declared without layers', { mediaType: OCI_MANIFEST, manifests: [] }, '#/layers'],
    ['a layer without a digest', imageManifest([{ mediaType: 'x', size: 1 }]), '#/layers/0/digest'],
    ['a layer with a negative size', imageManifest([descriptor(DIGEST, { size: -1 })]), '#/layers/0/size'],
    [
      'a platform without architecture',
      index([descriptor(DIGEST, { platform: { os: 'linux' } })]),
      '#/manifests/0/platform',
    ],
  ] as const) {
    it(`refuses ${what} as DOCUMENT_MALFORMED, naming ${pointer}`, () => {
      expect(() => readManifest(doc, { source: 'registry.example/lens@x' })).toThrow(
        expect.objectContaining({
          name: 'TrustError',
          code: 'DOCUMENT_MALFORMED',
          message: expect.stringContaining(pointer),
        }),
      );
    });
  }
});

/**
 * The walk with its documents served from memory: what a registry cannot be made to serve (bytes of
 * another digest, which the fetcher refuses first) and what the walk leaves unread. The walk through a real
 * registry is test/client/oci-platforms.test.ts.
 */
describe('when the manifests a digest leads to are walked', () => {
  const source = (digest: string) => `registry.example/acme/lens@${digest}`;
  /** A registry in memory: `put` keeps a document by its digest, `read` serves it and records the ask. */
  function registry() {
    const byDigest = new Map<string, Uint8Array>();
    const asked: string[] = [];
    return {
      asked,
      put(document: unknown) {
        const bytes = new TextEncoder().encode(JSON.stringify(document));
        const digest = `sha256:${sha256Hex(bytes)}`;
        byDigest.set(digest, bytes);
        return { digest, size: bytes.byteLength };
      },
      read: async (digest: string) => {
        asked.push(digest);
        const bytes = byDigest.get(digest);
        return bytes === undefined ? undefined : { bytes, mediaType: '' };
      },
    };
  }

  it('reads no entry of another type or algorithm, and passes an entry the registry does not hold', async () => {
    const held = registry();
    const image = held.put(imageManifest([descriptor(DIGEST)]));
    const absent = `sha256:${'d'.repeat(64)}`;
    const top = held.put(
      index([
        { mediaType: OCI_MANIFEST, ...image },
        descriptor(OTHER, { mediaType: 'application/vnd.in-toto+json' }),
        descriptor(`sha512:${'c'.repeat(128)}`, { mediaType: OCI_MANIFEST }),
        descriptor(absent, { mediaType: OCI_INDEX }),
      ]),
    );

    const walk = await walkManifests(top.digest, { read: held.read, source });

    expect(walk).toEqual({ kind: 'index', layers: new Set([DIGEST]) });
    expect(held.asked).toEqual([top.digest, image.digest, absent]);
  });

  it('refuses bytes that are not of the digest read, with DOCUMENT_MISMATCH', async () => {
    const other = async () => ({ bytes: new TextEncoder().encode('{}'), mediaType: OCI_MANIFEST });

    await expect(walkManifests(DIGEST, { read: other, source })).rejects.toMatchObject({
      name: 'TrustError',
      code: 'DOCUMENT_MISMATCH',
      message: expect.stringContaining(`${source(DIGEST)} does not match its digest`),
    });
  });

  it('is undefined when the registry holds no document of the digest', async () => {
    expect(await walkManifests(DIGEST, { read: registry().read, source })).toBeUndefined();
  });
});
