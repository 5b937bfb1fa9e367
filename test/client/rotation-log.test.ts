/**
 * The log's key rotations held to the signed rotation documents the registry publishes, by `verify --url`
 * (client/log-consistency.ts `compareRotations`): real rotations (`rotateLocalRegistry`, as `plugindex
 * rotate-key` makes them) of a local registry served over HTTP. An honest registry passes, rotated twice or
 * after a theft; a log naming other keys than a rotation, a rotation no entry logs, and an entry whose
 * rotation is not served are each refused (LOG_DISAGREES), naming the sequence and both sides.
 */
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRegistry } from '../../cli/local/registry.ts';
import { rotateLocalRegistry } from '../../cli/local/rotate-key.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { LogDisagreementError } from '../../client/errors.ts';
import { compareRotations } from '../../client/log-consistency.ts';
import { type LogEntry, logSegmentKey, parseSegment } from '../../index-builder/log.ts';
import { MAX_ROTATIONS, rotationKey, signRotation } from '../../index-builder/rotation.ts';
import { createSigner, generateKeyPair, type Signer } from '../../index-builder/signing.ts';
import { CACHE_IMMUTABLE } from '../../index-builder/store.ts';
import { publishLogEntries } from '../support/actions.ts';
import { signHistory } from '../support/lifecycle.ts';
import { scratchFolder, servedLocalRegistry } from '../support/served-registry.ts';

const NAME = 'rotating-tool';
const REGISTRY = 'https://plugins.rotating.example';

const scratch = scratchFolder('plugindex-rotation-log-');

interface Served {
  readonly dir: string;
  /** Where it is served: a mirror of REGISTRY, as `verify --url REGISTRY --mirror URL` reads it. */
  readonly url: string;
  readonly firstKey: string;
}

let registries = 0;
/** A local registry naming itself REGISTRY, one version of one plugin published, served over HTTP. */
async function servedRegistry(): Promise<Served> {
  registries += 1;
  const dir = join(scratch.path, `registry${registries}`);
  const served = await servedLocalRegistry(scratch, dir, { name: 'Rotating', url: REGISTRY, plugin: NAME });
  return { dir, url: served.url, firstKey: served.key };
}

/** Rotates `registry` to a new key, as `plugindex rotate-key` does. */
async function rotate(registry: Served, options: { readonly compromised?: boolean } = {}): Promise<void> {
  const next = await generateKeyPair({ name: `rotation key ${registries}` });
  expect(await rotateLocalRegistry(registry.dir, next.secretKey, options)).toMatchObject({
    status: 'rotated',
  });
}

/** Verifies `registry` whole from `pinnedKey` (default: its current key, so no rotation is followed). */
async function verify(registry: Served, pinnedKey?: string) {
  const key = pinnedKey ?? (await readFile(join(registry.dir, 'public/keys/registry.asc'), 'utf8'));
  return verifyRegistry({ url: REGISTRY, mirror: registry.url, pinnedKey: key });
}

/** How verify --url refuses `registry`: the LogDisagreementError's disagreements. */
async function disagreements(registry: Served) {
  const error = await verify(registry).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(LogDisagreementError);
  return (error as LogDisagreementError).disagreements;
}

/**
 * The registry's key signs another log in place of its own: `edit` is given its entries and returns the
 * fields of those to write, chained again from the first (one segment holds all these logs).
 */
async function relog(
  registry: Served,
  edit: (entries: readonly LogEntry[]) => readonly Omit<LogEntry, 'seq' | 'prev'>[],
): Promise<void> {
  const { context } = await openRegistry(registry.dir);
  const segment = await context.site.get(logSegmentKey(0));
  if (!segment) throw new Error('no log');
  const entries = parseSegment(segment.body, 0).map((r) => r.entry);
  const head = await publishLogEntries(context.site, edit(entries));
  await signHistory(context, head);
}

/** An entry's fields as written, without its place in the chain. */
const fieldsOf = ({ seq: _seq, prev: _prev, ...fields }: LogEntry): Omit<LogEntry, 'seq' | 'prev'> => fields;

