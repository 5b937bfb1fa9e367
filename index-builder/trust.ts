/**
 * Publisher trust: who signed a submission, and may that key publish this name. The registry key is never a
 * publisher key, whatever the bundle or the config says.
 */

import { type Key, readKeys } from 'openpgp';
import picomatch from 'picomatch';
import { ACTION_CLOCK_SKEW_MS } from './actions.ts';
import { isSecretKeyText, SECRET_KEY_ARMOR } from './armor.ts';
import type { PublishPolicy, RegistryConfig, TrustedPublisher } from './config.ts';
import { sha256Hex } from './digest.ts';
import { ConfigError, type Problem, type ProblemCode, problem } from './errors.ts';
import {
  keyArithmeticProblem,
  keyComplexityProblem,
  keyIdOfFingerprint as keyIdOf,
  keyUsableAt,
  type PublicKeyInfo,
  readPublicKey,
  signatureKeyIds,
  signingKeyExpiry,
  untrustedKeyProblem,
  verifyDetachedSignature,
  weakKeyProblem,
} from './signing.ts';

/**
 * The configured publisher and operator keys of a batch. The operators' are read at once (a few); the
 * publishers' (thousands, on a large registry) only when a signature needs one (`configuredCandidates`),
 * so a cold process judging one upload reads one key, not every configured one (about 1 ms each).
 */
export interface TrustedKeys {
  /** The config's publishers: each entry's fingerprint (the key's own, `checkConfiguredKeys`) and key. */
  readonly publishers: readonly Pick<TrustedPublisher, 'fingerprint' | 'key'>[];
  /** The operator's keys (config `operators`), the registry's own key never among them. */
  readonly operators: readonly PublicKeyInfo[];
  /** Every fingerprint (primary and subkeys) of the registry's own key. */
  readonly registryFingerprints: readonly string[];
  /** Every key text of the config, publishers' and operators' (`readConfiguredKeys`' `config`). */
  readonly texts?: readonly string[];
  /**
   * The (sub)key IDs the checked list of this config's registry gave each publisher entry, by position
   * (`listedKeyIds`: what `checkConfiguredKeys` was given for this config), undefined where it gave none.
   */
  readonly listedKeyIds?: readonly (readonly string[] | undefined)[];
}

/** Every key text of a config: those its reads keep once past the bound. */
const configTexts = (config: Pick<RegistryConfig, 'publishers' | 'operators'>): string[] => [
  ...config.publishers.map((p) => p.key),
  ...(config.operators ?? []).map((o) => o.key),
];

/**
 * The configured keys read so far, by their armored text: the check of a config when it is loaded
 * (`checkConfiguredKeys`) and each batch's signatures read the same keys, and a running server or
 * function reads them for every batch; each is parsed once a process. A failed read is not kept. Bounded:
 * once it holds more than MAX_CONFIGURED_KEYS beyond the config being read, only that config's keys are kept
 * (a config edited over a long run changes only a few keys at a time). Emptied whole when full, part way
 * through a config of more keys than the bound, it parsed every key of such a config again at each read.
 */
const configuredKeys = new Map<string, Promise<PublicKeyInfo>>();
const MAX_CONFIGURED_KEYS = 4096;

const upper = (s: string): string => s.toUpperCase();

/**
 * Each of these configured keys (`armored`), read or as read before; `config`, every key text of the config
 * they are from (publishers' and operators'), kept when the bound is passed though only some are read now.
 */
function readConfiguredKeys(
  armored: readonly string[],
  config: readonly string[] = armored,
): Promise<PublicKeyInfo>[] {
  const reads = armored.map((text) => {
    let read = configuredKeys.get(text);
    if (!read) {
      read = readPublicKey(text);
      configuredKeys.set(text, read);
      const made = read;
      // Only this read's own entry: the text may have been read again since, and that read stands.
      made.catch(() => {
        if (configuredKeys.get(text) === made) configuredKeys.delete(text);
      });
    }
    return read;
  });
  if (configuredKeys.size > MAX_CONFIGURED_KEYS + config.length) {
    const wanted = new Set(config);
    for (const text of configuredKeys.keys()) if (!wanted.has(text)) configuredKeys.delete(text);
  }
  return reads;
}

/**
 * The trusted keys of a batch under `config`, which has passed `checkConfiguredKeys` (every caller's load
 * of a config does it): its operators' keys read, its publishers' left to the signatures that need them.
 */
export async function loadTrustedKeys(
  config: RegistryConfig,
  registryFingerprints: readonly string[],
): Promise<TrustedKeys> {
  // `operators add` refuses the registry key; a config edited by hand gets no further: it is dropped here,
  // so its signatures meet PUBLISHER_IS_REGISTRY_KEY like any other.
  const texts = configTexts(config);
  const operators = (
    await Promise.all(
      readConfiguredKeys(
        (config.operators ?? []).map((o) => o.key),
        texts,
      ),
    )
  ).filter((o) => !o.fingerprints.some((fp) => registryFingerprints.includes(fp)));
  const publishers = config.publishers.map(({ fingerprint, key }) => ({ fingerprint, key }));
  const listed = listedKeyIds.get(config.publishers);
  return { publishers, operators, registryFingerprints, texts, ...(listed ? { listedKeyIds: listed } : {}) };
}

