/**
 * A void (index-builder/log-void.ts, log.ts `checkVoids`): the registry's signed word that an earlier
 * entry never took effect. Real entries, rendered and parsed as a segment holds them, each void signed with
 * a real OpenPGP key by openpgp.js, and its statement checked by GnuPG as a client auditing by hand would;
 * then every way a void may be wrong refused by its own code.
 */
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrustError } from '../../index-builder/errors.ts';
import {
  checkVoids,
  EMPTY_LOG,
  type LogEntry,
  nextEntry,
  parseSegment,
  type ReadEntry,
  renderSegment,
  voidStatement,
} from '../../index-builder/log.ts';
import { signVoid, verifyVoidSignatures } from '../../index-builder/log-void.ts';
import type { LogHead } from '../../index-builder/model.ts';
import { createSigner, type Signer } from '../../index-builder/signing.ts';
import { testKey } from '../support/fixtures.ts';
import { type GpgKeyring, gpgKeyring } from '../support/gpg.ts';
import { publicPrimaryWithSecretSubkeys } from '../support/openpgp-packets.ts';
import { rejectionOf } from '../support/problems.ts';

const TIME = '2026-11-02T00:00:00.000Z';
const REASON = 'the store refused its document for good (STORE_REFUSED)';
/** The registry the log is of, as its snapshots name it; every void here is of it unless told. */
const REGISTRY = 'https://plugins.registry.example';
let registry: Signer;
let heir: Signer;
let stranger: Signer;
let gpg: GpgKeyring;

beforeAll(async () => {
  const signerOf = async (label: string) => createSigner((await testKey(label)).secretKey);
  [registry, heir, stranger] = await Promise.all([
    signerOf('registry'),
    signerOf('heir'),
    signerOf('publisher'),
  ]);
  gpg = gpgKeyring(registry.publicKey);
});

afterAll(() => gpg.close());

type Fields = Omit<LogEntry, 'seq' | 'prev'>;

const publish = (plugin: string, version: string): Fields => ({
  time: TIME,
  type: 'publish',
  plugin,
  version,
  signer: stranger.fingerprint,
  digest: 'b'.repeat(64),
});

/** The registry key's rotation to `heir`, as the log records it. */
const rotationToHeir = (): Fields => ({
  time: TIME,
  type: 'rotate-key',
  signer: registry.fingerprint,
  digest: 'c'.repeat(64),
  detail: { fingerprint: heir.fingerprint, sequence: '1' },
});

/**
 * A log of `fields` (each given, or made from the log so far: a void names an earlier entry's hash), read
 * back as a client reads it: rendered into a segment and parsed.
 */
async function logOf(...fields: (Fields | ((log: readonly ReadEntry[]) => Promise<Fields>))[]) {
  let head: LogHead = EMPTY_LOG;
  const lines: string[] = [];
  for (const f of fields) {
    const entries = lines.length === 0 ? [] : parseSegment(renderSegment(lines), 0);
    const next = nextEntry(head, typeof f === 'function' ? await f(entries) : f);
    lines.push(next.line);
    head = next.head;
  }
  return parseSegment(renderSegment(lines), 0);
}

/** A void of entry `seq`, signed by `by` (the registry unless told), of registry `of` (REGISTRY unless told). */
const voidOf =
  (seq: number, by?: Signer, reason = REASON, of = REGISTRY) =>
  (log: readonly ReadEntry[]): Promise<Fields> =>
    signVoid({ voided: log[seq] as ReadEntry, reason, time: TIME, signer: by ?? registry, registry: of });

/** How a reader refuses `entries`: what `checkVoids` or `verifyVoidSignatures` throws, a TrustError. */
const refusal = (
  entries: readonly ReadEntry[],
  registryKey = registry.fingerprint,
  of = REGISTRY,
): Promise<TrustError> =>
  rejectionOf(
    (async () => {
      checkVoids(entries, { registryKey, registry: of });
      await verifyVoidSignatures(entries);
    })(),
    TrustError,
  );

