/**
 * The trusted snapshot over two real generations of a registry the pipeline published: trust in order
 * (snapshot, bin, plugin document), and each attack refused with its code while what was trusted stays.
 */
import type { Key } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClientError } from '../../client/errors.ts';
import { TrustedSnapshot } from '../../client/trusted-snapshot.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { digestOf } from '../../index-builder/digest.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { binKey, binOf, pluginDocumentKey } from '../../index-builder/layout.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { renderSnapshot } from '../../index-builder/render/snapshot.ts';
import { readPublicKey, type Signer } from '../../index-builder/signing.ts';
import { makeBundle, makeRegistry, type TestRegistry, testKey, validManifest } from '../support/fixtures.ts';

const NAME = 'demo-plugin';
const BIN = binOf(NAME);
const clock = fixedClock('2026-11-02T00:00:00Z');

/** What a client fetches of one generation. */
interface Generation {
  readonly snapshot: Uint8Array;
  readonly signature: string;
  readonly index: Uint8Array;
  readonly bin: Uint8Array;
  readonly doc: Uint8Array;
}

function capture(registry: TestRegistry): Generation {
  const bytes = (key: string): Uint8Array => registry.site.objects.get(key)?.body as Uint8Array;
  return {
    snapshot: bytes('snapshot.json'),
    signature: new TextDecoder().decode(bytes('snapshot.json.asc')),
    index: bytes('index.json'),
    bin: bytes(binKey(BIN)),
    doc: bytes(pluginDocumentKey(NAME)),
  };
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

let key: Key;
let signer: Signer;
let first: Generation;
let second: Generation;

beforeAll(async () => {
  const registry = await makeRegistry();
  await processSubmissions(registry.context, await registry.submit(await makeBundle()));
  first = capture(registry);
  const next = await makeBundle({ manifest: validManifest({ version: '1.1.0' }) });
  await processSubmissions(registry.context, await registry.submit(next));
  second = capture(registry);
  key = (await readPublicKey(registry.registryKey.publicKey)).key;
  signer = registry.signer;
});

describe('when a client trusts a registry in order', () => {
  it('verifies the snapshot, then a listed document, then a bin, then the plugin document', async () => {
    const trusted = new TrustedSnapshot({ key, clock });
    expect((await trusted.updateSnapshot(second.snapshot, second.signature)).generation).toBe(2);
    expect(trusted.highestGeneration).toBe(2);
    trusted.verifyDocument('index.json', second.index);
    expect(trusted.updateBin(BIN, second.bin).documents[pluginDocumentKey(NAME)]).toBeDefined();
    const doc = trusted.pluginDocument(NAME, second.doc);
    expect(doc.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
  });

  it('refuses to verify anything before what it hangs on (CLIENT_OUT_OF_ORDER)', async () => {
    const trusted = new TrustedSnapshot({ key, clock });
    for (const run of [
      () => trusted.snapshot,
      () => trusted.verifyDocument('index.json', second.index),
      () => trusted.updateBin(BIN, second.bin),
    ]) {
      const error = thrown(run);
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'CLIENT_OUT_OF_ORDER' });
    }
    await trusted.updateSnapshot(second.snapshot, second.signature);
    expect(thrown(() => trusted.pluginDocument(NAME, second.doc))).toMatchObject({
      code: 'CLIENT_OUT_OF_ORDER',
    });
  });

  it('drops the bins of an older snapshot, so no document is checked against another generation', async () => {
    const trusted = new TrustedSnapshot({ key, clock });
    await trusted.updateSnapshot(first.snapshot, first.signature);
    trusted.updateBin(BIN, first.bin);
    expect(trusted.pluginDocument(NAME, first.doc).versions).toHaveLength(1);
    await trusted.updateSnapshot(second.snapshot, second.signature);
    expect(thrown(() => trusted.pluginDocument(NAME, second.doc))).toMatchObject({
      code: 'CLIENT_OUT_OF_ORDER',
    });
    trusted.updateBin(BIN, second.bin);
    expect(trusted.pluginDocument(NAME, second.doc).versions).toHaveLength(2);
  });
});