/**
 * The configured publishers' keys a signature by one of `keyIds` (its issuers, `signatureKeyIds`) may be
 * by, in config order, as `verifyDetachedSignature` would pick them out of them all: those whose entry's
 * fingerprint ends in one of the IDs, or is `bundled`'s (a key holding one of them: its signing subkey), each
 * read, and kept when it holds one of the IDs and is the key its entry names. None found (an issuer that is a
 * signing subkey no bundled key names, a stranger, or no configured key at all), every configured key holding
 * an ID, as before. Both are looked up by key ID (`entriesByKeyId`, `everyKeyById`), not filtered out of
 * every entry per signature; the latter by the (sub)key IDs the checked list gave `checkConfiguredKeys`, so
 * only the keys found are read (none for a stranger), each kept only when it holds an ID. The keys found are always among those all keys gave, in the same order (the
 * entries' fingerprints are their keys' own, `checkConfiguredKeys`), and all of them but where one entry holds
 * a key ID only as a subkey while another entry's primary key is that ID: first in config order, the former
 * was chosen and refused the latter's signatures (its subkey not for signing, or another key of that ID).
 */
export async function configuredCandidates(
  trusted: TrustedKeys,
  keyIds: readonly string[],
  bundled?: PublicKeyInfo,
): Promise<PublicKeyInfo[]> {
  // A signature naming no issuer is by no candidate (readDetachedSignature: unknown-key).
  if (keyIds.length === 0) return [];
  const ids = new Set(keyIds);
  const holds = (info: PublicKeyInfo): boolean =>
    info.key.getKeyIDs().some((id) => ids.has(upper(id.toHex())));
  const byKeyId = entriesByKeyId(trusted.publishers);
  // Indices into the config, looked up by each ID and by the bundled key's own (its fingerprint's entries),
  // then put back in config order, as the filter over every entry gave them.
  const at = new Set<number>();
  for (const id of ids) for (const i of byKeyId.get(id) ?? []) at.add(i);
  if (bundled && holds(bundled))
    for (const i of byKeyId.get(keyIdOf(bundled.fingerprint)) ?? [])
      if (trusted.publishers[i]?.fingerprint === bundled.fingerprint) at.add(i);
  const named = [...at]
    .sort((a, b) => a - b)
    .map((i) => trusted.publishers[i] as TrustedKeys['publishers'][number]);
  const read = await Promise.all(
    readConfiguredKeys(
      named.map((p) => p.key),
      trusted.texts,
    ),
  );
  const found = read.filter((info, i) => info.fingerprint === named[i]?.fingerprint && holds(info));
  if (found.length > 0) return found;
  // Every key holding an ID, in config order: looked up among every configured key's (sub)key IDs, indexed
  // once per trust list (`everyKeyById`: from the checked list's IDs where it covers the entry, else read), then
  // each entry found read and kept only when its key holds an ID: the IDs only say which keys to read, so a
  // list that lies can make a signature find the wrong keys (refused), never verify by a key that does not
  // hold its issuer. A stranger's ID found in no entry reads no key at all.
  const byId = await everyKeyById(trusted);
  const holding = new Set<number>();
  for (const id of ids) for (const i of byId.get(id) ?? []) holding.add(i);
  const listed = [...holding]
    .sort((a, b) => a - b)
    .map((i) => trusted.publishers[i] as TrustedKeys['publishers'][number]);
  const keys = await Promise.all(
    readConfiguredKeys(
      listed.map((p) => p.key),
      trusted.texts,
    ),
  );
  return keys.filter((info, i) => info.fingerprint === listed[i]?.fingerprint && holds(info));
}

/**
 * The (sub)key IDs of configured keys read from the keys themselves, by their armored text: what a text holds,
 * the same for every registry that trusts it, so kept for the process (bounded as `configuredKeys` is).
 */
const keyIdsRead = new Map<string, readonly string[]>();

/**
 * The (sub)key IDs a registry's checked list gave its config's publisher entries (by position; undefined
 * where an entry was read, or the list gave none), kept with the config it was checked for (its `publishers`
 * array, as `loadTrustedKeys` is given it), so only that registry's trust lists look signatures up by them. Kept
 * per process by key text, they let one registry's list (a lying one, say, in a `state/` someone else may write)
 * replace the IDs another registry's list gave the same key, in a process serving both (a server, a test run, a
 * warm function whose config object changed), and that registry's signatures by the key's subkey were refused.
 */
const listedKeyIds = new WeakMap<RegistryConfig['publishers'], readonly (readonly string[] | undefined)[]>();

/** Once past the bound, only the IDs of `config`'s keys (every key text of the config in use) are kept. */
function boundKeyIds(config: readonly string[]): void {
  if (keyIdsRead.size <= MAX_CONFIGURED_KEYS + config.length) return;
  const wanted = new Set(config);
  for (const text of keyIdsRead.keys()) if (!wanted.has(text)) keyIdsRead.delete(text);
}

/** Every (sub)key ID a key holds, upper-case hex, each once (what a signature's issuer is matched with). */
const keyIdsOf = (info: PublicKeyInfo): string[] => [
  ...new Set(info.key.getKeyIDs().map((k) => upper(k.toHex()))),
];

/**
 * Each configured publisher's position by each (sub)key ID its key holds, made once per trust list: an entry's
 * IDs as read from its key before (`keyIdsRead`), else as its registry's checked list gave them
 * (`TrustedKeys.listedKeyIds`, where a registry keeps one), else its key read. A cold process given a list
 * covering every entry reads no key for it, where it read every configured key (about 7 s at 5,000
 * publishers) for the first signature whose issuer no entry's fingerprint names, which anyone may send. A key that does not read fails it (not kept).
 */