describe('when a log holds a void the registry signed', () => {
  it('replays it: the publish it names is voided, with the void and its reason', async () => {
    const log = await logOf(publish('demo', '1.0.0'), publish('other', '1.0.0'), voidOf(0));
    const voided = checkVoids(log, { registryKey: registry.fingerprint, registry: REGISTRY });
    expect([...voided.keys()]).toEqual([0]);
    expect(voided.get(0)).toMatchObject({
      seq: 2,
      type: 'void',
      plugin: 'demo',
      version: '1.0.0',
      signer: registry.fingerprint,
      detail: { entry: '0', hash: log[0]?.hash, reason: REASON },
    });
    await expect(verifyVoidSignatures(log)).resolves.toBeUndefined();
  });

  it('replays it in a part of the log read from an entry on, as the pipeline reads its log', async () => {
    // Entries 1 on (as from a segment's start): a void of entry 0, which they do not hold, held to all but what
    // it names; a void of entry 2, which they hold, held to it (its hash) as in the whole log.
    const log = await logOf(
      publish('demo', '1.0.0'),
      publish('other', '1.0.0'),
      publish('demo', '2.0.0'),
      voidOf(0),
      voidOf(2),
    );
    const part = log.slice(1);
    const voided = checkVoids(part, { registryKey: registry.fingerprint, registry: REGISTRY });
    expect([...voided.keys()]).toEqual([0, 2]);
    const altered = await logOf(
      publish('demo', '1.0.0'),
      publish('other', '1.0.0'),
      voidOf(0),
      async (entries) => {
        const made = await voidOf(1)(entries);
        return { ...made, detail: { ...made.detail, hash: 'd'.repeat(64) } };
      },
    );
    expect(await refusal(altered.slice(1))).toMatchObject({ code: 'LOG_VOID_ENTRY_MISSING' });
    // Nor is a void by another key let through for naming an entry not read.
    const other = await logOf(publish('demo', '1.0.0'), publish('other', '1.0.0'), voidOf(0, stranger));
    expect(await refusal(other.slice(1))).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
  });

  it('signs a statement GnuPG verifies by the registry key, rebuilt from the entry alone', async () => {
    const log = await logOf(publish('demo', '1.0.0'), voidOf(0));
    const entry = log[1]?.entry as LogEntry;
    const statement = new TextEncoder().encode(voidStatement(entry));
    expect(gpg.verify(statement, entry.signature as string)).toContain(`VALIDSIG ${registry.fingerprint}`);
    // Bound to the registry it is of, as a key rotation is: one key may sign for more than one registry.
    expect(JSON.parse(voidStatement(entry))).toMatchObject({
      schema: 'plugindex/log-void/v1',
      registry: REGISTRY,
    });
    expect(entry.detail?.registry).toBe(REGISTRY);
  });

  it('takes a void signed by the key the registry had then, before a rotation logged after it', async () => {
    const rotation = rotationToHeir();
    const log = await logOf(
      publish('demo', '1.0.0'),
      voidOf(0),
      rotation,
      publish('demo', '1.0.1'),
      voidOf(3, heir),
    );
    // The snapshot is signed by the heir now; the first void by the key it rotated from.
    expect([...checkVoids(log, { registryKey: heir.fingerprint, registry: REGISTRY }).keys()]).toEqual([
      0, 3,
    ]);
    await expect(verifyVoidSignatures(log)).resolves.toBeUndefined();
  });

  it('holds a void to the key the first rotation after it left, not a later one', async () => {
    const rotation = (from: Signer, to: Signer, sequence: string): Fields => ({
      time: TIME,
      type: 'rotate-key',
      signer: from.fingerprint,
      digest: 'c'.repeat(64),
      detail: { fingerprint: to.fingerprint, sequence },
    });
    // registry, then heir, then stranger: the void, before both, is the registry's own.
    const twice = (by: Signer) =>
      logOf(
        publish('demo', '1.0.0'),
        voidOf(0, by),
        rotation(registry, heir, '1'),
        rotation(heir, stranger, '2'),
      );
    expect([
      ...checkVoids(await twice(registry), { registryKey: stranger.fingerprint, registry: REGISTRY }).keys(),
    ]).toEqual([0]);
    for (const by of [heir, stranger])
      expect(await refusal(await twice(by), stranger.fingerprint)).toMatchObject({
        code: 'LOG_VOID_UNSIGNED',
        message: expect.stringContaining(`not by ${registry.fingerprint}, the registry's key at that place`),
      });
  });
});

