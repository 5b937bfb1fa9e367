/**
 * Following a chain of key rotations (client/key-chain.ts), pure: rotations signed by openpgp.js keys,
 * "fetched" from a map. Where the client stands known or not, the count the snapshot must carry, and the
 * cap on how many it follows.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkRotatedSnapshot,
  checkSnapshotRegistry,
  extendChain,
  followRotations,
  type HeldKey,
  learnRetirements,
  readThroughRotations,
} from '../../client/key-chain.ts';
import { TrustError } from '../../index-builder/errors.ts';
import type { SnapshotDocument } from '../../index-builder/model.ts';
import { MAX_ROTATIONS, signRotation } from '../../index-builder/rotation.ts';
import { createSigner, readPublicKey, type Signer } from '../../index-builder/signing.ts';
import { testKey } from '../support/fixtures.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';

const URL = 'https://plugins.registry.example';
let signers: Signer[];
let chain: Map<number, Uint8Array>;

async function held(signer: Signer): Promise<HeldKey> {
  const info = await readPublicKey(signer.publicKey);
  return { key: info.key, fingerprint: info.fingerprint, armoredKey: info.armored };
}

const snapshot = (fingerprint: string, rotations?: number): SnapshotDocument => ({
  schema: 'plugindex/snapshot/v1',
  registry: URL,
  generation: 9,
  created: '2026-11-01T00:00:00Z',
  expires: '2026-11-08T00:00:00Z',
  key_fingerprint: fingerprint,
  documents: {},
  ...(rotations === undefined ? {} : { key_rotations: rotations }),
});

beforeAll(async () => {
  signers = await Promise.all(
    ['a', 'b', 'c'].map(async (l) => createSigner((await testKey(`chain-${l}`)).secretKey)),
  );
  chain = new Map();
  for (let i = 1; i < signers.length; i++) {
    const { bytes } = await signRotation({
      registry: URL,
      sequence: i,
      previous: signers[i - 1] as Signer,
      next: signers[i] as Signer,
      now: new Date('2026-11-01T00:00:00Z'),
    });
    chain.set(i, bytes);
  }
});

const load = async (n: number) => chain.get(n);

describe('when a client follows a registry key chain', () => {
  it('follows from where its key stands to the last key, and the snapshot must count those steps', async () => {
    const [a, b, c] = signers as [Signer, Signer, Signer];
    const followed = await followRotations({ load, held: await held(a), from: 0 });
    expect(followed).toMatchObject({ fingerprint: c.fingerprint, rotations: 2 });
    expect(followed?.links.map((l) => l.fingerprint)).toEqual([a.fingerprint, b.fingerprint]);
    expect(() => checkRotatedSnapshot(followed as never, snapshot(c.fingerprint, 2))).not.toThrow();
    expect(() => checkRotatedSnapshot(followed as never, snapshot(c.fingerprint, 3))).toThrow(
      expect.objectContaining({ code: 'KEY_ROTATION_BROKEN', message: expect.stringContaining('counts 3') }),
    );
    expect(() =>
      checkRotatedSnapshot(followed as never, {
        ...snapshot(c.fingerprint, 2),
        registry: 'https://other.example',
      }),
    ).toThrow(expect.objectContaining({ code: 'KEY_ROTATION_BROKEN' }));
  });

  it('from the middle of the chain when it knows where it stands, or finds its place when it does not', async () => {
    const [, b, c] = signers as [Signer, Signer, Signer];
    expect(await followRotations({ load, held: await held(b), from: 1 })).toMatchObject({
      fingerprint: c.fingerprint,
      steps: [{ sequence: 2 }],
    });
    expect(await followRotations({ load, held: await held(b) })).toMatchObject({ steps: [{ sequence: 2 }] });
    // Known to be at 0 while holding the second key: the first step is not from it.
    await expect(followRotations({ load, held: await held(b), from: 0 })).rejects.toMatchObject({
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining('keys/rotation/1.json rotates from key'),
    });
  });

  it('has nothing to follow past the last rotation, or from a key the chain never held', async () => {
    const [, , c] = signers as [Signer, Signer, Signer];
    expect(await followRotations({ load, held: await held(c), from: 2 })).toBeUndefined();
    const stranger = await createSigner((await testKey('chain-stranger')).secretKey);
    expect(await followRotations({ load, held: await held(stranger) })).toBeUndefined();
  });

  it(`stops after ${MAX_ROTATIONS} rotations in one go`, async () => {
    // A registry that answers every sequence (never a 404) with a rotation not from the key held: read and
    // skipped, as a client that does not know its place skips them, but not forever.
    let asked = 0;
    const endless = async () => {
      asked += 1;
      return chain.get(2);
    };
    const stranger = await createSigner((await testKey('chain-x')).secretKey);
    await expect(followRotations({ load: endless, held: await held(stranger) })).rejects.toMatchObject({
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining(`more than ${MAX_ROTATIONS}`),
    });
    expect(asked).toBe(MAX_ROTATIONS);
  });

  it('refuses a rotation back to a key already left (a loop), in one run or across runs', async () => {
    const [a, b, c] = signers as [Signer, Signer, Signer];
    const now = new Date('2026-11-01T00:00:00Z');
    const back = (await signRotation({ registry: URL, sequence: 3, previous: c, next: a, now })).bytes;
    const looping = async (n: number) => (n === 3 ? back : chain.get(n));
    // In one run: a -> b -> c -> a.
    await expect(followRotations({ load: looping, held: await held(a), from: 0 })).rejects.toMatchObject({
      code: 'KEY_ROTATION_BROKEN',
      message: expect.stringContaining(`keys/rotation/3.json rotates to key ${a.fingerprint}`),
    });
    // Across runs: the client holds c, and its chain kept a and b.
    await expect(
      followRotations({
        load: looping,
        held: await held(c),
        from: 2,
        retired: [a.fingerprint, b.fingerprint],
      }),
    ).rejects.toMatchObject({ code: 'KEY_ROTATION_BROKEN' });
  });

  it('does not append a key already in the chain kept', () => {
    const link = (fingerprint: string) => ({ fingerprint, armoredKey: `key ${fingerprint}` });
    expect(extendChain([link('A'), link('B')], [link('B'), link('C')]).map((l) => l.fingerprint)).toEqual([
      'A',
      'B',
      'C',
    ]);
  });
});

describe('when a cache kept the 404 of a rotation asked for before it was published', () => {
  /** The snapshot as `readThroughRotations` reads it: signed by the last key, `c`, at two rotations. */
  const signedByLast = (chain?: { readonly fingerprint: string }) => {
    const last = (signers[2] as Signer).fingerprint;
    if (chain?.fingerprint !== last)
      throw new TrustError('SNAPSHOT_BAD_SIGNATURE', 'snapshot.json: not signed by the key held');
    return Promise.resolve({ snapshot: snapshot(last, 2) });
  };

  it.each([
    ['the first rotation', 1],
    ['a rotation past the first', 2],
  ])('follows the chain once more with each rotation read past every cache: %s', async (_, missing) => {
    const asked: string[] = [];
    const followed = await readThroughRotations({
      load: async (request) => {
        asked.push(`${request.path}${request.pastCaches ? ' past caches' : ''}`);
        const sequence = Number(/(\d+)\.json$/.exec(request.path)?.[1]);
        return sequence === missing && !request.pastCaches ? undefined : chain.get(sequence);
      },
      held: await held(signers[0] as Signer),
      from: 0,
      read: signedByLast,
    });

    expect(followed.chain?.fingerprint).toBe((signers[2] as Signer).fingerprint);
    expect(asked.filter((line) => line.endsWith('past caches'))).toEqual([
      'keys/rotation/1.json past caches',
      'keys/rotation/2.json past caches',
      'keys/rotation/3.json past caches',
    ]);
  });

  it('refuses as before when the rotation is not published past every cache either', async () => {
    const asked: boolean[] = [];
    const refused = readThroughRotations({
      load: async (request) => {
        asked.push(request.pastCaches === true);
        return undefined;
      },
      held: await held(signers[0] as Signer),
      from: 0,
      read: signedByLast,
    });

    await expect(refused).rejects.toMatchObject({ name: 'TrustError', code: 'SNAPSHOT_BAD_SIGNATURE' });
    expect(asked).toEqual([false, true]);
  });
});