const everyKeyIndexes = new WeakMap<
  TrustedKeys['publishers'],
  Promise<ReadonlyMap<string, readonly number[]>>
>();

function everyKeyById(trusted: TrustedKeys): Promise<ReadonlyMap<string, readonly number[]>> {
  const list = trusted.publishers;
  let index = everyKeyIndexes.get(list);
  if (!index) {
    const idsOf = (p: TrustedKeys['publishers'][number], i: number): readonly string[] | undefined =>
      keyIdsRead.get(p.key) ?? trusted.listedKeyIds?.[i];
    const uncovered = list.filter((p, i) => idsOf(p, i) === undefined);
    index = Promise.all(
      readConfiguredKeys(
        uncovered.map((p) => p.key),
        trusted.texts,
      ),
    ).then((read) => {
      const parsed = new Map(uncovered.map((p, i) => [p.key, keyIdsOf(read[i] as PublicKeyInfo)]));
      for (const [text, ids] of parsed) keyIdsRead.set(text, ids);
      boundKeyIds(trusted.texts ?? list.map((p) => p.key));
      const byId = new Map<string, number[]>();
      list.forEach((p, i) => {
        for (const id of parsed.get(p.key) ?? idsOf(p, i) ?? []) {
          const held = byId.get(id);
          if (held) held.push(i);
          else byId.set(id, [i]);
        }
      });
      return byId;
    });
    const made = index;
    made.catch(() => {
      if (everyKeyIndexes.get(list) === made) everyKeyIndexes.delete(list);
    });
    everyKeyIndexes.set(list, index);
  }
  return index;
}

/**
 * The configured publishers' positions by the key ID their entry's fingerprint ends in, made once per
 * list (a batch's `TrustedKeys`, kept while it is): each signature looks its issuers up, where filtering
 * every entry per signature made an import of 10,000 uploads under 5,000 publishers 50 million comparisons.
 */
const keyIdIndexes = new WeakMap<TrustedKeys['publishers'], ReadonlyMap<string, readonly number[]>>();

function entriesByKeyId(publishers: TrustedKeys['publishers']): ReadonlyMap<string, readonly number[]> {
  let index = keyIdIndexes.get(publishers);
  if (!index) {
    const made = new Map<string, number[]>();
    publishers.forEach((p, i) => {
      const id = keyIdOf(p.fingerprint);
      const held = made.get(id);
      if (held) held.push(i);
      else made.set(id, [i]);
    });
    index = made;
    keyIdIndexes.set(publishers, index);
  }
  return index;
}

/**
 * What every configured key's check (`checkConfiguredKeys`) comes to for one entry: the digest of what it
 * judged (the fingerprint the entry names, the key's text) and of the checks it made. A registry that keeps
 * the digests of the entries it checked (cli/local: `DIR/state/`) checks an entry again only when this
 * changes; CONFIGURED_KEY_CHECKS names the checks, and changes when they do (a new refusal in
 * `untrustedKeyProblem`, an openpgp.js that reads keys otherwise), so a key taken before is checked by the new
 * ones. It ends in the digest of the checks' verdicts on a corpus of every kind of entry they could come to
 * judge apart (`test/support/configured-key-corpus.ts`), which `test/index-builder/trust.test.ts` computes:
 * checks that judge any of it otherwise, or a kind added to it, fail there until the tag is changed, where a
 * tag written by hand was left as it was when the checks were tightened and every entry listed skipped them.
 */
export const CONFIGURED_KEY_CHECKS =
  'plugindex configured key checks 3: reads, secret by its packets, untrustedKeyProblem, fingerprint; verdicts 3819aeeb7cb846ea';

/** The digest of one configured entry's check (`checkConfiguredKeys`' `checked`). */
export function configuredKeyDigest(entry: { readonly fingerprint: string; readonly key: string }): string {
  return sha256Hex(`${CONFIGURED_KEY_CHECKS}\n${entry.fingerprint}\n${entry.key}`);
}

/**
 * The configured entries a registry keeps as checked (`checkConfiguredKeys`' result, kept in
 * `state/checked-keys.json`): each passing entry's digest (`configuredKeyDigest`), and the (sub)key IDs its
 * key holds, or undefined where the list kept none (the older form, digests alone).
 */
export type CheckedKeys = ReadonlyMap<string, readonly string[] | undefined>;

const DIGEST = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9A-F]{16}$/;

/**
 * The checked entries a registry keeps, as written by `checkedKeysText`: none when the text is not as
 * written (every entry is checked again), and only well-formed digests. `keyIds[i]` are the IDs of
 * `checked[i]`'s key; an entry whose IDs are missing or not as written has none (the older form, a list of
 * digests alone, is read so: every entry then read again once, `checkConfiguredKeys`). Whoever writes the
 * text can only name entries to skip and IDs to look for: an entry is skipped when its own digest (its
 * fingerprint and key text) is listed, and a signature is still verified by the key read, never the IDs.
 */
