import { describe, expect, it } from 'vitest';
import { TrustError } from '../../index-builder/errors.ts';
import { binKey, binOf } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { createSigner, readPublicKey } from '../../index-builder/signing.ts';
import { verifyListedDocument, verifyPluginDocument, verifySnapshot } from '../../index-builder/verify.ts';
import { makeBundle, makeRegistry, type TestRegistry, testKey, validManifest } from '../support/fixtures.ts';

const bytesOf = (registry: TestRegistry, key: string): Uint8Array =>
  registry.site.objects.get(key)?.body as Uint8Array;
const textOf = (registry: TestRegistry, key: string): string =>
  new TextDecoder().decode(bytesOf(registry, key));

/** Two generations of one registry, and a copy of what a client saw after the first. */
async function twoGenerations() {
  const registry = await makeRegistry();
  await processSubmissions(registry.context, await registry.submit(await makeBundle()));
  const first = {
    snapshot: bytesOf(registry, 'snapshot.json'),
    signature: textOf(registry, 'snapshot.json.asc'),
    index: bytesOf(registry, 'index.json'),
    doc: bytesOf(registry, 'plugins/demo-plugin/index.json'),
  };
  await processSubmissions(
    registry.context,
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '1.1.0' }) })),
  );
  const key = (await readPublicKey(registry.registryKey.publicKey)).key;
  return { registry, first, key };
}

const now = new Date('2026-11-02T00:00:00Z');

describe('when a client checks the snapshot', () => {
  it('accepts the current, signed, unexpired snapshot and every document it binds', async () => {
    const { registry, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
      lastGeneration: 1,
    });
    expect(snapshot.generation).toBe(2);
    for (const path of ['index.json', 'index.yaml', 'search.json', 'keys/registry.asc'])
      verifyListedDocument(snapshot, path, bytesOf(registry, path));
    const bin = binKey(binOf('demo-plugin'));
    expect(() =>
      verifyPluginDocument(
        snapshot,
        'demo-plugin',
        bytesOf(registry, bin),
        bytesOf(registry, 'plugins/demo-plugin/index.json'),
      ),
    ).not.toThrow();
  });

  it('refuses a snapshot signed by another key (forgery)', async () => {
    const { registry, key } = await twoGenerations();
    const forger = await createSigner((await testKey('forger')).secretKey);
    const body = bytesOf(registry, 'snapshot.json');
    await expect(
      verifySnapshot({ snapshot: body, signature: await forger.sign(body), key, now }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_BAD_SIGNATURE' });
  });

  it('refuses an older generation than one already seen (rollback), though its signature is good', async () => {
    const { first, key } = await twoGenerations();
    await expect(
      verifySnapshot({ snapshot: first.snapshot, signature: first.signature, key, now }),
    ).resolves.toMatchObject({ generation: 1 });
    await expect(
      verifySnapshot({ snapshot: first.snapshot, signature: first.signature, key, now, lastGeneration: 2 }),
    ).rejects.toBeInstanceOf(TrustError);
    await expect(
      verifySnapshot({ snapshot: first.snapshot, signature: first.signature, key, now, lastGeneration: 2 }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_ROLLBACK' });
  });

  it('refuses an expired snapshot (a frozen registry or mirror)', async () => {
    const { registry, key } = await twoGenerations();
    const later = new Date(Date.parse('2026-11-01T00:00:00Z') + 8 * 24 * 3600 * 1000);
    await expect(
      verifySnapshot({
        snapshot: bytesOf(registry, 'snapshot.json'),
        signature: textOf(registry, 'snapshot.json.asc'),
        key,
        now: later,
      }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_EXPIRED' });
  });
});

describe('when documents come from different generations', () => {
  it('refuses an old index.json under the new snapshot (mix and match)', async () => {
    const { registry, first, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
    });
    expect(() => verifyListedDocument(snapshot, 'index.json', first.index)).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_MISMATCH' }),
    );
  });

  it('refuses an old plugin document under the new bin', async () => {
    const { registry, first, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
    });
    const bin = bytesOf(registry, binKey(binOf('demo-plugin')));
    expect(() => verifyPluginDocument(snapshot, 'demo-plugin', bin, first.doc)).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_MISMATCH' }),
    );
  });

  it('refuses a document the snapshot does not list', async () => {
    const { registry, key } = await twoGenerations();
    const snapshot = await verifySnapshot({
      snapshot: bytesOf(registry, 'snapshot.json'),
      signature: textOf(registry, 'snapshot.json.asc'),
      key,
      now,
    });
    expect(() => verifyListedDocument(snapshot, 'extra.json', new Uint8Array())).toThrow(
      expect.objectContaining({ code: 'DOCUMENT_NOT_LISTED' }),
    );
  });
});