describe('when a snapshot names the registry its client pinned', () => {
  const named = (registry: string): SnapshotDocument => ({ ...snapshot('AB'.repeat(20)), registry });
  const check = (pinned: string, registry: string) =>
    checkSnapshotRegistry(pinned, named(registry), 'snapshot.json', 'add it again');

  it('takes the same URL spelled another way: host case, default port, a trailing slash', () => {
    for (const spelled of [
      'https://Plugins.Registry.Example',
      'HTTPS://plugins.registry.example:443/',
      'https://plugins.registry.example/',
    ])
      expect(() => check(URL, spelled)).not.toThrow();
    expect(() => check('http://127.0.0.1:8080/', 'http://127.0.0.1:8080')).not.toThrow();
    expect(() => check('https://host.example/team/', 'https://HOST.example/team')).not.toThrow();
  });

  it('refuses another registry (SNAPSHOT_REGISTRY_CHANGED): another host, port, scheme or path', () => {
    for (const other of [
      'https://staging.registry.example',
      'https://plugins.registry.example:8443',
      'http://plugins.registry.example',
      'https://plugins.registry.example/staging',
    ]) {
      expect(() => check(URL, other), other).toThrow(TrustError);
      expect(() => check(URL, other), other).toThrow(
        expect.objectContaining({ code: 'SNAPSHOT_REGISTRY_CHANGED' }),
      );
    }
  });
});

describe('when a chain link kept without its retirement holds its key with secret key material', () => {
  it('learns the retirement of a link holding its public key, and not of one holding its secret key or secret subkey', async () => {
    const [a, b] = signers as [Signer, Signer, Signer];
    const secret = (await testKey('chain-a')).secretKey;
    const learnt = async (armoredKey: string) =>
      learnRetirements({
        load,
        chain: [{ fingerprint: a.fingerprint, armoredKey }],
        held: { fingerprint: b.fingerprint },
        rotations: 1,
        now: new Date('2026-11-02T00:00:00Z'),
      });
    expect((await learnt(a.publicKey))?.[0]).toMatchObject({ fingerprint: a.fingerprint, retiredBy: 1 });
    // The client keeps a key's public part alone: secret material in a link was written by another hand,
    // and the rotation is not taken by it (as one that does not verify: the link asked again later).
    for (const armoredKey of [secret, (await publicPrimaryWithSecretSubkeys(secret)).armored]) {
      const link = (await learnt(armoredKey))?.[0];
      expect(link?.retiredBy).toBeUndefined();
      expect(link?.askedAt).toBe('2026-11-02T00:00:00.000Z');
    }
  });
});