describe('when verify --url holds the log against the rotations an honest registry publishes', () => {
  it('passes a registry rotated twice, from the first key and from the current one', async () => {
    // Prepare
    const registry = await servedRegistry();
    await rotate(registry);
    await rotate(registry);

    // Act
    const followed = await verify(registry, registry.firstKey);
    const current = await verify(registry);

    // Assess
    expect(followed.rotations?.map((r) => r.sequence)).toEqual([1, 2]);
    expect(current).toMatchObject({ plugins: 1, manifests: 1 });
    expect(current.rotations).toBeUndefined();
  });

  it('passes a registry whose rotation was made because the old key was compromised', async () => {
    // Prepare
    const registry = await servedRegistry();
    await rotate(registry, { compromised: true });

    // Act
    const followed = await verify(registry, registry.firstKey);
    const current = await verify(registry);

    // Assess
    expect(followed.rotations).toEqual([expect.objectContaining({ sequence: 1, compromised: true })]);
    expect(current).toMatchObject({ plugins: 1 });
  });
});

describe('when the log and the rotations the registry publishes tell different histories', () => {
  it('refuses a rotate-key entry naming other keys than its rotation (LOG_ROTATION_DIFFERS), naming both', async () => {
    // Prepare: the log says rotation 1 went to another key than keys/rotation/1.json names.
    const registry = await servedRegistry();
    await rotate(registry);
    const other = (await generateKeyPair({ name: 'elsewhere' })).fingerprint;
    let published = '';
    await relog(registry, (entries) =>
      entries.map((entry) => {
        if (entry.type !== 'rotate-key') return fieldsOf(entry);
        published = entry.detail?.fingerprint ?? '';
        return fieldsOf({ ...entry, detail: { ...entry.detail, fingerprint: other } });
      }),
    );

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_DIFFERS' })]);
    expect(found[0]?.message).toContain(rotationKey(1));
    expect(found[0]?.message).toContain(other);
    expect(found[0]?.message).toContain(published);
  });

  it('refuses a rotation the log holds no entry for (LOG_ROTATION_UNLOGGED), naming its sequence', async () => {
    // Prepare
    const registry = await servedRegistry();
    await rotate(registry);
    await relog(registry, (entries) => entries.filter((e) => e.type !== 'rotate-key').map(fieldsOf));

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_UNLOGGED' })]);
    expect(found[0]?.message).toContain(rotationKey(1));
  });

  it('refuses a rotate-key entry whose rotation is not served (LOG_ROTATION_MISSING), naming both keys', async () => {
    // Prepare
    const registry = await servedRegistry();
    await rotate(registry);
    await rotate(registry);
    await unlink(join(registry.dir, 'public', rotationKey(1)));

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_MISSING' })]);
    const message = found[0]?.message ?? '';
    expect(message).toContain(rotationKey(1));
    expect(message).toMatch(/from key [0-9A-F]{40} to key [0-9A-F]{40}/);
  });

  it('refuses a rotate-key entry whose compromise mark its rotation does not carry (LOG_ROTATION_DIFFERS)', async () => {
    // Prepare
    const registry = await servedRegistry();
    await rotate(registry);
    await relog(registry, (entries) =>
      entries.map((entry) =>
        fieldsOf(
          entry.type === 'rotate-key'
            ? { ...entry, detail: { ...entry.detail, compromised: 'true' } }
            : entry,
        ),
      ),
    );

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_DIFFERS' })]);
    expect(found[0]?.message).toContain('compromised');
  });
});

/** A new key, and a signer of it. */
async function newKey(name: string): Promise<{ readonly secretKey: string; readonly signer: Signer }> {
  const pair = await generateKeyPair({ name });
  return { secretKey: pair.secretKey, signer: await createSigner(pair.secretKey) };
}

/**
 * Publishes, in place of rotation `sequence`, one from `previous` to `next` signed by both, and logs it in
 * place of the rotate-key entry of that sequence, as the registry's key would (`relog`): the log and the
 * documents then agree, entry for entry.
 */