describe('when the key that signed a void has expired since', () => {
  // A registry key that expires an hour after it was made (GnuPG's own keys expire by default), its void
  // signed eleven minutes in: read now, long after the expiry. signing.ts judges a key as it was when it
  // signed, so an old void never turns unverifiable (every reader refusing the registry) as keys age.
  const CREATED = new Date('2026-01-01T00:00:00Z');
  async function expiringVoid() {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name: 'expiring registry' }],
      date: CREATED,
      keyExpirationTime: 3600,
      format: 'armored',
    });
    const time = new Date(CREATED.getTime() + 10 * 60_000);
    const signer = await createSigner(privateKey, undefined, {
      now: () => new Date(time.getTime() + 60_000),
    });
    const at = (entry: Fields): Fields => ({ ...entry, time: time.toISOString() });
    const log = await logOf(at(publish('demo', '1.0.0')), (read) =>
      signVoid({
        voided: read[0] as ReadEntry,
        reason: REASON,
        time: time.toISOString(),
        signer,
        registry: REGISTRY,
      }),
    );
    return { log, signer };
  }

  it('verifies it by the key as it was when it signed: the void stands', async () => {
    const { log, signer } = await expiringVoid();
    expect([...checkVoids(log, { registryKey: signer.fingerprint, registry: REGISTRY }).keys()]).toEqual([0]);
    await expect(verifyVoidSignatures(log)).resolves.toBeUndefined();
  });
});

