/**
 * Lifecycle states and log histories for client tests, made with the real pipeline over any Store (in
 * memory, or a local registry's folder): a published plugin document edited as a lifecycle action will
 * leave it (yanked, removed, deprecated, advisories...) and re-rendered and re-signed by `rebuildRegistry`;
 * log entries appended by the `LogWriter` (after the entries the pipeline logged for every accepted publish
 * and action) and vouched for by `signLogHead`, which signs the head into the snapshot as a refresh does,
 * whatever the log holds. The attacks on the log (cut short, rewritten, reordered, altered) are made here too: either
 * re-signed by the registry's own key (the registry lies), or as served bytes changed under the signed head.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { forgetBins, openCatalog, saveCatalog } from '../../index-builder/catalog.ts';
import {
  pluginDocumentKey,
  SIGNED_SNAPSHOT_KEY,
  SNAPSHOT_KEY,
  signatureKey,
} from '../../index-builder/layout.ts';
import {
  LOG_PREFIX,
  type LogEntry,
  lineHash,
  logSegmentKey,
  parseSegment,
  renderSegment,
} from '../../index-builder/log.ts';
import type { LogHead, PluginDocument, SnapshotDocument } from '../../index-builder/model.ts';
import { recordingSnapshot, settledBy, writeSnapshot } from '../../index-builder/pipeline/commit.ts';
import type { PipelineContext } from '../../index-builder/pipeline/index.ts';
import { rebuildRegistry } from '../../index-builder/pipeline/index.ts';
import { LOG_STATE_KEY, LogWriter, writeLogHead } from '../../index-builder/pipeline/log-writer.ts';
import { checkedSnapshot } from '../../index-builder/pipeline/published.ts';
import { rotateRegistryKey } from '../../index-builder/pipeline/rotate.ts';
import { renderSignedSnapshot } from '../../index-builder/render/snapshot.ts';
import { signRotation } from '../../index-builder/rotation.ts';
import type { Signer } from '../../index-builder/signing.ts';
import { CACHE_MUTABLE } from '../../index-builder/store.ts';
import { publishLogEntries } from './actions.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A plugin document as a test edits it. */
export type EditableDocument = {
  -readonly [K in Exclude<keyof PluginDocument, 'versions'>]: PluginDocument[K];
} & { versions: Record<string, unknown>[] };

/**
 * Edits a published plugin document in place, then re-renders and re-signs the registry from the published
 * plugin documents (`rebuildRegistry`): what the client then reads is signed like any publish.
 */
export async function editPlugin(
  ctx: PipelineContext,
  name: string,
  edit: (doc: EditableDocument) => void,
): Promise<void> {
  const key = pluginDocumentKey(name);
  const object = await ctx.site.get(key);
  if (!object) throw new Error(`${key} is not published`);
  const doc = JSON.parse(decoder.decode(object.body)) as EditableDocument;
  edit(doc);
  await ctx.site.put(key, encoder.encode(JSON.stringify(doc)), {
    contentType: 'application/json',
    cacheControl: CACHE_MUTABLE,
  });
  await rebuildRegistry(ctx);
}

/** The record of `version` in an editable document. */
export function versionOf(doc: EditableDocument, version: string): Record<string, unknown> {
  const record = doc.versions.find((v) => v.version === version);
  if (!record) throw new Error(`${doc.name} has no version ${version}`);
  return record;
}

export type EntryFields = Partial<Omit<LogEntry, 'seq' | 'prev'>>;

let entries = 0;
/**
 * A distinct entry (its digest differs from every other this process made) with `fields` over it: by
 * default a key rotation, which names no plugin (a made-up publish would name a version no document shows,
 * which `verify --url` reports).
 */
function entryOf(fields: EntryFields): Omit<LogEntry, 'seq' | 'prev'> {
  entries += 1;
  return {
    time: '2026-11-01T00:00:00.000Z',
    type: 'rotate-key',
    signer: 'A'.repeat(40),
    digest: createHash('sha256').update(`entry ${entries}`).digest('hex'),
    ...fields,
  };
}