async function forgeRotation(
  registry: Served,
  sequence: number,
  previous: Signer,
  next: Signer,
  /** What the rotation itself says: another registry, or another number than the one it is served as. */
  says: { readonly registry?: string; readonly sequence?: number; readonly created?: Date } = {},
): Promise<void> {
  const { context } = await openRegistry(registry.dir);
  const forged = await signRotation({
    registry: says.registry ?? REGISTRY,
    sequence: says.sequence ?? sequence,
    previous,
    next,
    now: says.created ?? new Date(),
  });
  await context.site.put(rotationKey(sequence), forged.bytes, {
    contentType: 'application/json',
    cacheControl: CACHE_IMMUTABLE,
  });
  await relog(registry, (entries) =>
    entries.map((entry) =>
      fieldsOf(
        entry.type === 'rotate-key' && entry.detail?.sequence === String(sequence)
          ? {
              ...entry,
              signer: previous.fingerprint,
              digest: forged.digest,
              detail: { ...entry.detail, fingerprint: next.fingerprint },
            }
          : entry,
      ),
    ),
  );
}

describe('when the log and the rotations agree but the rotations do not chain', () => {
  it('refuses a last rotation to another key than the one signing the snapshot (LOG_ROTATION_BROKEN)', async () => {
    // Prepare: rotated from A to B, then rotation 1 replaced, and logged, as A to X: a client holding A
    // follows it to X, which signs nothing; the snapshot is B's.
    const registry = await servedRegistry();
    const first = (await openRegistry(registry.dir)).context.signer;
    await rotate(registry);
    const elsewhere = await newKey('elsewhere');
    await forgeRotation(registry, 1, first, elsewhere.signer);

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_BROKEN' })]);
    expect(found[0]?.message).toContain(rotationKey(1));
    expect(found[0]?.message).toContain(elsewhere.signer.fingerprint);
  });

  it('refuses a rotation from another key than the one before it rotated to (LOG_ROTATION_BROKEN)', async () => {
    // Prepare: A to B to C, then rotation 2 replaced, and logged, as D to C: the key went from B to C
    // without B's signature, which a client holding B refuses (KEY_ROTATION_BROKEN).
    const registry = await servedRegistry();
    await rotate(registry);
    const third = await newKey('third');
    expect(await rotateLocalRegistry(registry.dir, third.secretKey)).toMatchObject({ status: 'rotated' });
    const stranger = await newKey('stranger');
    await forgeRotation(registry, 2, stranger.signer, third.signer);

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_BROKEN' })]);
    expect(found[0]?.message).toContain(rotationKey(2));
    expect(found[0]?.message).toContain(stranger.signer.fingerprint);
  });
});

describe('when a snapshot counts far more rotations than its log records', () => {
  it('says so in one line, asking for none of them, where it asked for each (a signed count of 10^9 held verify --url for good)', async () => {
    // Prepare: a log of no rotation, a snapshot counting 100,000, and a loader counting what it is asked.
    let asked = 0;
    const load = async () => {
      asked += 1;
      return undefined;
    };

    // Act
    const found = await compareRotations(
      [],
      { counted: 100_000, registry: REGISTRY, fingerprint: 'F'.repeat(40) },
      load,
    );

    // Assess
    expect(asked).toBe(0);
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_UNLOGGED' })]);
    expect(found[0]?.message).toContain('100000');
    expect(found[0]?.message).toContain(`more than ${MAX_ROTATIONS}`);
  });

  it('still names each rotation unlogged, and whether it is served, up to that many', async () => {
    const served = new Set([2]);
    const found = await compareRotations(
      [],
      { counted: 3, registry: REGISTRY, fingerprint: 'F'.repeat(40) },
      async (sequence) => (served.has(sequence) ? new Uint8Array() : undefined),
    );
    expect(found.map((d) => d.code)).toEqual(Array(3).fill('LOG_ROTATION_UNLOGGED'));
    expect(found[1]?.message).toContain('is served, but');
    expect(found[0]?.message).toContain('is not served, and');
  });
});