export function parseCheckedKeys(text: string | undefined): Map<string, readonly string[] | undefined> {
  const kept = new Map<string, readonly string[] | undefined>();
  if (text === undefined) return kept;
  let parsed: { checked?: unknown; keyIds?: unknown };
  try {
    parsed = JSON.parse(text) as { checked?: unknown; keyIds?: unknown };
  } catch {
    return kept;
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.checked)) return kept;
  const idLists = Array.isArray(parsed.keyIds) ? (parsed.keyIds as unknown[]) : [];
  parsed.checked.forEach((digest: unknown, i) => {
    if (typeof digest !== 'string' || !DIGEST.test(digest)) return;
    const ids = idLists[i];
    const valid =
      Array.isArray(ids) && ids.length > 0 && ids.every((id) => typeof id === 'string' && KEY_ID.test(id));
    kept.set(digest, valid ? (ids as string[]) : undefined);
  });
  return kept;
}

/**
 * The text `parseCheckedKeys` reads: `{"checked": [digest, ...], "keyIds": [[ID, ...], ...]}`, the IDs
 * beside the digests, so a reader of the older form (digests alone) reads `checked` as before.
 */
export function checkedKeysText(checked: CheckedKeys): string {
  const digests = [...checked.keys()];
  const keyIds = [...checked.values()].map((ids) => ids ?? []);
  return `${JSON.stringify({ checked: digests, keyIds })}\n`;
}

/** Do `result` (a check's) and `kept` differ, in an entry or its IDs? Then the kept list is written again. */
export function checkedKeysChanged(kept: CheckedKeys, result: CheckedKeys): boolean {
  if (kept.size !== result.size) return true;
  for (const [digest, ids] of result) {
    if (!kept.has(digest)) return true;
    if ((kept.get(digest) ?? []).join(' ') !== (ids ?? []).join(' ')) return true;
  }
  return false;
}

/**
 * Refuses a config whose publisher or operator keys could never be trusted, when it is loaded: a key that is
 * no armored key, or one whose arithmetic is unbounded or whose Ed25519 point has small order
 * (`untrustedKeyProblem`), as `publishers add` and `operators add` refuse it (`readTrustedKey`); and an entry
 * whose fingerprint is not its key's (what `publishers add` writes), by which each signature finds the key to
 * check it with (`configuredCandidates`) and the trust list the names a key is given. A config edited by hand
 * gets no further: such a key was taken, and every signature by it refused later, one confusing rejection
 * per upload; a key that does not read failed each batch without saying where. Every such entry is named, by
 * `where` (the config file, the config object's URL) and its JSON pointer. An entry whose digest
 * (`configuredKeyDigest`) is in `checked` with its key's IDs passed these checks before, with the same
 * fingerprint and text: it is not read again (a registry of thousands of publishers paid about 1 ms a key at
 * every cold start), and its IDs are kept for the look-ups of this config's trust lists alone
 * (`configuredCandidates`: a signature no entry's fingerprint names is found by them without reading every
 * key; `loadTrustedKeys` of the same `config.publishers` array).
 * @returns each entry's digest and its key's (sub)key IDs, all of them passing (what `checkedKeysText` keeps)
 * @throws ConfigError CONFIG_INVALID listing each entry and why
 * @example await checkConfiguredKeys(config, `registry config ${file}`);
 */
export async function checkConfiguredKeys(
  config: Pick<RegistryConfig, 'publishers' | 'operators'>,
  where: string,
  options: { readonly checked?: CheckedKeys } = {},
): Promise<Map<string, readonly string[]>> {
  const entries = [
    ...config.publishers.map((p, i) => ({ at: `/publishers/${i}`, entry: p, what: 'the publisher key' })),
    ...config.operators.map((o, i) => ({ at: `/operators/${i}`, entry: o, what: 'the operator key' })),
  ];
  const texts = entries.map((e) => e.entry.key);
  const digests = entries.map(({ entry }) => configuredKeyDigest(entry));
  // Listed with its key's IDs, an entry is not read; listed without (the list's older form), it is read and
  // checked again once, so the list is written with them.
  const listed = digests.map((d) => options.checked?.get(d));
  const unchecked = entries.flatMap((e, i) => (listed[i] === undefined ? [{ ...e, i }] : []));
  const reads = readConfiguredKeys(
    unchecked.map((e) => e.entry.key),
    texts,
  );
  const idsRead = new Map<number, readonly string[]>();
  const problems = await Promise.all(
    unchecked.map(async ({ at, entry, what, i: index }, i): Promise<string | undefined> => {
      const info = await (reads[i] as Promise<PublicKeyInfo>).catch((error: unknown) => error as Error);
      if (info instanceof Error) return `${where} ${at}/key: ${info.message}`;
      // Its public part was read and trusted in silence: the secret key stayed in the config, which the
      // operators, the function's role and whatever copies the config read, and its owner was never told.
      // `publishers add` and `operators add` refuse one (SECRET_KEY_GIVEN), as the deployed trust list does.
      // Its packets decide, not only its header: openpgp.js reads secret packets under a public key's too.
      if (entry.key.includes(SECRET_KEY_ARMOR) || info.secret === true)
        return `${where} ${at}/key: ${what} ${info.fingerprint} is given as its secret key, which a config must never hold (whoever reads it may sign as its owner); put its public key there instead (gpg --export --armor FINGERPRINT, or the public.asc plugindex keygen wrote), and have its owner make a new key, this one having left them`;
      const untrusted = untrustedKeyProblem(info.key);
      if (untrusted !== undefined)
        return `${where} ${at}/key: ${what} ${info.fingerprint} cannot be trusted, no signature by it is ever taken: ${untrusted}; remove the entry or give an Ed25519 key (gpg --quick-gen-key NAME ed25519, or plugindex keygen)`;
      if (info.fingerprint !== entry.fingerprint)
        return `${where} ${at}/fingerprint: ${entry.fingerprint} is not the fingerprint of ${what} beside it (${info.fingerprint}); give the key's own (gpg --with-colons --fingerprint), or add the key again with plugindex ${what === 'the publisher key' ? 'publishers' : 'operators'} add`;
      idsRead.set(index, keyIdsOf(info));
      return undefined;
    }),
  );
  const found = problems.filter((p): p is string => p !== undefined);
  if (found.length > 0) throw new ConfigError('CONFIG_INVALID', found.join('; '));
  const result = new Map<string, readonly string[]>();
  digests.forEach((digest, i) => {
    const read = idsRead.get(i);
    if (read !== undefined) keyIdsRead.set(texts[i] as string, read);
    result.set(digest, read ?? (listed[i] as readonly string[]));
  });
  // The list's IDs for this config alone (`listedKeyIds`): another registry's config, even one trusting the same
  // key text, looks its signatures up by its own list's or by the key.
  listedKeyIds.set(
    config.publishers,
    config.publishers.map((_, i) => (idsRead.has(i) ? undefined : listed[i])),
  );
  boundKeyIds(texts);
  return result;
}

