/**
 * Lifecycle actions in tests: signed with real keys by `signAction` (what the CLI submits), put under
 * incoming/ as an upload, and what a client would check afterwards: the snapshot's signature, a plugin
 * document bound through its bin, and the log verified up to the head the snapshot signs.
 */
import { type ActionBody, signAction } from '../../index-builder/actions.ts';
import { binKey, binOf, pluginDocumentKey } from '../../index-builder/layout.ts';
import {
  EMPTY_LOG,
  LOG_SEGMENT_ENTRIES,
  type LogEntry,
  logSegmentKey,
  nextEntry,
  parseSegment,
  type ReadEntry,
  renderSegment,
  segmentsBetween,
  verifyLogRange,
  ZERO_HASH,
} from '../../index-builder/log.ts';
import type { LogHead, PluginDocument, SnapshotDocument } from '../../index-builder/model.ts';
import { type KeyPair, readPublicKey } from '../../index-builder/signing.ts';
import { CACHE_MUTABLE, type Store } from '../../index-builder/store.ts';
import { openSignedSnapshot, verifyPluginDocument, verifySnapshot } from '../../index-builder/verify.ts';
import { nextUploadName } from './fixtures.ts';

/** The URL of the test registries (test/support/fixtures.ts): an action names it. */
export const TEST_REGISTRY_URL = 'https://registry.example.com';
/** When test actions are made: before the test registries' clock (2026-11-01), within an action's age. */
export const ACTION_SIGNED = new Date('2026-10-31T12:00:00Z');

export interface SubmittedAction {
  /** Its key under incoming/. */
  readonly key: string;
  readonly digest: string;
  readonly bytes: Uint8Array;
}

/** Signs an action as `signer` and returns its envelope's bytes and digest (nothing submitted). */
export async function signedAction(
  body: ActionBody,
  signer: KeyPair,
  options: { readonly registry?: string; readonly now?: Date } = {},
): Promise<{ readonly bytes: Uint8Array; readonly digest: string }> {
  return signAction(body, {
    registry: options.registry ?? TEST_REGISTRY_URL,
    secretKey: signer.secretKey,
    now: options.now ?? ACTION_SIGNED,
  });
}

/** Puts bytes under incoming/ as an upload named `<name>.json` (a fresh name each time, in order). */
export async function upload(intake: Store, bytes: Uint8Array, name = 'action'): Promise<string> {
  const key = `incoming/${nextUploadName()}-${name}.json`;
  await intake.put(key, bytes, { contentType: 'application/json', cacheControl: 'no-store' });
  return key;
}

/** Signs an action as `signer` and puts its envelope under incoming/. */
export async function submitAction(
  intake: Store,
  body: ActionBody,
  signer: KeyPair,
  options: { readonly registry?: string; readonly now?: Date } = {},
): Promise<SubmittedAction> {
  const signed = await signedAction(body, signer, options);
  return { key: await upload(intake, signed.bytes, body.action), ...signed };
}

async function bytesOf(store: Store, key: string): Promise<Uint8Array> {
  const object = await store.get(key);
  if (!object) throw new Error(`missing ${key}`);
  return object.body;
}

/** The published snapshot, its signature checked with the registry key as a client does. */
export async function trustedSnapshot(site: Store, registryPublicKey: string): Promise<SnapshotDocument> {
  const { snapshot, signature } = openSignedSnapshot(await bytesOf(site, 'snapshot.signed.json'));
  const key = await readPublicKey(registryPublicKey);
  return verifySnapshot({ snapshot, signature, key: key.key, now: new Date('2026-11-02T00:00:00Z') });
}

/** A plugin's published document, bound to the signed snapshot through its bin (or a TrustError). */
export async function boundDocument(
  site: Store,
  registryPublicKey: string,
  name: string,
): Promise<PluginDocument> {
  const snapshot = await trustedSnapshot(site, registryPublicKey);
  const doc = await bytesOf(site, pluginDocumentKey(name));
  verifyPluginDocument(snapshot, name, await bytesOf(site, binKey(binOf(name))), doc);
  return JSON.parse(new TextDecoder().decode(doc)) as PluginDocument;
}

/**
 * Every log entry the signed snapshot vouches for, the chain checked from the first entry to its `log`
 * head (verifyLogRange), read segment by segment.
 */
export async function vouchedLog(site: Store, registryPublicKey: string): Promise<LogEntry[]> {
  const snapshot = await trustedSnapshot(site, registryPublicKey);
  const head = snapshot.log ?? { length: 0, head: ZERO_HASH };
  const entries: ReadEntry[] = [];
  for (const index of segmentsBetween(0, head.length))
    entries.push(...parseSegment(await bytesOf(site, logSegmentKey(index)), index));
  verifyLogRange(entries, { from: 0, prev: ZERO_HASH, to: head });
  return entries.slice(0, head.length).map((e) => e.entry);
}

/**
 * A published log made of `entries` (each chained after the one before, from an empty log), written to
 * `site` as the log's segments, as a registry publishes them; the head it ends at.
 */
export async function publishLogEntries(
  site: Store,
  entries: Iterable<Omit<LogEntry, 'seq' | 'prev'>>,
): Promise<LogHead> {
  let head = EMPTY_LOG;
  const lines: string[] = [];
  for (const fields of entries) {
    const next = nextEntry(head, fields);
    lines.push(next.line);
    head = next.head;
  }
  for (let from = 0; from < lines.length; from += LOG_SEGMENT_ENTRIES)
    await site.put(
      logSegmentKey(from / LOG_SEGMENT_ENTRIES),
      renderSegment(lines.slice(from, from + LOG_SEGMENT_ENTRIES)),
      { contentType: 'application/jsonl', cacheControl: CACHE_MUTABLE },
    );
  return head;
}