/**
 * The registry's first logged publish again, when its log holds one: an entry `verify --url` holds to
 * nothing new (the first publish of a version is the one its document is held to), where a made-up key
 * rotation is held to a signed rotation the registry does not publish, and any other kind to a document or
 * an envelope. None when the log holds no publish.
 */
async function repeatedPublish(ctx: PipelineContext): Promise<EntryFields | undefined> {
  const segment = await ctx.site.get(logSegmentKey(0));
  if (!segment) return undefined;
  const publish = parseSegment(segment.body, 0).find((r) => r.entry.type === 'publish')?.entry;
  if (!publish) return undefined;
  const { seq: _seq, prev: _prev, ...fields } = publish;
  return fields;
}

/**
 * Appends entries (`count` made up ones, or those given) after those the registry's own publishes and
 * actions logged, and signs a snapshot that vouches for them. A made-up one repeats the registry's first
 * publish (`repeatedPublish`), else is a key rotation (`entryOf`).
 */
export async function appendLog(
  ctx: PipelineContext,
  given: number | readonly EntryFields[],
): Promise<LogHead> {
  const filler = typeof given === 'number' ? ((await repeatedPublish(ctx)) ?? {}) : {};
  const fields = typeof given === 'number' ? Array.from({ length: given }, () => filler) : given;
  const writer = await LogWriter.open(ctx);
  for (const f of fields) writer.append(entryOf(f));
  await writer.flush();
  await signLogHead(ctx);
  return writer.head;
}

/**
 * The snapshot signed again, as `refreshSnapshot` signs it, over the log's head whatever it holds: a publish
 * no document shows included, which `refreshSnapshot` leaves uncounted (pipeline/stuck-entries.ts
 * `headLeavingStuck`), as releases before it did not. A registry that lies, or that such a release refreshed.
 */
export async function signLogHead(ctx: PipelineContext): Promise<void> {
  const catalog = await openCatalog(ctx.intake);
  const read = await ctx.site.get(SNAPSHOT_KEY);
  const previous = checkedSnapshot(catalog, read?.body) as SnapshotDocument;
  const next = Math.max(catalog.generation, previous.generation) + 1;
  const written = await writeSnapshot(
    ctx,
    next,
    { ...previous.documents },
    {
      ...(read ? { ifMatch: read.etag } : {}),
      published: previous,
      before: recordingSnapshot(ctx, catalog, next, read?.body),
    },
  );
  catalog.generation = next;
  catalog.snapshot = written;
  await saveCatalog(ctx.intake, catalog, new Set(), 'bins', settledBy(catalog));
  forgetBins(ctx.intake); // the next run is another process
}

/** Every published segment's key, in order. */
async function segmentKeys(ctx: PipelineContext): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of ctx.site.list(LOG_PREFIX)) keys.push(info.key);
  return keys.sort();
}

/** Deletes the log's segments from the site (`signHistory` then records the head it signs, or none). */
async function deleteSegments(ctx: PipelineContext): Promise<void> {
  for (const key of await segmentKeys(ctx)) await ctx.site.delete(key);
}

/**
 * The registry signs `head` as its log (none: a snapshot without a log), over the log it published: a
 * registry lying about its history. Its own pipeline refuses to (a record shorter than the published
 * snapshot's log gives way to that head, log-writer.ts `currentLogHead`), so the lie is made as an operator
 * holding the key would: the record set to `head`, the published snapshot signed again with it by the
 * registry's key, then the registry rebuilt over it (a rebuild takes what is published as it is), which
 * signs the next generation from there.
 */
export async function signHistory(ctx: PipelineContext, head: LogHead | undefined): Promise<void> {
  if (head) await writeLogHead(ctx.intake, head);
  else await ctx.intake.delete(LOG_STATE_KEY);
  const read = await ctx.site.get(SNAPSHOT_KEY);
  if (!read) throw new Error(`${SNAPSHOT_KEY} is not published: no snapshot to sign again`);
  const { log: _kept, ...published } = JSON.parse(decoder.decode(read.body)) as SnapshotDocument;
  const snapshot = encoder.encode(JSON.stringify({ ...published, ...(head?.length ? { log: head } : {}) }));
  const signature = await ctx.signer.sign(snapshot);
  const metadata = { contentType: 'application/json', cacheControl: CACHE_MUTABLE };
  await ctx.site.put(SNAPSHOT_KEY, snapshot, metadata);
  await ctx.site.put(signatureKey(SNAPSHOT_KEY), encoder.encode(signature), metadata);
  await ctx.site.put(SIGNED_SNAPSHOT_KEY, renderSignedSnapshot(snapshot, signature), metadata);
  await rebuildRegistry(ctx);
}