export type SignerCheck =
  | { readonly fingerprint: string; readonly problems: readonly [] }
  | { readonly fingerprint?: undefined; readonly problems: readonly Problem[] };

/**
 * Why a submitted key (`publisher.asc`, an action's `key`) is not one plain key, or undefined: one armored
 * block holding one key (`keyCount`, as `readKeys` found them), and no more user IDs, subkeys and
 * signatures than a publisher needs (the work of checking a key grows with them); no (sub)key whose
 * arithmetic is unbounded (`keyArithmeticProblem`: DSA, RSA past 16384 bits or a 64-bit exponent), and none
 * anyone can sign as (`weakKeyProblem`).
 */
function submittedKeyShapeProblem(keyCount: number, key: Key, at: string, name: string): Problem | undefined {
  if (keyCount !== 1)
    return problem('PUBLISHER_KEY_INVALID', at, `${name} must hold exactly one key`, {
      expected: 'one armored public key (gpg --export --armor FINGERPRINT)',
      found: `${keyCount} keys`,
    });
  const complexity = keyComplexityProblem(key);
  if (complexity)
    return problem('PUBLISHER_KEY_TOO_COMPLEX', at, `the key holds ${complexity}`, {
      expected: 'a minimal export: gpg --export --armor --export-options export-minimal FINGERPRINT',
    });
  const costly = keyArithmeticProblem(key);
  if (costly)
    return problem('PUBLISHER_KEY_INVALID', at, `${name} would take unbounded work to check: ${costly}`, {
      expected:
        'an Ed25519 key (gpg --quick-gen-key NAME ed25519), or RSA of at most 16384 bits with exponent 65537',
    });
  const weak = weakKeyProblem(key);
  if (weak)
    return problem('PUBLISHER_KEY_INVALID', at, `${name} is not a key anyone could trust: ${weak}`, {
      expected: 'a key made by gpg --quick-gen-key or plugindex keygen',
    });
  return undefined;
}

/**
 * A submitted key as read: the key (or none: not an armored key), how many keys its text holds, and whether
 * the text holds secret key material (`readPublicKey` reads a secret key's public part).
 */
interface ReadKeyText {
  readonly key: PublicKeyInfo | undefined;
  readonly keyCount: number;
  readonly secret: boolean;
}

/** Most submitted key texts kept read (`readKeyText`): a batch's publishers, many times over. */
const KEY_TEXT_CACHE_SIZE = 256;
const keyTexts = new Map<string, Promise<ReadKeyText>>();

/**
 * A submitted key's text, read once per process: most uploads of a batch (and of a warm process) carry
 * one of a few publishers' keys, and one read `Key` keeps openpgp.js's record of which of its own
 * certifications verified (a cryptographic fact about those bytes; their times are judged again at every
 * use), where a fresh read verifies them again for every upload. Keyed by the exact text, so other bytes
 * are always read anew; the oldest entry goes first past the bound.
 */
function readKeyText(armored: string): Promise<ReadKeyText> {
  const held = keyTexts.get(armored);
  if (held) return held;
  const reading = (async (): Promise<ReadKeyText> => {
    const key = await readPublicKey(armored).catch(() => undefined);
    // Its armor, or secret key or secret subkey packets in any block, under a public key's header too.
    const labelled = isSecretKeyText(armored, {});
    if (!key) return { key, keyCount: 0, secret: labelled };
    const blocks = (armored.match(/-----BEGIN PGP [A-Z ]+-----/g) ?? []).length;
    const keys = blocks === 1 ? await readKeys({ armoredKeys: armored }).catch(() => []) : [];
    const keyCount = blocks === 1 ? keys.length : blocks;
    return { key, keyCount, secret: labelled || key.secret === true || keys.some((k) => k.isPrivate()) };
  })();
  keyTexts.set(armored, reading);
  if (keyTexts.size > KEY_TEXT_CACHE_SIZE) keyTexts.delete(keyTexts.keys().next().value as string);
  return reading;
}

/**
 * Reads a key a submission carries (`publisher.asc`, an action's `key`; `name` for messages, found at
 * `at`): one plain key, never the registry's own.
 */
