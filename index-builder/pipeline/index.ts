/**
 * The publish pipeline. One upload is one submission; a batch of submissions is evaluated one by one, the
 * accepted ones are written as immutable files, and the registry is rebuilt once for the whole batch:
 * only the changed plugins' documents plus the registry-wide documents. Every submission gets an outcome
 * record and is moved out of `incoming/`, so nothing is lost or dropped silently.
 *
 * Write order (a crash at any point leaves clients a consistent, signed view, and a retry converges):
 *   1. the immutable files of accepted versions (artifacts, manifest, its signature): nothing points at
 *      them yet;
 *   2. when the index documents are deferred, their pending mark in the catalog, before anything they
 *      would lag behind;
 *   3. each changed plugin's document, its signature and page;
 *   4. the snapshot bins of the changed plugins and the index documents (index.json/.yaml, search.json,
 *      falcoctl/index.yaml; unless deferred), each with its signature, then the registry key and pages when they differ;
 *   5. snapshot.json and its signature: the commit point for clients;
 *   6. the catalog (its changed bins, then its meta file);
 *   7. each submission's outcome record, then the submission moves to processed/ or rejected/.
 * A retry after a crash finds the version already published with the same bytes, sees the catalog out of
 * date for that plugin, and rebuilds.
 */
import { type Catalog, emptyCatalog, loadCatalog, saveCatalog } from '../catalog.ts';
import { sha256Hex } from '../digest.ts';
import { isPluginDocumentKey, PLUGINS_PREFIX, pluginDocumentKey, SNAPSHOT_KEY } from '../layout.ts';
import type { PluginDocument, SnapshotDocument } from '../model.ts';
import { commitGeneration, writeSnapshot } from './commit.ts';
import { type BatchResult, identityOf, type PipelineContext } from './context.ts';
import { type BatchItem, BatchView, evaluateBatch, failedWrite } from './evaluate.ts';
import { takeBatch } from './intake.ts';
import { recordOutcomes } from './outcomes.ts';
import {
  type AddedVersion,
  mergePluginDocument,
  type RenderedPlugin,
  renderPlugin,
} from './plugin-document.ts';
import {
  forEachLimited,
  readJson,
  resignManifests,
  WRITE_CONCURRENCY,
  withWriteLog,
  writePlugin,
  writePluginDocument,
  writeVersion,
} from './site-writer.ts';

export type { BatchResult, PipelineContext } from './context.ts';
export type { SubmissionOutcome, SubmissionStatus } from './outcomes.ts';

/**
 * Write step 1: the immutable files of every accepted version; returns the new versions by plugin name. A
 * store refusing one for good (a name the filesystem will not take) rejects that submission alone; the
 * store being unavailable fails the batch, to retry whole.
 */
async function writeVersions(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  published: string,
): Promise<Map<string, AddedVersion[]>> {
  const added = new Map<string, AddedVersion[]>();
  for (const item of items) {
    const evaluation = item.evaluation;
    if (evaluation.kind !== 'accepted') continue;
    try {
      const record = await writeVersion(ctx, evaluation, published);
      const list = added.get(evaluation.manifest.name) ?? [];
      list.push({ record, manifest: evaluation.manifest });
      added.set(evaluation.manifest.name, list);
    } catch (error) {
      item.evaluation = failedWrite(error, evaluation, 'writing its files');
    }
  }
  return added;
}

/**
 * The plugins whose documents this batch rewrites: those with new versions, and those whose published
 * document the catalog has not caught up with (a run that died after writing it: crash recovery).
 */
async function changedPlugins(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  added: ReadonlyMap<string, readonly AddedVersion[]>,
  catalog: Catalog,
): Promise<Set<string>> {
  const changed = new Set(added.keys());
  for (const item of items) {
    if (item.evaluation.kind !== 'already-published') continue;
    const name = item.evaluation.manifest.name;
    const current = await ctx.site.get(pluginDocumentKey(name));
    if (current && catalog.plugins.get(name)?.document.sha256 !== sha256Hex(current.body)) changed.add(name);
  }
  return changed;
}

/**
 * Renders the changed plugins' documents before anything of theirs is written: a plugin whose documents
 * cannot be rendered rejects the submissions that changed it (and leaves `changed`), and the rest of the
 * batch publishes.
 */
