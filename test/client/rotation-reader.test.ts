/**
 * A snapshot read through a registry's key rotations (`readThroughRotations`, client/key-chain.ts), pure:
 * rotations and snapshots signed by openpgp.js keys, "served" from a map by an in-memory loader that
 * records what it was asked for, each snapshot verified for real (TrustedSnapshot). Two rotations
 * followed, a loop, a count that differs, nothing published, and when no rotation is looked for at all.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DocumentLoader } from '../../client/fetcher.ts';
import { type FollowedChain, type HeldKey, readThroughRotations } from '../../client/key-chain.ts';
import { TrustedSnapshot } from '../../client/trusted-snapshot.ts';
import { fixedClock } from '../../index-builder/clock.ts';
import { TrustError } from '../../index-builder/errors.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import { MAX_ROTATION_BYTES, rotationKey, signRotation } from '../../index-builder/rotation.ts';
import { createSigner, readPublicKey, type Signer } from '../../index-builder/signing.ts';
import { testKey } from '../support/fixtures.ts';
import { rejectionOf } from '../support/problems.ts';

const URL = 'https://plugins.registry.example';
const NOW = new Date('2026-11-02T00:00:00Z');
let a: Signer;
let b: Signer;
let c: Signer;
/** a -> b (1), b -> c (2). */
let rotations: Map<string, Uint8Array>;
let served: Map<string, Uint8Array>;
let asked: Parameters<DocumentLoader>[0][];
const load: DocumentLoader = async (request) => {
  asked.push(request);
  return served.get(request.path);
};

async function held(signer: Signer): Promise<HeldKey> {
  const info = await readPublicKey(signer.publicKey);
  return { key: info.key, fingerprint: info.fingerprint, armoredKey: info.armored };
}

/** The registry's current snapshot, signed by `signer` and counting `count` rotations. */
async function signedSnapshot(
  signer: Signer,
  count: number,
): Promise<{ bytes: Uint8Array; signature: string }> {
  const snapshot: SnapshotDocument = {
    schema: 'plugindex/snapshot/v1',
    registry: URL,
    generation: 9,
    created: '2026-11-01T00:00:00Z',
    expires: '2026-11-08T00:00:00Z',
    key_fingerprint: signer.fingerprint,
    documents: {},
    key_rotations: count,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(snapshot));
  return { bytes, signature: await signer.sign(bytes) };
}

/**
 * What a reader of the registry does with the key it is given: verifies the snapshot served by it
 * (by the key held when no chain is given). Counts its reads.
 */
function reader(holding: HeldKey, current: { bytes: Uint8Array; signature: string }) {
  const reads: (FollowedChain | undefined)[] = [];
  return {
    reads,
    read: async (chain?: FollowedChain) => {
      reads.push(chain);
      const trusted = new TrustedSnapshot({ key: (chain ?? holding).key, clock: fixedClock(NOW) });
      return { snapshot: await trusted.updateSnapshot(current.bytes, current.signature) };
    },
  };
}

const refusal = (work: Promise<unknown>) => rejectionOf(work, TrustError);

beforeAll(async () => {
  [a, b, c] = (await Promise.all(
    ['a', 'b', 'c'].map(async (l) => createSigner((await testKey(`reader-${l}`)).secretKey)),
  )) as [Signer, Signer, Signer];
  rotations = new Map();
  const steps: [Signer, Signer][] = [
    [a, b],
    [b, c],
  ];
  for (const [i, [previous, next]] of steps.entries()) {
    const sequence = i + 1;
    const signed = await signRotation({
      registry: URL,
      sequence,
      previous,
      next,
      now: new Date('2026-11-01'),
    });
    rotations.set(rotationKey(sequence), signed.bytes);
  }
});

beforeEach(() => {
  served = new Map(rotations);
  asked = [];
});