describe('when a void is not one the registry could have made', () => {
  it('refuses a void of an entry the log does not hold (LOG_VOID_ENTRY_MISSING)', async () => {
    const log = await logOf(publish('demo', '1.0.0'), publish('other', '1.0.0'), voidOf(0));
    // The same void, claiming entry 7 of a log of 3 (its statement signed so).
    const beyond = await logOf(publish('demo', '1.0.0'), publish('other', '1.0.0'), async () =>
      signVoid({
        voided: { ...(log[0] as ReadEntry), entry: { ...(log[0]?.entry as LogEntry), seq: 7 } },
        reason: REASON,
        time: TIME,
        signer: registry,
        registry: REGISTRY,
      }),
    );
    expect(await refusal(beyond)).toMatchObject({ name: 'TrustError', code: 'LOG_VOID_ENTRY_MISSING' });
    // One naming entry 0 by another hash: no entry of this log.
    const other = await logOf(publish('demo', '1.0.0'), publish('other', '1.0.0'), async () =>
      signVoid({
        voided: { ...(log[0] as ReadEntry), hash: 'e'.repeat(64) },
        reason: REASON,
        time: TIME,
        signer: registry,
        registry: REGISTRY,
      }),
    );
    const error = await refusal(other);
    expect(error.code).toBe('LOG_VOID_ENTRY_MISSING');
    expect(error.message).toContain('log entry 2 (void) voids entry 0');
  });

  it('refuses a void of itself or of a later entry (LOG_VOID_NOT_EARLIER)', async () => {
    const first = await logOf(publish('demo', '1.0.0'), publish('demo', '1.0.1'));
    // Entry 0 voiding entry 1, the one after it (its hash known: the same entries, made again).
    const later = await logOf(
      async () =>
        signVoid({
          voided: first[1] as ReadEntry,
          reason: REASON,
          time: TIME,
          signer: registry,
          registry: REGISTRY,
        }),
      publish('demo', '1.0.1'),
    );
    expect(await refusal(later)).toMatchObject({ code: 'LOG_VOID_NOT_EARLIER' });
  });

  it('refuses a second void of the same entry (LOG_VOID_REPEATED)', async () => {
    const log = await logOf(publish('demo', '1.0.0'), voidOf(0), voidOf(0, registry, 'once more'));
    const error = await refusal(log);
    expect(error).toMatchObject({ code: 'LOG_VOID_REPEATED' });
    expect(error.message).toContain('which entry 1 voided already');
  });

  it('refuses a void of a void (LOG_VOID_OF_VOID), and of a key rotation (LOG_VOID_OF_ROTATION)', async () => {
    const log = await logOf(publish('demo', '1.0.0'), voidOf(0), voidOf(1));
    expect(await refusal(log)).toMatchObject({ code: 'LOG_VOID_OF_VOID' });
    const rotation = rotationToHeir();
    const rotated = await logOf(rotation, voidOf(0, heir));
    expect(await refusal(rotated, heir.fingerprint)).toMatchObject({ code: 'LOG_VOID_OF_ROTATION' });
  });

  it('refuses a void another key signed, or the registry key at another place in the log (LOG_VOID_UNSIGNED)', async () => {
    // A publisher's key, its own signature good: not the registry's.
    const byPublisher = await logOf(publish('demo', '1.0.0'), voidOf(0, stranger));
    expect(await refusal(byPublisher)).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
    // The heir's key voiding an entry before the rotation to it: the key then was the one it rotated from.
    const rotation = rotationToHeir();
    const early = await logOf(publish('demo', '1.0.0'), voidOf(0, heir), rotation);
    expect(await refusal(early, heir.fingerprint)).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
  });

  it("refuses a void whose signature is not the registry's over its statement (LOG_VOID_UNSIGNED)", async () => {
    const [entry, signed] = await logOf(publish('demo', '1.0.0'), voidOf(0));
    const made = signed?.entry as LogEntry;
    // Its reason changed after it was signed (digest and signature as they were).
    const reworded = await logOf(entry?.entry as LogEntry, {
      ...made,
      detail: { ...made.detail, reason: 'other words' },
    });
    expect(await refusal(reworded)).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
    // Or the registry it is of, to pass it off as a void of another registry the same key signs for.
    const moved = await logOf(entry?.entry as LogEntry, {
      ...made,
      detail: { ...made.detail, registry: 'https://staging.registry.example' },
    });
    const movedError = await refusal(moved, registry.fingerprint, 'https://staging.registry.example');
    expect(movedError).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
    // The registry's fingerprint and key, a publisher's signature.
    const statement = new TextEncoder().encode(voidStatement(made));
    const forged = await logOf(entry?.entry as LogEntry, {
      ...made,
      signature: await stranger.sign(statement),
    });
    const error = await refusal(forged);
    expect(error).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
    expect(error.message).toContain(`is not signed by key ${registry.fingerprint}`);
    // Another key carried than the one it names.
    const swapped = await logOf(entry?.entry as LogEntry, { ...made, key: stranger.publicKey });
    expect(await refusal(swapped)).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
  });

  it("refuses a void carrying another key than the registry's it names, that key's signature good (LOG_VOID_UNSIGNED)", async () => {
    // The forgery the fingerprint check alone stops: signer the registry's, key and signature a stranger's.
    const [entry, signed] = await logOf(publish('demo', '1.0.0'), voidOf(0));
    const made = signed?.entry as LogEntry;
    const statement = new TextEncoder().encode(voidStatement(made));
    const forged = await logOf(entry?.entry as LogEntry, {
      ...made,
      key: stranger.publicKey,
      signature: await stranger.sign(statement),
    });
    const error = await refusal(forged);
    expect(error).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
    expect(error.message).toContain(`carries key ${stranger.fingerprint}, not ${registry.fingerprint}`);
  });

  it('refuses a void carrying the registry key with secret key material, its signature good (LOG_VOID_UNSIGNED)', async () => {
    // readPublicKey reads such a key (secret: true) where it threw before: published, anyone holding the
    // log can sign with its secret part, so it is no key a void is taken by.
    const secret = (await testKey('registry')).secretKey;
    const [entry, signed] = await logOf(publish('demo', '1.0.0'), voidOf(0));
    const made = signed?.entry as LogEntry;
    for (const key of [secret, (await publicPrimaryWithSecretSubkeys(secret)).armored]) {
      const forged = await logOf(entry?.entry as LogEntry, { ...made, key });
      const error = await refusal(forged);
      expect(error).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
      expect(error.message).toContain(`carries key ${registry.fingerprint} with its secret key material`);
    }
  });

  it('refuses a void whose digest is not its statement, its signature good (LOG_VOID_UNSIGNED)', async () => {
    const [entry, signed] = await logOf(publish('demo', '1.0.0'), voidOf(0));
    const redigested = await logOf(entry?.entry as LogEntry, {
      ...(signed?.entry as LogEntry),
      digest: 'f'.repeat(64),
    });
    const error = await refusal(redigested);
    expect(error).toMatchObject({ code: 'LOG_VOID_UNSIGNED' });
    expect(error.message).toContain('has a digest that is not its statement');
  });

  it('refuses a void naming another plugin or version than the entry it voids (LOG_VOID_ENTRY_MISSING)', async () => {
    // Signed so: audit NAME would list it under a plugin whose entry it does not void.
    const named =
      (plugin: string | undefined, version: string | undefined) => (log: readonly ReadEntry[]) => {
        const { plugin: _p, version: _v, ...rest } = (log[0] as ReadEntry).entry;
        const entry = {
          ...rest,
          ...(plugin !== undefined ? { plugin } : {}),
          ...(version !== undefined ? { version } : {}),
        };
        return signVoid({
          voided: { ...(log[0] as ReadEntry), entry },
          reason: REASON,
          time: TIME,
          signer: registry,
          registry: REGISTRY,
        });
      };
    for (const [plugin, version] of [
      ['other', '1.0.0'],
      ['demo', '1.0.1'],
      ['demo', undefined],
      [undefined, undefined],
    ] as const) {
      const log = await logOf(publish('demo', '1.0.0'), named(plugin, version));
      const error = await refusal(log);
      expect(error).toMatchObject({ code: 'LOG_VOID_ENTRY_MISSING' });
      expect(error.message).toContain('but entry 0 names demo 1.0.0');
    }
  });
});