function renderChangedPlugins(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  added: ReadonlyMap<string, readonly AddedVersion[]>,
  published: ReadonlyMap<string, PluginDocument | undefined>,
  changed: Set<string>,
): RenderedPlugin[] {
  const rendered: RenderedPlugin[] = [];
  for (const name of [...changed].sort()) {
    const existing = published.get(name);
    const newVersions = added.get(name);
    const doc = newVersions ? mergePluginDocument(existing, newVersions, ctx.config.ownership) : existing;
    if (!doc) {
      changed.delete(name);
      continue;
    }
    try {
      rendered.push(renderPlugin(doc, identityOf(ctx.config)));
    } catch (error) {
      // A published document that no longer renders is the operator's to mend: nothing new is at fault.
      if (!newVersions) throw error;
      changed.delete(name);
      for (const item of items) {
        const evaluation = item.evaluation;
        if (evaluation.kind === 'accepted' && evaluation.manifest.name === name)
          item.evaluation = failedWrite(error, evaluation, "rendering the plugin's documents");
      }
    }
  }
  return rendered;
}

/**
 * Write steps 2 and 3: the pending mark when `defer`, then the changed plugins' documents, signatures and
 * pages, their catalog lines updated (the catalog itself is saved at the commit). Returns the names of the
 * plugins changed.
 */
async function writeChangedPlugins(
  ctx: PipelineContext,
  items: readonly BatchItem[],
  added: ReadonlyMap<string, readonly AddedVersion[]>,
  view: BatchView,
  catalog: Catalog,
  defer: boolean,
): Promise<Set<string>> {
  const changed = await changedPlugins(ctx, items, added, catalog);
  const published = new Map<string, PluginDocument | undefined>();
  for (const name of changed) published.set(name, await view.published(name));
  const rendered = renderChangedPlugins(ctx, items, added, published, changed);
  // A deferred batch marks the index documents pending before the first write they would lag behind, so a
  // crash at any later step still leaves them to the next flush: the retry may find nothing else to do (the
  // catalog bin, once written, says the plugin is up to date).
  if (defer && changed.size > 0 && !catalog.indexesPending) {
    catalog.indexesPending = true;
    await saveCatalog(ctx.intake, catalog, new Set());
  }
  await forEachLimited(rendered, WRITE_CONCURRENCY, async (plugin) => {
    catalog.plugins.set(plugin.doc.name, await writePlugin(ctx, plugin));
  });
  return changed;
}

/**
 * Processes submissions (by default everything under `incoming/`) as one batch with one rebuild.
 * @example const result = await processSubmissions({ intake, site, signer, clock: systemClock, config });
 */
export async function processSubmissions(
  context: PipelineContext,
  keys?: readonly string[],
): Promise<BatchResult> {
  const { ctx, log } = withWriteLog(context);
  const defer = ctx.deferIndexes === true;
  const { uploads, leftInIncoming } = await takeBatch(ctx, keys);
  // The time of publishing, for the whole batch: publisher keys are judged valid (or not) at it.
  const now = ctx.clock.now();
  const view = new BatchView(ctx.site);
  const items = await evaluateBatch(ctx, uploads, view, now);
  const catalog = await currentCatalog(ctx);
  const processed = now.toISOString();
  const added = await writeVersions(ctx, items, processed);
  const changed = await writeChangedPlugins(ctx, items, added, view, catalog, defer);
  // Write steps 4 to 6, once for the whole batch (index documents also when an earlier batch left them
  // pending and this caller does not defer).
  const generation =
    changed.size > 0 || (!defer && catalog.indexesPending)
      ? await commitGeneration(ctx, catalog, changed, defer)
      : null;
  // Write step 7: outcomes, then the submissions leave incoming/.
  const outcomes = await recordOutcomes(ctx, items, { url: ctx.config.url, processed, generation });
  return {
    outcomes,
    generation,
    changedPlugins: [...changed].sort(),
    invalidate: log.mutableKeys(),
    leftInIncoming,
    indexesPending: catalog.indexesPending,
  };
}

/** What a rebuild does beyond re-rendering and re-signing the documents (a key rotation asks for both). */
export interface RebuildOptions {
  /** Sign every version's manifest again too (`manifest.json.asc` and the documents' `manifest_signature`). */
  readonly resignManifests?: boolean;
  /** The snapshot's `key_rotations` (else the published snapshot's count stands). */
  readonly keyRotations?: number;
}

/**
 * Re-renders every plugin document, page and registry-wide document from the published plugin documents,
 * and re-signs everything (with `resignManifests`, the manifests too). For key rotation
 * (pipeline/rotate.ts), a changed registry URL or name, and recovery. `invalidate` holds every key
 * rewritten that a CDN caches, the re-signed manifest signatures among them (cached as immutable).
 */