describe('when what a client fetches is not what the registry signed', () => {
  it('refuses an older snapshot than one it accepted (rollback), and keeps trusting the newer one', async () => {
    const trusted = new TrustedSnapshot({ key, clock });
    await trusted.updateSnapshot(second.snapshot, second.signature);
    const error = await trusted.updateSnapshot(first.snapshot, first.signature).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_ROLLBACK' });
    expect(trusted.snapshot.generation).toBe(2);
  });

  it('refuses an older snapshot across runs, from the generation the caller kept', async () => {
    const trusted = new TrustedSnapshot({ key, clock, highestGeneration: 2 });
    await expect(trusted.updateSnapshot(first.snapshot, first.signature)).rejects.toMatchObject({
      code: 'SNAPSHOT_ROLLBACK',
    });
    expect(trusted.highestGeneration).toBe(2);
  });

  it('refuses an expired snapshot (freeze)', async () => {
    const late = new TrustedSnapshot({ key, clock: fixedClock('2030-01-01T00:00:00Z') });
    await expect(late.updateSnapshot(second.snapshot, second.signature)).rejects.toMatchObject({
      code: 'SNAPSHOT_EXPIRED',
    });
  });

  it('refuses a snapshot under another key than the pinned one (forgery)', async () => {
    const other = (await readPublicKey((await testKey('other')).publicKey)).key;
    const trusted = new TrustedSnapshot({ key: other, clock });
    await expect(trusted.updateSnapshot(second.snapshot, second.signature)).rejects.toMatchObject({
      code: 'SNAPSHOT_BAD_SIGNATURE',
    });
  });

  it('refuses a bin, a listed document or a plugin document of another generation (mix and match)', async () => {
    const trusted = new TrustedSnapshot({ key, clock });
    await trusted.updateSnapshot(second.snapshot, second.signature);
    for (const run of [
      () => trusted.updateBin(BIN, first.bin),
      () => trusted.verifyDocument('index.json', first.index),
    ]) {
      const error = thrown(run);
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code: 'DOCUMENT_MISMATCH' });
    }
    trusted.updateBin(BIN, second.bin);
    expect(thrown(() => trusted.pluginDocument(NAME, first.doc))).toMatchObject({
      code: 'DOCUMENT_MISMATCH',
    });
  });

  it('refuses a document the snapshot or the bin does not list', async () => {
    const trusted = new TrustedSnapshot({ key, clock });
    await trusted.updateSnapshot(second.snapshot, second.signature);
    expect(thrown(() => trusted.verifyDocument('index.html', second.index))).toMatchObject({
      code: 'DOCUMENT_NOT_LISTED',
    });
    trusted.updateBin(BIN, second.bin);
    // A name of the same bin that the registry never published: the verified bin does not list it.
    let stranger = `${NAME}-0`;
    for (let i = 1; binOf(stranger) !== BIN; i++) stranger = `${NAME}-${i}`;
    expect(thrown(() => trusted.pluginDocument(stranger, second.doc))).toMatchObject({
      code: 'DOCUMENT_NOT_LISTED',
    });
  });

  it('refuses bytes the registry listed that are not the plugin document they stand for (a registry defect)', async () => {
    // The registry's own key signs a snapshot whose bin lists, under NAME, bytes that are not NAME's document.
    for (const body of ['{"name":"someone-else","versions":[]}', 'not json']) {
      const doc = new TextEncoder().encode(body);
      const bin = new TextEncoder().encode(
        JSON.stringify({
          schema: 'plugindex/bin/v1',
          bin: BIN,
          documents: { [pluginDocumentKey(NAME)]: digestOf(doc) },
        }),
      );
      const snapshot = renderSnapshot({
        registry: 'https://r.example',
        generation: 9,
        created: clock.now(),
        ttlSeconds: 3600,
        keyFingerprint: signer.fingerprint,
        documents: { [binKey(BIN)]: digestOf(bin) },
      });
      const trusted = new TrustedSnapshot({ key, clock });
      await trusted.updateSnapshot(snapshot, await signer.sign(snapshot));
      trusted.updateBin(BIN, bin);
      const error = thrown(() => trusted.pluginDocument(NAME, doc));
      expect(error).toBeInstanceOf(TrustError);
      expect(error).toMatchObject({ code: 'DOCUMENT_MALFORMED' });
    }
  });
});