export async function readSubmittedKey(
  armored: string,
  where: { readonly at: string; readonly name: string },
  registryFingerprints: readonly string[],
): Promise<{ readonly key: PublicKeyInfo; readonly problem?: undefined } | { readonly problem: Problem }> {
  const { at, name } = where;
  const { key, keyCount, secret } = await readKeyText(armored);
  // Refused first, whatever else is wrong: what is accepted is published as it came (an action's envelope,
  // under log/actions/, never rewritten), and a publisher who sent a secret key needs to know it left them.
  if (secret)
    return {
      problem: problem(
        'PUBLISHER_KEY_INVALID',
        at,
        `${name} holds a secret key, where only the public key goes (gpg --export --armor FINGERPRINT): it has left its owner's hands, so revoke it and sign with a new key`,
      ),
    };
  if (!key)
    return { problem: problem('PUBLISHER_KEY_INVALID', at, `${name} is not an armored OpenPGP public key`) };
  const shape = submittedKeyShapeProblem(keyCount, key.key, at, name);
  if (shape) return { problem: shape };
  if (key.fingerprints.some((fp) => registryFingerprints.includes(fp)))
    return {
      problem: problem(
        'PUBLISHER_IS_REGISTRY_KEY',
        at,
        'the registry signing key cannot be used as a publisher key',
      ),
    };
  return { key };
}

/** Why a key could not sign, whether at the signature's time (openpgp.js) or at the time of publishing. */
const UNUSABLE_CODES: Record<'key-revoked' | 'key-expired' | 'not-for-signing', ProblemCode> = {
  'key-revoked': 'PUBLISHER_KEY_REVOKED',
  'key-expired': 'PUBLISHER_KEY_EXPIRED',
  'not-for-signing': 'PUBLISHER_KEY_NOT_FOR_SIGNING',
};
const UNUSABLE_EXPECTED = 'a signature by a key that is valid for signing now (not expired, not revoked)';

/**
 * What to tell a signer whose (sub)key `keyId` has expired: which one, when, and what to do, where
 * openpgp.js says only "Could not find valid signing key packet in key …: Subkey is expired". Undefined
 * when the candidates do not say when it expired (the library's words are kept then).
 */
async function expiredKeyMessage(
  candidates: readonly Key[],
  keyId: string,
  now: Date,
  created: Date | undefined,
): Promise<string | undefined> {
  const expiry = await signingKeyExpiry(candidates, keyId, now);
  if (!expiry) return undefined;
  const which = expiry.subkey
    ? `the signing subkey ${expiry.subkey} of key ${expiry.fingerprint}`
    : `key ${expiry.fingerprint}`;
  const extend = expiry.subkey
    ? `extend the subkey (gpg --quick-set-expire ${expiry.fingerprint} 1y ${expiry.subkey}) or add a signing subkey (gpg --quick-add-key ${expiry.fingerprint} ed25519 sign 1y)`
    : `extend it (gpg --quick-set-expire ${expiry.fingerprint} 1y)`;
  const made = created ? `; the signature was made at ${created.toISOString()}` : '';
  return `${which} expired at ${expiry.expired.toISOString()}${made}, and signs nothing after it: ${extend}, then sign again and give the registry the updated key (it reads the expiry from the key it is given)`;
}

/** What a detached signature by one of a few candidate keys comes to, judged at the time of publishing. */
type SignatureJudgement =
  | { readonly ok: true; readonly fingerprint: string; readonly key: Key }
  | { readonly ok: false; readonly problem: Problem }
  /** By no candidate, and not by the registry key: who may sign is the caller's to say. */
  | { readonly ok: false; readonly problem?: undefined; readonly keyIds: readonly string[] };

/**
 * Verifies a detached signature (at `sigPath`) over `data` by one of `candidates`, as every submission's
 * signature is judged: one binary signature, by a key that is not the registry's, usable for signing at
 * `now` (the time of publishing, not the time the signature claims: an expired or revoked key signs
 * nothing, however its signature is dated), and not dated after `now`.
 */