describe('when the log and a rotation agree on the keys but not on the rest', () => {
  /** Rotated once from its first key to a key of the test's own, whose signer is returned. */
  async function rotatedOnce(): Promise<{ registry: Served; first: Signer; next: Signer }> {
    const registry = await servedRegistry();
    const first = (await openRegistry(registry.dir)).context.signer;
    const next = await newKey('next');
    expect(await rotateLocalRegistry(registry.dir, next.secretKey)).toMatchObject({ status: 'rotated' });
    return { registry, first, next: next.signer };
  }

  it('refuses a rotation of another registry, signed by the same keys (LOG_ROTATION_DIFFERS)', async () => {
    const { registry, first, next } = await rotatedOnce();
    await forgeRotation(registry, 1, first, next, { registry: 'https://staging.rotating.example' });
    const found = await disagreements(registry);
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_DIFFERS' })]);
    expect(found[0]?.message).toContain('is a rotation of https://staging.rotating.example');
  });

  it('refuses a rotation served as 1 that says it is another (LOG_ROTATION_DIFFERS)', async () => {
    const { registry, first, next } = await rotatedOnce();
    await forgeRotation(registry, 1, first, next, { sequence: 2 });
    const found = await disagreements(registry);
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_DIFFERS' })]);
    expect(found[0]?.message).toContain('it says it is rotation 2');
  });

  it("refuses an entry whose digest is not its rotation's (LOG_ROTATION_DIFFERS)", async () => {
    const registry = await servedRegistry();
    await rotate(registry);
    await relog(registry, (entries) =>
      entries.map((entry) =>
        fieldsOf(entry.type === 'rotate-key' ? { ...entry, digest: '0'.repeat(64) } : entry),
      ),
    );
    const found = await disagreements(registry);
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_DIFFERS' })]);
    expect(found[0]?.message).toContain(`not ${'0'.repeat(64)}`);
  });

  it('refuses a rotation logged twice (LOG_ROTATION_DIFFERS naming the first entry)', async () => {
    const registry = await servedRegistry();
    await rotate(registry);
    await relog(registry, (entries) =>
      entries.flatMap((entry) => (entry.type === 'rotate-key' ? [entry, entry] : [entry]).map(fieldsOf)),
    );
    const found = await disagreements(registry);
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_DIFFERS' })]);
    expect(found[0]?.message).toMatch(/logs rotation 1, which entry \d+ logged already/);
  });
});

describe('when a registry rotated its key before it kept a log', () => {
  it("takes a rotation dated before the log's first entry that no entry records, as any statement from before the log", async () => {
    // Prepare: rotation 1 made in 2000, long before the log's first entry, and no entry for it.
    const registry = await servedRegistry();
    const first = (await openRegistry(registry.dir)).context.signer;
    const next = await newKey('next');
    expect(await rotateLocalRegistry(registry.dir, next.secretKey)).toMatchObject({ status: 'rotated' });
    await forgeRotation(registry, 1, first, next.signer, { created: new Date('2000-01-01T00:00:00Z') });
    await relog(registry, (entries) => entries.filter((e) => e.type !== 'rotate-key').map(fieldsOf));

    // Act
    const report = await verify(registry);
    const followed = await verify(registry, registry.firstKey);

    // Assess
    expect(report).toMatchObject({ plugins: 1 });
    expect(followed.rotations?.map((r) => r.sequence)).toEqual([1]);
  });

  it('still holds such a rotation to the chain (LOG_ROTATION_BROKEN): dated before the log, to a key that signs nothing', async () => {
    // Prepare
    const registry = await servedRegistry();
    const first = (await openRegistry(registry.dir)).context.signer;
    await rotate(registry);
    const elsewhere = await newKey('elsewhere');
    await forgeRotation(registry, 1, first, elsewhere.signer, { created: new Date('2000-01-01T00:00:00Z') });
    await relog(registry, (entries) => entries.filter((e) => e.type !== 'rotate-key').map(fieldsOf));

    // Act
    const found = await disagreements(registry);

    // Assess
    expect(found).toEqual([expect.objectContaining({ code: 'LOG_ROTATION_BROKEN' })]);
    expect(found[0]?.message).toContain(elsewhere.signer.fingerprint);
  });
});