export async function rebuildRegistry(
  context: PipelineContext,
  options: RebuildOptions = {},
): Promise<{ generation: number; plugins: number; manifests: number; invalidate: readonly string[] }> {
  const { ctx, log } = withWriteLog(context);
  const { generation, plugins, resigned } = await rebuildAll(ctx, options);
  const invalidate = [...new Set([...log.mutableKeys(), ...resigned])].sort();
  return { generation, plugins, manifests: resigned.length, invalidate };
}

/** The rebuild, through the caller's write log. Returns the manifest signatures it rewrote. */
async function rebuildAll(
  ctx: PipelineContext,
  options: RebuildOptions = {},
): Promise<{ generation: number; plugins: number; resigned: readonly string[] }> {
  const catalog = emptyCatalog();
  catalog.generation = (await loadCatalog(ctx.intake)).generation;
  const keys: string[] = [];
  for await (const info of ctx.site.list(PLUGINS_PREFIX)) {
    if (isPluginDocumentKey(info.key)) keys.push(info.key);
  }
  const resigned: string[] = [];
  await forEachLimited(keys, WRITE_CONCURRENCY, async (key) => {
    let doc = await readJson<PluginDocument>(ctx.site, key);
    if (!doc) return;
    if (options.resignManifests) {
      const signed = await resignManifests(ctx, doc);
      doc = signed.doc;
      resigned.push(...signed.rewritten);
    }
    catalog.plugins.set(doc.name, await writePluginDocument(ctx, doc));
  });
  const snapshot = options.keyRotations === undefined ? {} : { keyRotations: options.keyRotations };
  const generation = await commitGeneration(ctx, catalog, undefined, false, snapshot);
  return { generation, plugins: catalog.plugins.size, resigned: resigned.sort() };
}

/**
 * The catalog, rebuilt first from the published plugin documents when it is of another format (written
 * before an upgrade): rendered from as it is, it would read as empty, and the next index documents would
 * list only the plugins a publish changed.
 */
async function currentCatalog(ctx: PipelineContext): Promise<Catalog> {
  const catalog = await loadCatalog(ctx.intake);
  if (!catalog.outdated) return catalog;
  await rebuildAll(ctx);
  return loadCatalog(ctx.intake);
}

/**
 * Re-signs the snapshot with a fresh expiry and the next generation, changing nothing else: a quiet
 * registry stays valid for clients (the AWS deployment runs this on a schedule).
 */
export async function refreshSnapshot(
  context: PipelineContext,
): Promise<{ generation: number; invalidate: readonly string[] }> {
  const { ctx, log } = withWriteLog(context);
  const catalog = await loadCatalog(ctx.intake);
  if (catalog.outdated)
    return { generation: (await rebuildAll(ctx)).generation, invalidate: log.mutableKeys() };
  const previous = await readJson<SnapshotDocument>(ctx.site, SNAPSHOT_KEY);
  if (!previous || catalog.indexesPending) {
    // Nothing published yet: everything. Index documents pending: the re-signed snapshot might be the last
    // for hours, so bring them up to date first.
    const generation = await commitGeneration(ctx, catalog, previous ? new Set() : undefined);
    return { generation, invalidate: log.mutableKeys() };
  }
  const generation = Math.max(catalog.generation, previous.generation) + 1;
  await writeSnapshot(ctx, generation, { ...previous.documents });
  catalog.generation = generation;
  await saveCatalog(ctx.intake, catalog, new Set());
  return { generation, invalidate: log.mutableKeys() };
}

/**
 * Renders the index documents a deferred publish left pending (index.json, index.yaml, search.json,
 * falcoctl/index.yaml), and a snapshot that lists them; does nothing when none are pending. The one step
 * whose cost grows with the registry, so callers run it once a burst of publishes is over.
 * @example const { generation } = await flushIndexes(ctx); // null: nothing was pending
 */
export async function flushIndexes(
  context: PipelineContext,
): Promise<{ generation: number | null; invalidate: readonly string[] }> {
  const { ctx, log } = withWriteLog(context);
  const catalog = await loadCatalog(ctx.intake);
  if (catalog.outdated)
    return { generation: (await rebuildAll(ctx)).generation, invalidate: log.mutableKeys() };
  if (!catalog.indexesPending) return { generation: null, invalidate: [] };
  const generation = await commitGeneration(ctx, catalog, new Set());
  return { generation, invalidate: log.mutableKeys() };
}