export async function judgeSignature(options: {
  readonly data: Uint8Array;
  readonly signature: string;
  readonly candidates: readonly Key[];
  readonly now: Date;
  readonly sigPath: string;
  /** What was signed, for messages (`manifest.json`, `the action`). */
  readonly what: string;
  readonly registryFingerprints: readonly string[];
  /**
   * The time the signature is verified at, when later than `now` (an allowance for the signer's clock
   * running ahead); the key is still judged usable at `now`.
   */
  readonly verifyAt?: Date;
}): Promise<SignatureJudgement> {
  const { sigPath, now } = options;
  const fail = (p: Problem): SignatureJudgement => ({ ok: false, problem: p });
  const result = await verifyDetachedSignature(
    options.data,
    options.signature,
    options.candidates,
    options.verifyAt ?? now,
  );
  if (result.ok) {
    if (options.registryFingerprints.includes(result.fingerprint))
      return fail(
        problem(
          'PUBLISHER_IS_REGISTRY_KEY',
          sigPath,
          'the registry signing key cannot be used as a publisher key',
        ),
      );
    const usable = await keyUsableAt(result.key, result.signingKeyId, now);
    if (!usable.usable) {
      const expired =
        usable.reason === 'key-expired'
          ? await expiredKeyMessage([result.key], result.signingKeyId, now, result.created)
          : undefined;
      return fail(
        problem(
          UNUSABLE_CODES[usable.reason],
          sigPath,
          expired ?? `key ${result.fingerprint}: ${usable.message}`,
          { expected: UNUSABLE_EXPECTED },
        ),
      );
    }
    return { ok: true, fingerprint: result.fingerprint, key: result.key };
  }
  switch (result.reason) {
    case 'malformed':
      return fail(problem('SIGNATURE_MALFORMED', sigPath, result.message));
    case 'time':
      return fail(
        problem('SIGNATURE_TIME_INVALID', sigPath, `the signature is not valid now: ${result.message}`, {
          expected: `a signature made before ${now.toISOString()}, and not expired`,
        }),
      );
    case 'key-expired': {
      // By the key ID the signature names (one, as a detached signature here holds one packet).
      const [keyId] = result.keyIds;
      const expired = keyId && (await expiredKeyMessage(options.candidates, keyId, now, undefined));
      return fail(
        problem('PUBLISHER_KEY_EXPIRED', sigPath, expired || result.message, { expected: UNUSABLE_EXPECTED }),
      );
    }
    case 'key-revoked':
    case 'not-for-signing':
      return fail(
        problem(UNUSABLE_CODES[result.reason], sigPath, result.message, { expected: UNUSABLE_EXPECTED }),
      );
    case 'bad-signature':
      return fail(
        problem(
          'SIGNATURE_INVALID',
          sigPath,
          `the signature does not match ${options.what}: ${result.message}`,
        ),
      );
    case 'unknown-key': {
      const registryKeyIds = options.registryFingerprints.map(keyIdOf);
      if (result.keyIds.some((id) => registryKeyIds.includes(id)))
        return fail(
          problem(
            'PUBLISHER_IS_REGISTRY_KEY',
            sigPath,
            'signed with the registry key, which is never a publisher key',
          ),
        );
      return { ok: false, keyIds: result.keyIds };
    }
  }
}

/**
 * Verifies the publisher's detached signature over the manifest bytes. Under the `open` policy the key may
 * travel in the bundle (`publisher.asc`); under `restricted` only configured keys count. The key is judged
 * at `now`, the time of publishing: an expired or revoked key is refused whatever time its signature
 * claims, and a signature dated after `now` is refused.
 */
export async function checkPublisherSignature(options: {
  /** Whose keys count: `open` takes the bundled key too (the publisher-side check uses it alone). */
  readonly policy: PublishPolicy;
  readonly trusted: TrustedKeys;
  readonly manifestName: string;
  readonly manifest: Uint8Array;
  readonly signature: Uint8Array | undefined;
  readonly publisherKey: Uint8Array | undefined;
  readonly now: Date;
}): Promise<SignerCheck> {
  const { policy, trusted } = options;
  const sigPath = `bundle:${options.manifestName}.asc`;
  if (!options.signature) {
    return {
      problems: [
        problem(
          'BUNDLE_MISSING_SIGNATURE',
          sigPath,
          `the bundle has no detached signature over ${options.manifestName}`,
          {
            expected: `${options.manifestName}.asc, an armored OpenPGP signature by the publisher`,
          },
        ),
      ],
    };
  }
  let bundled: PublicKeyInfo | undefined;
  if (options.publisherKey) {
    const read = await readSubmittedKey(
      new TextDecoder().decode(options.publisherKey),
      { at: 'bundle:publisher.asc', name: 'publisher.asc' },
      trusted.registryFingerprints,
    );
    if (read.problem) return { problems: [read.problem] };
    bundled = read.key;
  }
  const signature = new TextDecoder().decode(options.signature);
  const configured = await configuredCandidates(trusted, await signatureKeyIds(signature), bundled);
  const candidates: Key[] = configured.map((k) => k.key);
  if (bundled && policy === 'open') candidates.push(bundled.key);
  const judged = await judgeSignature({
    data: options.manifest,
    signature,
    candidates,
    now: options.now,
    sigPath,
    what: options.manifestName,
    registryFingerprints: trusted.registryFingerprints,
  });
  if (judged.ok) return { fingerprint: judged.fingerprint, problems: [] };
  if (judged.problem) return { problems: [judged.problem] };
  if (policy === 'open' && !bundled) {
    return {
      problems: [
        problem(
          'PUBLISHER_KEY_MISSING',
          'bundle:publisher.asc',
          `signed by key ${judged.keyIds.join(', ')}, which the registry does not know`,
          {
            expected: 'the publisher public key in the bundle as publisher.asc (plugindex pack adds it)',
          },
        ),
      ],
    };
  }
  return {
    problems: [
      problem(
        'PUBLISHER_UNTRUSTED',
        sigPath,
        `signed by key ${judged.keyIds.join(', ') || '(unnamed)'}, which is not a trusted publisher`,
        {
          expected:
            policy === 'restricted'
              ? 'a key listed by `plugindex publishers add`'
              : 'the key in publisher.asc',
        },
      ),
    ],
  };
}

/**
 * Verifies an action's signature (index-builder/actions.ts) by the key its envelope carries, judged as a
 * publisher's is (`judgeSignature`). When the registry holds its own copy of that key (an operator's, a
 * configured publisher's), that copy is the one used: a revocation the registry was given counts, whatever
 * older copy the envelope carries.
 */
