import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { readBundle } from '../../index-builder/bundle.ts';
import { SubmissionError } from '../../index-builder/errors.ts';
import { inspectManifest } from '../../index-builder/manifest/index.ts';
import { inspectBundle, packSubmission } from '../../index-builder/submission.ts';
import { encode, makeBundle, sha256, testKey, validManifest } from '../support/fixtures.ts';

describe('when packing a submission', () => {
  it('records each artifact with its digest and size, signs the manifest, and adds the publisher key', async () => {
    const key = await testKey('packer');
    const body = encode('#!/bin/sh\necho hi\n');
    const packed = await packSubmission({
      manifestName: 'manifest.json',
      manifest: encode(JSON.stringify(validManifest())),
      artifacts: [{ os: 'linux', arch: 'amd64', fileName: 'tool', body }],
      secretKey: key.secretKey,
    });
    expect(packed.fingerprint).toBe(key.fingerprint);
    expect(packed.manifest.installation?.artifacts).toEqual([
      {
        os: 'linux',
        arch: 'amd64',
        file: 'artifacts/linux-amd64/tool',
        sha256: sha256(body),
        size_bytes: body.byteLength,
      },
    ]);
    const contents = await readBundle(packed.bundle);
    expect([...contents.files.keys()]).toEqual(['artifacts/linux-amd64/tool']);
    await expect(inspectBundle(packed.bundle)).resolves.toMatchObject({
      valid: true,
      problems: [],
      signer: key.fingerprint,
    });
  });

  it('keeps YAML comments when it adds artifacts', async () => {
    const key = await testKey('packer');
    const packed = await packSubmission({
      manifestName: 'manifest.yaml',
      manifest: encode(`# keep me\n${YAML.stringify(validManifest())}`),
      artifacts: [{ os: 'darwin', arch: 'arm64', fileName: 'tool', body: encode('x') }],
      secretKey: key.secretKey,
    });
    const contents = await readBundle(packed.bundle);
    expect(new TextDecoder().decode(contents.manifest)).toMatch(/^# keep me/);
    expect(packed.manifest.installation?.artifacts?.[0]?.file).toBe('artifacts/darwin-arm64/tool');
  });

  it('refuses to pack an invalid manifest', async () => {
    const key = await testKey('packer');
    await expect(
      packSubmission({
        manifestName: 'manifest.json',
        manifest: encode('{"name":"X"}'),
        artifacts: [],
        secretKey: key.secretKey,
      }),
    ).rejects.toBeInstanceOf(SubmissionError);
  });
});

describe('when inspecting without publishing', () => {
  it('lists every manifest problem', async () => {
    const result = await inspectManifest(encode(JSON.stringify({ name: 'Bad' })), 'manifest.json');
    expect(result.valid).toBe(false);
    expect(result.problems.map((p) => p.code)).toEqual(
      expect.arrayContaining(['MANIFEST_PATTERN_MISMATCH', 'MANIFEST_MISSING_FIELD']),
    );
  });

  it('reports a bundle whose signature does not match', async () => {
    const bundle = await makeBundle({
      signature: await (async () => '-----BEGIN PGP SIGNATURE-----\nbroken\n-----END PGP SIGNATURE-----\n')(),
    });
    const result = await inspectBundle(bundle);
    expect(result.valid).toBe(false);
    expect(result.problems.map((p) => p.code)).toEqual(['SIGNATURE_MALFORMED']);
  });
});