/**
 * The registry as it was before it kept a log (every publish is logged now, so a registry that published
 * has one): no segment, no recorded head, and a snapshot signed without a `log`.
 */
export async function dropLog(ctx: PipelineContext): Promise<void> {
  await deleteSegments(ctx);
  await signHistory(ctx, undefined);
}

/**
 * The registry rewrites its history: the log deleted and `count` other entries written in its place, and
 * a snapshot vouching for them signed by its own key.
 */
export async function rewriteLog(ctx: PipelineContext, count: number): Promise<LogHead> {
  await deleteSegments(ctx);
  const head = await publishLogEntries(
    ctx.site,
    Array.from({ length: count }, () => entryOf({})),
  );
  await signHistory(ctx, head);
  return head;
}

/** The registry cuts its log to its first `length` entries, and signs a snapshot that says so. */
export async function truncateLog(ctx: PipelineContext, length: number): Promise<LogHead> {
  const segment = await ctx.site.get(logSegmentKey(0));
  if (!segment) throw new Error('no log to cut');
  const lines = parseSegment(segment.body, 0)
    .slice(0, length)
    .map((r) => r.line);
  await ctx.site.put(logSegmentKey(0), renderSegment(lines), {
    contentType: 'application/jsonl',
    cacheControl: CACHE_MUTABLE,
  });
  const head: LogHead = { length, head: lineHash(lines[length - 1] as string) };
  await signHistory(ctx, head);
  return head;
}

/** The lines of the first segment as published (to change what is served under the signed head). */
export async function segmentLines(ctx: PipelineContext): Promise<string[]> {
  const segment = await ctx.site.get(logSegmentKey(0));
  if (!segment) throw new Error('no log');
  return decoder.decode(segment.body).slice(0, -1).split('\n');
}

/** Serves other lines as the first segment (the snapshot, and its head, unchanged). */
export async function serveSegment(ctx: PipelineContext, lines: readonly string[]): Promise<void> {
  await ctx.site.put(logSegmentKey(0), encoder.encode(`${lines.join('\n')}\n`), {
    contentType: 'application/jsonl',
    cacheControl: CACHE_MUTABLE,
  });
}

/** One byte of a line changed where the JSON stays well formed: a hex digit of its digest. */
export function alterLine(line: string): string {
  const at = line.indexOf('"digest":"') + '"digest":"'.length;
  const digit = line[at] === 'a' ? 'b' : 'a';
  return `${line.slice(0, at)}${digit}${line.slice(at + 1)}`;
}

/**
 * The registry signs a head that counts `length` entries (far more than it serves, say) over its real
 * last hash: a reader must stop at the first segment missing or short, never list them all first.
 */
export async function claimLogLength(ctx: PipelineContext, length: number): Promise<LogHead> {
  const object = await ctx.intake.get(LOG_STATE_KEY);
  if (!object) throw new Error('no log to claim more of');
  const head: LogHead = { length, head: (JSON.parse(decoder.decode(object.body)) as LogHead).head };
  await writeLogHead(ctx.intake, head);
  await signLogHead(ctx);
  return head;
}

/** Rotates `registry`'s key to `next` (its rotation 1, routine), as `plugindex rotate-key` does. */
export async function rotateKeyOnce(
  registry: { readonly context: PipelineContext; readonly signer: Signer },
  next: Signer,
): Promise<void> {
  const { bytes } = await signRotation({
    registry: registry.context.config.url,
    sequence: 1,
    previous: registry.signer,
    next,
    now: new Date('2026-11-01T12:00:00Z'),
  });
  expect(await rotateRegistryKey({ ...registry.context, signer: next }, bytes)).toMatchObject({
    status: 'rotated',
  });
}