export async function checkActionSignature(options: {
  readonly text: Uint8Array;
  readonly signature: string;
  readonly key: string;
  readonly trusted: TrustedKeys;
  readonly now: Date;
}): Promise<SignerCheck> {
  const { trusted } = options;
  const read = await readSubmittedKey(
    options.key,
    { at: 'envelope:/key', name: "the action's key" },
    trusted.registryFingerprints,
  );
  if (read.problem) return { problems: [read.problem] };
  const fingerprint = read.key.fingerprint;
  // The registry's copy: an operator's, else the configured publisher's the entry of this fingerprint holds.
  const held =
    trusted.operators.find((k) => k.fingerprint === fingerprint) ??
    (await configuredCandidates(trusted, [keyIdOf(fingerprint)], read.key)).find(
      (k) => k.fingerprint === fingerprint,
    );
  const judged = await judgeSignature({
    data: options.text,
    signature: options.signature,
    candidates: [(held ?? read.key).key],
    now: options.now,
    sigPath: 'envelope:/signature',
    what: 'the action',
    registryFingerprints: trusted.registryFingerprints,
    // An action may be made up to the allowed skew ahead of the registry's clock (actionTimeAndPlaceProblems).
    verifyAt: new Date(options.now.getTime() + ACTION_CLOCK_SKEW_MS),
  });
  if (judged.ok) return { fingerprint: judged.fingerprint, problems: [] };
  if (judged.problem) return { problems: [judged.problem] };
  return {
    problems: [
      problem(
        'SIGNATURE_INVALID',
        'envelope:/signature',
        `signed by key ${judged.keyIds.join(', ') || '(unnamed)'}, not by the key in the envelope (${fingerprint})`,
        { expected: "a signature by the envelope's key" },
      ),
    ],
  };
}

/** Is this key one of the operator's? */
export function isOperator(trusted: TrustedKeys, fingerprint: string): boolean {
  return trusted.operators.some((o) => o.fingerprint === fingerprint);
}

/**
 * May `signer` take this action on this plugin? Operators may take every action; an owner action needs an
 * owner of the plugin (its `owners`) or an operator; the operator-only ones (remove, transfer,
 * revoke-key) need an operator. `owners` is undefined for a registry-wide action.
 */
export function authorizeAction(options: {
  readonly trusted: TrustedKeys;
  readonly signer: string;
  readonly operatorOnly: boolean;
  readonly plugin?: string;
  readonly owners?: readonly string[];
  /** The trust list, judged under `restricted` for a signer that is not an operator. */
  readonly config?: Pick<RegistryConfig, 'policy' | 'publishers'>;
}): Problem[] {
  const { signer } = options;
  if (isOperator(options.trusted, signer)) return [];
  if (options.operatorOnly)
    return [
      problem('ACTION_NOT_OPERATOR', '/action', `key ${signer} is not an operator key of this registry`, {
        expected: 'a signature by an operator key (plugindex operators add)',
      }),
    ];
  if (!options.owners?.includes(signer))
    return [
      problem('ACTION_NOT_OWNER', '/plugin', `key ${signer} does not own "${options.plugin ?? ''}"`, {
        expected: `a signature by an owner (${options.owners?.join(', ') || 'none'}) or an operator`,
      }),
    ];
  // Under `restricted`, an owner acts only while the trust list still lets it publish the name.
  if (options.config?.policy === 'restricted' && options.plugin !== undefined)
    return trustListProblems(options.config, signer, options.plugin, '/plugin');
  return [];
}

/**
 * What the trust list says of `fingerprint` acting on `name`: under `restricted`, only a configured
 * publisher; a configured publisher, only for the names it is given. Problems at `path`.
 */
export function trustListProblems(
  config: Pick<RegistryConfig, 'policy' | 'publishers'>,
  fingerprint: string,
  name: string,
  path: string,
): Problem[] {
  const listed = config.publishers.find((p) => p.fingerprint === fingerprint);
  if (config.policy === 'restricted' && !listed)
    return [
      // What lists it, for the publisher to ask for and the operator to do (a transfer to an unlisted key): a
      // deployed registry has no publishers add, its list is publishers.json.
      problem('PUBLISHER_UNTRUSTED', path, `key ${fingerprint} is not a trusted publisher of this registry`, {
        expected: `a key the registry's operator lists for "${name}" (a local registry: plugindex publishers add --registry DIR KEYFILE --names "${name}"; on AWS: its entry in publishers.json, deployed)`,
        found: fingerprint,
      }),
    ];
  if (listed && !picomatch.isMatch(name, [...listed.names]))
    return [
      problem('PUBLISHER_NAME_NOT_ALLOWED', path, `key ${fingerprint} may not publish "${name}"`, {
        expected: `a name matching ${listed.names.join(', ')}`,
        found: name,
      }),
    ];
  return [];
}

/** May `fingerprint` publish a version of `name`, given the config and the plugin's current owners? */
export function authorizePublisher(options: {
  readonly config: RegistryConfig;
  readonly fingerprint: string;
  readonly name: string;
  readonly owners: readonly string[] | undefined;
}): Problem[] {
  const { config, fingerprint, name } = options;
  const listed = trustListProblems(config, fingerprint, name, '/name');
  if (listed.length > 0) return listed;
  if (
    config.ownership === 'first-come' &&
    options.owners &&
    options.owners.length > 0 &&
    !options.owners.includes(fingerprint)
  ) {
    return [
      problem(
        'PUBLISHER_NOT_OWNER',
        '/name',
        `"${name}" is owned by another publisher; key ${fingerprint} is not an owner`,
        {
          expected: `a signature by an owner: ${options.owners.join(', ')}`,
        },
      ),
    ];
  }
  return [];
}