describe('when a reader verifies a snapshot through the registry key rotations', () => {
  it('follows two rotations from the key held to the key that signs the snapshot', async () => {
    const holding = await held(a);
    const { read, reads } = reader(holding, await signedSnapshot(c, 2));
    const result = await readThroughRotations({ load, held: holding, from: 0, read });
    expect(result.value.snapshot.key_fingerprint).toBe(c.fingerprint);
    expect(result.chain).toMatchObject({ fingerprint: c.fingerprint, rotations: 2 });
    expect(result.chain?.steps.map((s) => [s.sequence, s.from, s.to])).toEqual([
      [1, a.fingerprint, b.fingerprint],
      [2, b.fingerprint, c.fingerprint],
    ]);
    expect(result.chain?.links.map((l) => l.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);
    // Read by the key held, refused, then once by the last key of the chain.
    expect(reads.map((chain) => chain?.fingerprint)).toEqual([undefined, c.fingerprint]);
    // Each rotation by its fixed name (no ?v=), under its cap, until the first not published.
    expect(asked).toEqual(
      [1, 2, 3].map((n) => ({ path: `keys/rotation/${n}.json`, maxBytes: MAX_ROTATION_BYTES })),
    );
  });

  it('refuses a chain that loops back to a key already left: KEY_ROTATION_BROKEN, and reads nothing by it', async () => {
    const back = await signRotation({
      registry: URL,
      sequence: 3,
      previous: c,
      next: a,
      now: new Date('2026-11-01'),
    });
    served.set(rotationKey(3), back.bytes);
    const holding = await held(a);
    // The snapshot the key held does not sign, so the chain is followed (and loops at its third step).
    const { read, reads } = reader(holding, await signedSnapshot(c, 3));
    const error = await refusal(readThroughRotations({ load, held: holding, from: 0, read }));
    expect(error.code).toBe('KEY_ROTATION_BROKEN');
    expect(error.message).toContain(`keys/rotation/3.json rotates to key ${a.fingerprint}`);
    expect(reads).toEqual([undefined]);
  });

  it('refuses a snapshot by the last key that does not count the rotations followed: KEY_ROTATION_BROKEN', async () => {
    const holding = await held(a);
    const { read } = reader(holding, await signedSnapshot(c, 1));
    const error = await refusal(readThroughRotations({ load, held: holding, from: 0, read }));
    expect(error.code).toBe('KEY_ROTATION_BROKEN');
    expect(error.message).toContain('counts 1 key rotations');
  });

  it("leaves the key held's refusal standing when no rotation from it is published", async () => {
    const stranger = await held(await createSigner((await testKey('reader-stranger')).secretKey));
    const { read, reads } = reader(stranger, await signedSnapshot(c, 2));
    const error = await refusal(readThroughRotations({ load, held: stranger, read }));
    expect(error.code).toBe('SNAPSHOT_BAD_SIGNATURE');
    expect(reads).toEqual([undefined]);
  });

  it('looks for no rotation when told not to follow, when the key held signs, or on another refusal', async () => {
    const holding = await held(a);
    const byC = reader(holding, await signedSnapshot(c, 2));
    const notFollowed = await refusal(
      readThroughRotations({ load, held: holding, follow: false, read: byC.read }),
    );
    expect(notFollowed.code).toBe('SNAPSHOT_BAD_SIGNATURE');
    const byA = reader(holding, await signedSnapshot(a, 0));
    expect(await readThroughRotations({ load, held: holding, from: 0, read: byA.read })).toEqual({
      value: { snapshot: expect.objectContaining({ key_fingerprint: a.fingerprint }) },
    });
    const expired = async () => {
      throw new TrustError('SNAPSHOT_EXPIRED', 'snapshot.json expired');
    };
    expect((await refusal(readThroughRotations({ load, held: holding, read: expired }))).code).toBe(
      'SNAPSHOT_EXPIRED',
    );
    expect(asked).toEqual([]);
  });
});