describe('when a void is of another registry the same key signs for', () => {
  it('refuses it, naming both registries (LOG_VOID_OTHER_REGISTRY), and takes one of this registry however its URL is spelled', async () => {
    // A staging registry copied from production keeps its key and its log's first entries: its void of one
    // of them, replayed in production's log, would void an entry production never voided.
    const staging = 'https://staging.registry.example';
    const log = await logOf(publish('demo', '1.0.0'), voidOf(0, registry, REASON, staging));
    const error = await refusal(log);
    expect(error).toMatchObject({ name: 'TrustError', code: 'LOG_VOID_OTHER_REGISTRY' });
    expect(error.message).toContain(`is a void of registry "${staging}", not of "${REGISTRY}"`);
    // Read from staging, the same void stands.
    expect([...checkVoids(log, { registryKey: registry.fingerprint, registry: staging }).keys()]).toEqual([
      0,
    ]);
    // This registry's URL written another way (host in capitals, the default port, a trailing slash) is it.
    const spelled = await logOf(
      publish('demo', '1.0.0'),
      voidOf(0, registry, REASON, 'https://Plugins.Registry.Example:443/'),
    );
    expect([
      ...checkVoids(spelled, { registryKey: registry.fingerprint, registry: REGISTRY }).keys(),
    ]).toEqual([0]);
    await expect(verifyVoidSignatures(spelled)).resolves.toBeUndefined();
  });
});

describe('when a segment holds a void not of its form', () => {
  const lineOf = (entry: Record<string, unknown>) =>
    new TextEncoder().encode(`${JSON.stringify({ seq: 0, time: TIME, ...entry, prev: '0'.repeat(64) })}\n`);

  const voidLine = (detail: Record<string, string>) =>
    lineOf({
      type: 'void',
      signer: 'A'.repeat(40),
      digest: 'b'.repeat(64),
      detail: { hash: 'c'.repeat(64), reason: 'x', registry: REGISTRY, ...detail },
      key: 'key',
      signature: 'sig',
    });

  it('refuses a seq of the entry voided spelled other than as a count: a leading zero, past 2**53 (LOG_MALFORMED)', () => {
    expect(parseSegment(voidLine({ entry: '0' }), 0)).toHaveLength(1);
    for (const entry of ['01', '00', '9999999999999999', '-1', '1e3', ' 1', '0x1'])
      expect(() => parseSegment(voidLine({ entry }), 0), entry).toThrow(
        expect.objectContaining({
          name: 'TrustError',
          code: 'LOG_MALFORMED',
          message: expect.stringContaining("#/detail/entry: expected the voided entry's seq (a count)"),
        }),
      );
  });

  it('refuses a void carrying a field its signed statement leaves out: created, another detail, another field (LOG_MALFORMED)', () => {
    // Each would be a second entry under the one statement and signature, its words vouched for by no void.
    const detail = { entry: '0', hash: 'c'.repeat(64), reason: 'x', registry: REGISTRY };
    const cases: [Record<string, unknown>, string][] = [
      [{ created: TIME }, '#/created: expected no created (a void is signed without one)'],
      [{ detail: { ...detail, effect: 'none' } }, '#/detail/effect: not'],
      [{ detail: { ...detail, note: 'y' } }, '#/detail/note: not'],
      [{ note: 'y' }, '#/note: not a field of a void'],
    ];
    for (const [extra, problem] of cases) {
      const line = lineOf({
        type: 'void',
        signer: 'A'.repeat(40),
        digest: 'b'.repeat(64),
        detail,
        key: 'key',
        signature: 'sig',
        ...extra,
      });
      expect(() => parseSegment(line, 0), problem).toThrow(
        expect.objectContaining({ code: 'LOG_MALFORMED', message: expect.stringContaining(problem) }),
      );
    }
  });

  it('refuses a void lacking what it voids, or its signature, and a publish carrying one (LOG_MALFORMED)', () => {
    const bare = lineOf({
      type: 'void',
      signer: 'A'.repeat(40),
      digest: 'b'.repeat(64),
      detail: { reason: 'x' },
    });
    expect(() => parseSegment(bare, 0)).toThrow(
      expect.objectContaining({
        code: 'LOG_MALFORMED',
        message: expect.stringMatching(
          /#\/key: missing.*#\/signature: missing.*#\/detail\/entry: missing.*#\/detail\/hash: missing.*#\/detail\/registry: missing/,
        ),
      }),
    );
    const signedPublish = lineOf({
      type: 'publish',
      plugin: 'demo',
      version: '1.0.0',
      signer: 'A'.repeat(40),
      digest: 'b'.repeat(64),
      signature: 'sig',
    });
    expect(() => parseSegment(signedPublish, 0)).toThrow(
      expect.objectContaining({
        code: 'LOG_MALFORMED',
        message: expect.stringContaining('#/signature: expected no signature'),
      }),
    );
  });
});
