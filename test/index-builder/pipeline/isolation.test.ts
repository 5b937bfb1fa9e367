/**
 * One submission cannot take a batch down with it, and a batch decides as one submission per batch would.
 * - A store refusing one submission's files for good, or failing unexpectedly, rejects that submission with
 *   an outcome; the rest of the batch publishes and incoming/ is left empty (a thrown error would leave the
 *   upload in incoming/ and fail every later batch on it, on AWS until the message is dead-lettered).
 * - A plugin whose documents cannot be rendered rejects what changed it, not the batch.
 * - Ownership and version identity are decided within a batch exactly as across batches.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FsStore } from '../../../adapters/fs-store.ts';
import { forgetBins } from '../../../index-builder/catalog.ts';
import { StoreError } from '../../../index-builder/errors.ts';
import {
  actionOrderKey,
  CATALOG_META_KEY,
  statusKey,
  submissionIdFromBytes,
} from '../../../index-builder/layout.ts';
import { MAX_SCAN_VULNERABILITIES } from '../../../index-builder/manifest/schema.ts';
import type { PluginDocument, VersionRecord } from '../../../index-builder/model.ts';
import {
  type BatchStep,
  processSubmissions,
  rebuildRegistry,
  type SubmissionFailure,
  type SubmissionOutcome,
} from '../../../index-builder/pipeline/index.ts';
import { MAX_PLUGIN_PAGE_LENGTH } from '../../../index-builder/render/html.ts';
import type { StoredObject } from '../../../index-builder/store.ts';
import { submitAction, upload, vouchedLog } from '../../support/actions.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  sha256,
  type TestRegistry,
  testKey,
  validManifest,
} from '../../support/fixtures.ts';

/** Each plugin page the pipeline renders: its plugin, the bound it was given, and whether it was refused. */
const pages = vi.hoisted(() => [] as { name: string; bound?: number; refused?: boolean }[]);
vi.mock('../../../index-builder/render/html.ts', async (importOriginal) => {
  const html = await importOriginal<typeof import('../../../index-builder/render/html.ts')>();
  return {
    ...html,
    renderPluginPage: (...args: Parameters<typeof html.renderPluginPage>) => {
      const page: (typeof pages)[number] = { name: args[0].name, bound: args[2]?.maxLength };
      pages.push(page);
      try {
        return html.renderPluginPage(...args);
      } catch (error) {
        page.refused = (error as { code?: string }).code === 'RENDER_TOO_LARGE';
        throw error;
      }
    },
  };
});

const incoming = (registry: TestRegistry): string[] =>
  [...registry.intake.objects.keys()].filter((k) => k.startsWith('incoming/'));

function pluginDoc(registry: TestRegistry, name: string): PluginDocument {
  return JSON.parse(
    new TextDecoder().decode(registry.site.objects.get(`plugins/${name}/index.json`)?.body),
  ) as PluginDocument;
}

const statusOf = (outcomes: readonly SubmissionOutcome[]) =>
  outcomes.map((o) => [o.plugin, o.version, o.status, ...o.problems.map((p) => p.code)]);

const codesOf = (outcomes: readonly SubmissionOutcome[]) =>
  outcomes.map((o) => [o.status, ...o.problems.map((p) => p.code)]);

/** Makes the site store fail every write of a key containing `marker`, with `error`. */
function poison(registry: TestRegistry, marker: string, error: () => Error): void {
  const put = registry.site.put.bind(registry.site);
  registry.site.put = async (key, body, options) => {
    if (key.includes(marker)) throw error();
    return put(key, body, options);
  };
}

/**
 * A registry whose site refuses for good every file of a plugin named `poisoned…`, and whose intake store fails
 * its first move of an upload to rejected/ (a store unavailable for a moment), after its outcome is recorded.
 */
async function failingMoveOnce(): Promise<TestRegistry> {
  const registry = await makeRegistry();
  poison(registry, 'poisoned', () => new StoreError('STORE_REFUSED', 'k', 'File name too long'));
  const put = registry.intake.put.bind(registry.intake);
  let failMove = true;
  registry.intake.put = async (key, body, options) => {
    if (failMove && key.startsWith('rejected/')) {
      failMove = false;
      throw new StoreError('STORE_IO', key, 'connection reset');
    }
    return put(key, body, options);
  };
  return registry;
}

/** The context of `registry`, its failures told to the returned list (the operator's log). */
function failuresTold(registry: TestRegistry) {
  const failures: SubmissionFailure[] = [];
  const context = { ...registry.context, onSubmissionFailure: (f: SubmissionFailure) => failures.push(f) };
  return { failures, context };
}

/**
 * The outcome recorded under status/, as the publisher reads it; one not recorded fails here, so a check of
 * what the text leaves out never passes on no text.
 */
const recordedText = (registry: TestRegistry, outcome: SubmissionOutcome | undefined): string => {
  const recorded = registry.intake.objects.get(statusKey(outcome?.id ?? ''));
  expect(recorded, `the outcome of ${outcome?.submission}`).toBeDefined();
  return new TextDecoder().decode(recorded?.body);
};

describe('when a store cannot write one submission of a batch', () => {
  it.each([
    ['refuses it for good', () => new StoreError('STORE_REFUSED', 'k', 'File name too long')],
    ['fails unexpectedly', () => new TypeError('Cannot read properties of undefined')],
  ])('rejects that one when the store %s, and publishes the rest', async (_, error) => {
    const registry = await makeRegistry();
    poison(registry, 'poisoned', error);
    const { failures, context } = failuresTold(registry);
    const [, poisoned] = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'first-plugin' }) }),
      await makeBundle({
        manifest: validManifest({ name: 'poisoned-plugin' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('bytes') }],
      }),
      await makeBundle({ manifest: validManifest({ name: 'last-plugin' }) }),
    );

    const result = await processSubmissions(context);

    expect(statusOf(result.outcomes)).toEqual([
      ['first-plugin', '1.0.0', 'accepted'],
      ['poisoned-plugin', '1.0.0', 'rejected', 'SUBMISSION_WRITE_FAILED'],
      ['last-plugin', '1.0.0', 'accepted'],
    ]);
    // The outcome says what happened; what failed, whole, is the operator's (its log), not the publisher's.
    const rejected = result.outcomes[1];
    expect(recordedText(registry, rejected)).not.toContain(error().message);
    expect(failures).toEqual([
      { submission: poisoned, id: rejected?.id, code: 'SUBMISSION_WRITE_FAILED', error: error() },
    ]);
    expect(incoming(registry)).toEqual([]);
    expect(result.changedPlugins).toEqual(['first-plugin', 'last-plugin']);
    expect(registry.site.objects.has('plugins/poisoned-plugin/index.json')).toBe(false);
    const index = JSON.parse(new TextDecoder().decode(registry.site.objects.get('index.json')?.body)) as {
      plugins: { name: string }[];
    };
    expect(index.plugins.map((p) => p.name)).toEqual(['first-plugin', 'last-plugin']);

    // The next batch is not held up by it.
    await registry.submit(await makeBundle({ manifest: validManifest({ name: 'later-plugin' }) }));
    expect(statusOf((await processSubmissions(registry.context)).outcomes)).toEqual([
      ['later-plugin', '1.0.0', 'accepted'],
    ]);
  });

  it('fails the batch, keeping every upload for the retry, when the store is only unavailable', async () => {
    const registry = await makeRegistry();
    poison(registry, 'flaky', () => new StoreError('STORE_IO', 'k', 'connection reset'));
    const keys = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'flaky-plugin' }) }),
      await makeBundle({ manifest: validManifest({ name: 'other-plugin' }) }),
    );
    await expect(processSubmissions(registry.context)).rejects.toMatchObject({ code: 'STORE_IO' });
    expect(incoming(registry)).toEqual(keys);
  });
});

describe('when the store refuses some outcome records of a batch', () => {
  it('tells the operator of each failed submission whose outcome it recorded, and of none other', async () => {
    // Prepare: two submissions whose files the site refuses for good, and an intake store that refuses the
    // outcome record of one of them (its plugin's name in the record).
    const registry = await makeRegistry();
    poison(registry, 'poisoned', () => new StoreError('STORE_REFUSED', 'k', 'File name too long'));
    const put = registry.intake.put.bind(registry.intake);
    const refused = () => new StoreError('STORE_REFUSED', 'status', 'status record refused');
    let refuseOutcomes = true;
    registry.intake.put = async (key, body, options) => {
      const text = key.startsWith('status/') ? new TextDecoder().decode(body) : '';
      if (refuseOutcomes && text.includes('poisoned-unrecordable')) throw refused();
      return put(key, body, options);
    };
    const { failures, context } = failuresTold(registry);
    const [recorded, unrecordable] = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'poisoned-recorded' }) }),
      await makeBundle({ manifest: validManifest({ name: 'poisoned-unrecordable' }) }),
    );

    // Act
    await expect(processSubmissions(context)).rejects.toMatchObject({ code: 'STORE_REFUSED' });

    // Assess: the first one's outcome is recorded and its upload gone from incoming/, where no retry meets it
    // again: the operator is told of it now or never. The other's outcome is not recorded: not told.
    const [first] = failures;
    expect(failures).toEqual([
      {
        submission: recorded,
        id: expect.any(String),
        code: 'SUBMISSION_WRITE_FAILED',
        error: expect.any(StoreError),
      },
    ]);
    expect(registry.intake.objects.has(statusKey(first?.id ?? ''))).toBe(true);
    expect(incoming(registry)).toEqual([unrecordable]);

    // The retry records the other, and tells of it then; the first is not told twice.
    refuseOutcomes = false;
    failures.length = 0;
    const retry = await processSubmissions(context);
    expect(statusOf(retry.outcomes)).toEqual([
      ['poisoned-unrecordable', '1.0.0', 'rejected', 'SUBMISSION_WRITE_FAILED'],
    ]);
    expect(failures).toEqual([
      {
        submission: unrecordable,
        id: retry.outcomes[0]?.id,
        code: 'SUBMISSION_WRITE_FAILED',
        error: expect.any(StoreError),
      },
    ]);
  });
});

describe('when the outcomes step fails after recording a failed submission, before its upload left incoming/', () => {
  it('tells the operator of it once: its retry finds that very outcome recorded and keeps it', async () => {
    // Prepare: a submission whose files the site refuses for good, and an intake store that fails its move
    // to rejected/ once, after its outcome is recorded (failingMoveOnce).
    const registry = await failingMoveOnce();
    const { failures, context } = failuresTold(registry);
    const [key] = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'poisoned-once' }) }),
    );

    // Act: the batch fails in its outcomes step, then its retry (the queue's redelivery) publishes.
    await expect(processSubmissions(context)).rejects.toMatchObject({ code: 'STORE_IO' });
    const told = [...failures];
    const retry = await processSubmissions(context);

    // Assess: told once, by the run that recorded the outcome; the retry moved the upload out of incoming/
    // and returned that outcome, recorded once.
    expect(told).toEqual([
      {
        submission: key,
        id: expect.any(String),
        code: 'SUBMISSION_WRITE_FAILED',
        error: expect.any(StoreError),
      },
    ]);
    expect(failures).toEqual(told);
    expect(statusOf(retry.outcomes)).toEqual([
      ['poisoned-once', '1.0.0', 'rejected', 'SUBMISSION_WRITE_FAILED'],
    ]);
    expect(retry.outcomes[0]?.id).toBe(told[0]?.id);
    expect(incoming(registry)).toEqual([]);
  });

  it('records and tells the retry its own failure when it fails the submission otherwise', async () => {
    // Prepare: as above, the outcome recorded and the move failing once; then the checks break on the
    // plugin's document instead (SUBMISSION_UNREADABLE), a failure nobody was told of.
    const registry = await failingMoveOnce();
    const { failures, context } = failuresTold(registry);
    await registry.submit(await makeBundle({ manifest: validManifest({ name: 'poisoned-twice' }) }));
    await expect(processSubmissions(context)).rejects.toMatchObject({ code: 'STORE_IO' });
    const broken = new TypeError('unexpected shape');
    const get = registry.site.get.bind(registry.site);
    registry.site.get = async (k) => {
      if (k === 'plugins/poisoned-twice/index.json') throw broken;
      return get(k);
    };

    // Act
    const retry = await processSubmissions(context);

    // Assess: the first failure told by the first run, the second by the retry, which recorded it.
    expect(failures.map((f) => [f.code, f.error])).toEqual([
      ['SUBMISSION_WRITE_FAILED', expect.any(StoreError)],
      ['SUBMISSION_UNREADABLE', broken],
    ]);
    expect(codesOf(retry.outcomes)).toEqual([['rejected', 'SUBMISSION_UNREADABLE']]);
    expect(recordedText(registry, retry.outcomes[0])).toContain('SUBMISSION_UNREADABLE');
  });
  it('keeps its rejection when the retry words it otherwise (a time in its text), the same codes', async () => {
    // Prepare: an action made long before the registry's clock, refused ACTION_EXPIRED, whose text names the
    // batch's time (the clock steps a second each reading); the move to rejected/ fails once.
    const registry = await failingMoveOnce();
    const publisher = await testKey('publisher');
    const { key } = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'old' },
      publisher,
      { now: new Date('2026-09-01T00:00:00Z') },
    );
    const puts: string[] = [];
    const put = registry.intake.put.bind(registry.intake);
    registry.intake.put = async (k, body, options) => {
      if (k.startsWith('status/')) puts.push(k);
      return put(k, body, options);
    };
    await expect(processSubmissions(registry.context)).rejects.toMatchObject({ code: 'STORE_IO' });
    const recorded = registry.intake.objects.get(puts[0] ?? '');
    expect(recorded?.body).toBeDefined();
    const first = new TextDecoder().decode(recorded?.body);

    // Act
    const retry = await processSubmissions(registry.context);

    // Assess: the retry judged it anew (another time in its text), found that rejection recorded, kept it
    // as it was and moved the upload; the record was written once.
    expect(codesOf(retry.outcomes)).toEqual([['rejected', 'ACTION_EXPIRED']]);
    expect(retry.outcomes[0]?.submission).toBe(key);
    expect(puts).toHaveLength(1);
    expect(recordedText(registry, retry.outcomes[0])).toBe(first);
    expect(incoming(registry)).toEqual([]);
  });
});

describe('when the registry fails a submission', () => {
  it("records what happened in stable terms, and tells its operator the store's own error", async () => {
    // Prepare: the filesystem store as the site, a file where the plugin's folder goes (ENOTDIR: for good).
    const folder = await mkdtemp(path.join(tmpdir(), 'plugindex-isolation-'));
    try {
      const registry = await makeRegistry();
      const { failures, context } = failuresTold(registry);
      await mkdir(path.join(folder, 'plugins'), { recursive: true });
      await writeFile(path.join(folder, 'plugins', 'poisoned-plugin'), 'not a folder');
      const [poisoned] = await registry.submit(
        await makeBundle({ manifest: validManifest({ name: 'poisoned-plugin' }) }),
        await makeBundle({ manifest: validManifest({ name: 'healthy-plugin' }) }),
      );

      // Act
      const result = await processSubmissions({ ...context, site: new FsStore(folder) });

      // Assess: the outcome names the code, the submission and what to do, and nothing of the store's.
      expect(statusOf(result.outcomes)).toEqual([
        ['poisoned-plugin', '1.0.0', 'rejected', 'SUBMISSION_WRITE_FAILED'],
        ['healthy-plugin', '1.0.0', 'accepted'],
      ]);
      const rejected = result.outcomes[0] as SubmissionOutcome;
      expect(rejected.problems).toEqual([
        {
          code: 'SUBMISSION_WRITE_FAILED',
          path: 'bundle:',
          message:
            "the registry failed writing its files; its operator's log has the details, under this submission's id",
          expected: expect.stringContaining('please report this to the registry operator'),
        },
      ]);
      const recorded = recordedText(registry, rejected);
      expect(recorded).toContain(rejected.id);
      expect(recorded).not.toContain(folder);
      expect(recorded).not.toContain('ENOTDIR');
      // The operator is told the store's error itself, under the submission's key and id.
      expect(failures).toEqual([
        {
          submission: poisoned,
          id: rejected.id,
          code: 'SUBMISSION_WRITE_FAILED',
          error: expect.any(StoreError),
        },
      ]);
      expect(failures[0]?.error).toMatchObject({
        code: 'STORE_REFUSED',
        message: expect.stringContaining(path.join(folder, 'plugins', 'poisoned-plugin')),
      });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('when a plugin document cannot be rendered', () => {
  it('rejects the submission that changed it and publishes the rest of the batch', async () => {
    const registry = await makeRegistry();
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    await processSubmissions(registry.context);
    // A document published before text was checked, holding what no renderer may emit.
    const doc = pluginDoc(registry, 'demo-plugin');
    const planted = { ...doc, description: 'broken \ud800 text' };
    const stored = registry.site.objects.get('plugins/demo-plugin/index.json') as StoredObject;
    const body = encode(JSON.stringify(planted));
    registry.site.objects.set('plugins/demo-plugin/index.json', { ...stored, body });
    // The registry's own, as the catalog records it (else a batch refuses it as written by someone else:
    // published-records.test.ts): as a run about to publish it records it (pipeline/published.ts).
    const meta = registry.intake.objects.get(CATALOG_META_KEY) as StoredObject;
    const recorded = `writing\tplugins/demo-plugin/index.json\t${sha256(body)}\n`;
    registry.intake.objects.set(CATALOG_META_KEY, {
      ...meta,
      body: encode(new TextDecoder().decode(meta.body) + recorded),
    });

    await registry.submit(
      // An older version: the document keeps describing 2.0.0, with the planted text.
      await makeBundle({ manifest: validManifest({ version: '1.0.0' }) }),
      await makeBundle({ manifest: validManifest({ name: 'healthy-plugin' }) }),
    );
    const { failures, context } = failuresTold(registry);
    const result = await processSubmissions(context);

    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', 'SUBMISSION_WRITE_FAILED'],
      ['healthy-plugin', '1.0.0', 'accepted'],
    ]);
    expect(result.outcomes[0]?.problems[0]?.message).toMatch(/rendering the plugin's documents/);
    // Why it could not be rendered is the operator's to read (the document is theirs to mend).
    expect(failures).toEqual([
      expect.objectContaining({
        code: 'SUBMISSION_WRITE_FAILED',
        error: expect.objectContaining({ code: 'RENDER_UNSAFE_TEXT' }),
      }),
    ]);
    const told = failures[0]?.error;
    expect(told).toBeInstanceOf(Error);
    expect(recordedText(registry, result.outcomes[0])).not.toContain((told as Error).message);
    expect(incoming(registry)).toEqual([]);
    expect(pluginDoc(registry, 'demo-plugin').versions.map((v) => v.version)).toEqual(['2.0.0']);
  });
});

/**
 * A version as a hostile manifest may make it: 256 scan findings, each id and summary of `<`, which the page
 * shows escaped (`&lt;`, four times the characters): about 1.2 MB of page a version, from a 256 KB manifest.
 */
function bloated(record: VersionRecord, version: string): VersionRecord {
  const vulnerabilities = Array.from({ length: MAX_SCAN_VULNERABILITIES }, (_, i) => ({
    id: `${i}`.padEnd(128, '<'),
    severity: 'critical' as const,
    summary: '<'.repeat(800),
  }));
  return { ...record, version, security_scan: { status: 'vulnerable', vulnerabilities } };
}

/** Puts `doc` where the plugin's document is, as the registry's own (as a run about to publish records it). */
/**
 * demo-plugin@2.0.0 published, then its document planted with `count` versions of the most findings below it
 * (1.0.0 and up, some 1.15 M characters of page each), as the registry's own.
 */
async function withBloatedVersions(registry: TestRegistry, count: number): Promise<void> {
  await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
  await processSubmissions(registry.context);
  const doc = pluginDoc(registry, 'demo-plugin');
  const first = doc.versions[0] as VersionRecord;
  const versions = Array.from({ length: count }, (_, i) => bloated(first, `1.0.${count - 1 - i}`));
  plant(registry, { ...doc, versions: [first, ...versions] });
}

function plant(registry: TestRegistry, doc: PluginDocument): void {
  const key = `plugins/${doc.name}/index.json`;
  const stored = registry.site.objects.get(key) as StoredObject;
  const body = encode(JSON.stringify(doc));
  registry.site.objects.set(key, { ...stored, body });
  const meta = registry.intake.objects.get(CATALOG_META_KEY) as StoredObject;
  registry.intake.objects.set(CATALOG_META_KEY, {
    ...meta,
    body: encode(`${new TextDecoder().decode(meta.body)}writing\t${key}\t${sha256(body)}\n`),
  });
}

describe('when a plugin would grow past what its page may hold', () => {
  it("refuses the publish that grows it (PLUGIN_TOO_LARGE), publishes the rest, and applies the operator's action all the same", async () => {
    const operator = await testKey('operator');
    const registry = await makeRegistry({
      operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
    });
    // 40 such versions: some 46 M characters of page, past the 32 Mi a plugin's page may hold (a document
    // of before the bound, as no publish can make one now).
    await withBloatedVersions(registry, 40);

    await registry.submit(
      await makeBundle({ manifest: validManifest({ version: '3.0.0' }) }),
      await makeBundle({ manifest: validManifest({ name: 'healthy-plugin' }) }),
    );
    await submitAction(
      registry.intake,
      { action: 'remove', plugin: 'demo-plugin', version: '2.0.0', reason: 'malware' },
      operator,
    );
    pages.length = 0;
    const result = await processSubmissions(registry.context);

    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE'],
      ['healthy-plugin', '1.0.0', 'accepted'],
      ['demo-plugin', '2.0.0', 'accepted'],
    ]);
    expect(result.outcomes[0]?.problems[0]?.message).toMatch(/more than 33554432 characters/);
    expect(incoming(registry)).toEqual([]);
    const after = pluginDoc(registry, 'demo-plugin');
    expect(after.versions.map((v) => v.version)).not.toContain('3.0.0');
    expect(after.versions[0]).toMatchObject({ version: '2.0.0', removed: { reason: 'malware' } });
    // Two bounded renders, each refused as soon as it is past the bound (render/html.test.ts), and one whole,
    // published: not the seconds of rendering hundreds of megabytes.
    const bounded = { name: 'demo-plugin', bound: MAX_PLUGIN_PAGE_LENGTH, refused: true };
    expect(pages.filter((page) => page.name === 'demo-plugin')).toEqual([
      bounded,
      bounded,
      { name: 'demo-plugin' },
    ]);
  }, 60_000);
});

describe('when an owner acts on a plugin grown past its bound before there was one', () => {
  it('refuses what grows it (a publish, an advisory) and applies a yank, which grows it by a line', async () => {
    const registry = await makeRegistry();
    await withBloatedVersions(registry, 40);
    const publisher = await testKey('publisher');

    await registry.submit(await makeBundle({ manifest: validManifest({ version: '3.0.0' }) }));
    await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.39', reason: 'broken' },
      publisher,
    );
    await submitAction(
      registry.intake,
      {
        action: 'advisory-add',
        plugin: 'demo-plugin',
        advisory: { id: 'PDX-2026-0002', severity: 'high', affected: '<2.0.0', summary: 'a flaw' },
      },
      publisher,
    );
    const result = await processSubmissions(registry.context);

    // The owner's yank of a version of its own plugin holds, the page past the bound as it was.
    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE'],
      ['demo-plugin', '1.0.39', 'accepted'],
      ['demo-plugin', undefined, 'rejected', 'PLUGIN_TOO_LARGE'],
    ]);
    const after = pluginDoc(registry, 'demo-plugin');
    expect(after.versions.find((v) => v.version === '1.0.39')).toMatchObject({
      yanked: true,
      yanked_reason: 'broken',
    });
    expect(after.advisories ?? []).toEqual([]);
  }, 60_000);
});

/** The keys of the published store under `prefix`, sorted. */
const keysUnder = (registry: TestRegistry, prefix: string): string[] =>
  [...registry.site.objects.keys()].filter((k) => k.startsWith(prefix)).sort();

/** Every file demo-plugin's document points at (manifests, signatures, hosted artifacts) that is not there. */
function missingReferences(registry: TestRegistry): string[] {
  const base = 'https://registry.example.com/';
  const urls = pluginDoc(registry, 'demo-plugin').versions.flatMap((v) => [
    v.manifest_url,
    v.manifest_signature_url,
    ...v.artifacts.filter((a) => a.hosted).map((a) => a.url),
  ]);
  return urls.map((url) => url.slice(base.length)).filter((key) => !registry.site.objects.has(key));
}

/** demo-plugin past its bound (40 versions of the most findings: 46 M characters), as the registry's own. */
const pastItsBound = (registry: TestRegistry): Promise<void> => withBloatedVersions(registry, 40);

/** demo-plugin@`version` with two artifacts of its own. */
const withArtifacts = (version: string, name = 'demo-plugin'): Promise<Uint8Array> =>
  makeBundle({
    manifest: validManifest({ name, version }),
    artifacts: [
      { os: 'linux', arch: 'amd64', name: 'tool', body: encode(`tool ${version} amd64`) },
      { os: 'linux', arch: 'arm64', name: 'tool', body: encode(`tool ${version} arm64`) },
    ],
  });

describe('when a batch refuses a version whose files it wrote', () => {
  it('deletes them when its plugin would grow past its bound, and nothing a document points at', async () => {
    const registry = await makeRegistry();
    await pastItsBound(registry);
    const keys = await registry.submit(await withArtifacts('3.0.0'));

    const result = await processSubmissions(registry.context, keys);

    expect(statusOf(result.outcomes)).toEqual([['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE']]);
    expect(keysUnder(registry, 'plugins/demo-plugin/3.0.0/')).toEqual([]);
    expect(keysUnder(registry, 'plugins/demo-plugin/2.0.0/')).toHaveLength(2);
    expect(missingReferences(registry)).toEqual([]);
  }, 60_000);

  it('refuses another upload of its very bytes in the batch as it, rather than say it is already published', async () => {
    const registry = await makeRegistry();
    await pastItsBound(registry);
    const bundle = await withArtifacts('3.0.0');
    const keys = await registry.submit(bundle, bundle);

    const result = await processSubmissions(registry.context, keys);

    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE'],
      ['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE'],
    ]);
    expect(keysUnder(registry, 'plugins/demo-plugin/3.0.0/')).toEqual([]);
    expect(incoming(registry)).toEqual([]);
  }, 60_000);

  it('deletes nothing a document points at, when a record it shows was not taken for the version', async () => {
    // Prepare: demo-plugin@3.0.0 published with its artifacts; then its document past its bound, its 3.0.0
    // record without `source_sha256` (edited by hand), so the judging takes an upload of 3.0.0 for a new version.
    const registry = await makeRegistry();
    await registry.submit(await withArtifacts('3.0.0'));
    await processSubmissions(registry.context);
    const doc = pluginDoc(registry, 'demo-plugin');
    const { source_sha256: _, ...shown } = doc.versions[0] as VersionRecord;
    plant(registry, {
      ...doc,
      versions: [
        shown as VersionRecord,
        ...Array.from({ length: 40 }, (_, i) => bloated(doc.versions[0] as VersionRecord, `1.0.${39 - i}`)),
      ],
    });
    const again = makeBundle({
      manifest: validManifest({ version: '3.0.0', description: 'other bytes' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('tool 3.0.0 amd64') }],
    });

    const result = await processSubmissions(registry.context, await registry.submit(await again));

    expect(statusOf(result.outcomes)).toEqual([['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE']]);
    expect(missingReferences(registry)).toEqual([]);
  }, 60_000);

  it('deletes them in the retry of a run that died while it deleted them', async () => {
    const registry = await makeRegistry();
    await pastItsBound(registry);
    const keys = await registry.submit(await withArtifacts('3.0.0'));
    // The run dies at its second delete: the store is unavailable there.
    const remove = registry.site.delete.bind(registry.site);
    let deletes = 0;
    registry.site.delete = async (key, options) => {
      if (key.startsWith('plugins/demo-plugin/3.0.0/') && ++deletes === 2)
        throw new StoreError('STORE_IO', key, 'connection reset');
      return remove(key, options);
    };
    await expect(processSubmissions(registry.context, keys)).rejects.toMatchObject({ code: 'STORE_IO' });
    registry.site.delete = remove;
    forgetBins(registry.intake); // the retry is another process

    const result = await processSubmissions(registry.context, keys);

    expect(statusOf(result.outcomes)).toEqual([['demo-plugin', '3.0.0', 'rejected', 'PLUGIN_TOO_LARGE']]);
    expect(keysUnder(registry, 'plugins/demo-plugin/3.0.0/')).toEqual([]);
    expect(missingReferences(registry)).toEqual([]);
    expect(incoming(registry)).toEqual([]);
  }, 60_000);

  it('deletes those written when the store refused one of them for good', async () => {
    const registry = await makeRegistry();
    poison(
      registry,
      'demo-plugin/1.0.0/artifacts/linux-arm64/',
      () => new StoreError('STORE_REFUSED', 'k', 'refused'),
    );
    const keys = await registry.submit(
      await withArtifacts('1.0.0'),
      await withArtifacts('1.0.0', 'other-plugin'),
    );

    const result = await processSubmissions(registry.context, keys);

    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', 'SUBMISSION_WRITE_FAILED'],
      ['other-plugin', '1.0.0', 'accepted'],
    ]);
    expect(keysUnder(registry, 'plugins/demo-plugin/')).toEqual([]);
    expect(keysUnder(registry, 'plugins/other-plugin/1.0.0/')).toHaveLength(4);
  });
});

/** A manifest of `version` carrying as many findings as a manifest may, each shown escaped: about 1.1 MB of page. */
function bloatedManifest(version: string): Record<string, unknown> {
  const vulnerabilities = Array.from({ length: MAX_SCAN_VULNERABILITIES }, (_, i) => ({
    id: `${i}`.padEnd(128, '<'),
    severity: 'critical',
    summary: '<'.repeat(700),
  }));
  return validManifest({ version, security_scan_results: { status: 'vulnerable', vulnerabilities } });
}

/** Runs a batch of `keys` that dies (a process killed: nothing of it runs after) once its entries are logged. */
async function diesOnceLogged(registry: TestRegistry, keys: string[]): Promise<void> {
  const onStep = (step: BatchStep): void => {
    if (step === 'logged') throw new Error('killed after the log');
  };
  await expect(processSubmissions({ ...registry.context, onStep }, keys)).rejects.toThrow(
    'killed after the log',
  );
  forgetBins(registry.intake); // the retry is another process
}

const versionsOf = (registry: TestRegistry): string[] =>
  pluginDoc(registry, 'demo-plugin').versions.map((v) => v.version);

describe('when a run that died logged a publish, and a new one in the retry grows the plugin past its bound', () => {
  it('publishes the logged one, as logged, and refuses only the new one (PLUGIN_TOO_LARGE)', async () => {
    // Prepare: demo-plugin a page just under its bound (29 versions of the most findings: 32.6 M
    // characters of 32 Mi); a run logs 3.0.0 (which fits) and dies before any document shows it.
    const registry = await makeRegistry();
    await withBloatedVersions(registry, 29);
    const logged = await registry.submit(await makeBundle({ manifest: validManifest({ version: '3.0.0' }) }));
    await diesOnceLogged(registry, logged);
    const grows = await registry.submit(await makeBundle({ manifest: bloatedManifest('4.0.0') }));

    // Act: the retry takes both.
    const result = await processSubmissions(registry.context, [...logged, ...grows]);

    // Assess: the logged publish stands, with the entry the dead run gave it; the new one alone is refused.
    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '3.0.0', 'accepted'],
      ['demo-plugin', '4.0.0', 'rejected', 'PLUGIN_TOO_LARGE'],
    ]);
    expect(result.outcomes[0]?.seq).toBe(1);
    expect(versionsOf(registry)).toContain('3.0.0');
    expect(versionsOf(registry)).not.toContain('4.0.0');
    // The refused version's files are gone; the logged one's stay, as its document shows them.
    expect(keysUnder(registry, 'plugins/demo-plugin/4.0.0/')).toEqual([]);
    expect(missingReferences(registry)).toEqual([]);
    expect(keysUnder(registry, 'plugins/demo-plugin/3.0.0/')).toEqual([
      'plugins/demo-plugin/3.0.0/manifest.json',
      'plugins/demo-plugin/3.0.0/manifest.json.asc',
    ]);
    const log = await vouchedLog(registry.site, registry.registryKey.publicKey);
    expect(log.map((e) => [e.type, e.version])).toEqual([
      ['publish', '2.0.0'],
      ['publish', '3.0.0'],
    ]);
    expect(incoming(registry)).toEqual([]);
  }, 120_000);

  it("fails the batch, refusing nothing, when the plugin's published document no longer renders", async () => {
    // Prepare: a run logs 1.0.0 and dies; then the plugin's document is one that cannot be rendered (text
    // published before text was checked, as the registry's own), and the older versions keep it describing
    // 2.0.0 with that text.
    const registry = await makeRegistry();
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    await processSubmissions(registry.context);
    const logged = await registry.submit(await makeBundle({ manifest: validManifest({ version: '1.0.0' }) }));
    await diesOnceLogged(registry, logged);
    plant(registry, { ...pluginDoc(registry, 'demo-plugin'), description: 'broken \ud800 text' });
    const other = await registry.submit(await makeBundle({ manifest: validManifest({ version: '1.1.0' }) }));
    const logBefore = await vouchedLog(registry.site, registry.registryKey.publicKey);

    // Act, Assess: the log holds 1.0.0, which no document can show until the operator mends the document:
    // no outcome refuses it (before, both were rejected, SUBMISSION_WRITE_FAILED, the entry left). The error
    // names the logged publish and what to do, the render's own kept as its cause.
    const { failures, context } = failuresTold(registry);
    const failed = processSubmissions(context, [...logged, ...other]);
    await expect(failed).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_FAILED',
      message: expect.stringMatching(
        /^the publish of demo-plugin@1\.0\.0 \(submission .*entry 1, .*rendering the plugin's documents.*RENDER_UNSAFE_TEXT.*mend what failed, then run the batch again$/,
      ),
      cause: { name: 'RenderError', code: 'RENDER_UNSAFE_TEXT' },
    });
    expect(failures).toEqual([]);
    expect(incoming(registry).sort()).toEqual([...logged, ...other].sort());
    expect(await vouchedLog(registry.site, registry.registryKey.publicKey)).toEqual(logBefore);
  });
});

describe('when a run that died logged an action and wrote its document, which no longer renders', () => {
  it('fails the batch LOGGED_PUBLISH_FAILED naming the action and what to do, refusing nothing, and publishes it once done', async () => {
    // Prepare: demo-plugin@1.0.0 published; a run logs its owner's yank, writes the plugin's document and
    // dies before its catalog records it. That document holds text the render refuses (a release before
    // text was checked wrote it, as the registry's own): the retry resumes the yank, which the document
    // shows already, so it only catches the document up, and its render fails.
    const registry = await makeRegistry();
    await registry.submit(await makeBundle());
    await processSubmissions(registry.context);
    const yank = await submitAction(
      registry.intake,
      { action: 'yank', plugin: 'demo-plugin', version: '1.0.0', reason: 'corrupts the cache' },
      await testKey('publisher'),
    );
    const dies = (step: BatchStep): void => {
      if (step === 'plugin-documents') throw new Error('killed after the documents');
    };
    await expect(processSubmissions({ ...registry.context, onStep: dies })).rejects.toThrow(
      'killed after the documents',
    );
    forgetBins(registry.intake); // the retry is another process
    const written = pluginDoc(registry, 'demo-plugin');
    expect(written.versions[0]?.yanked).toBe(true);
    plant(registry, { ...written, description: 'broken \ud800 text' });
    const other = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'other-plugin' }) }),
    );
    const logBefore = await vouchedLog(registry.site, registry.registryKey.publicKey);

    // Act, Assess: the batch fails naming the resumed yank, its submission and entry, the render's refusal
    // and what to do (before: the RenderError alone, no word of the entry every later batch fails on).
    const { failures, context } = failuresTold(registry);
    for (let batch = 0; batch < 2; batch++) {
      await expect(processSubmissions(context)).rejects.toMatchObject({
        name: 'PlugindexError',
        code: 'LOGGED_PUBLISH_FAILED',
        message: expect.stringMatching(
          new RegExp(
            `^the yank action on demo-plugin@1\\.0\\.0 \\(submission ${submissionIdFromBytes(yank.key, yank.bytes)}, ${yank.key}\\) is in the transparency log \\(entry 1, appended by a run that died\\) and the registry failed rendering the plugin's documents \\(RenderError RENDER_UNSAFE_TEXT: .*plugins/demo-plugin/index\\.json.*plugindex rebuild`,
          ),
        ),
        cause: { name: 'RenderError', code: 'RENDER_UNSAFE_TEXT' },
      });
      forgetBins(registry.intake);
    }
    expect(failures).toEqual([]);
    expect(incoming(registry).sort()).toEqual([yank.key, ...other].sort());
    expect(await vouchedLog(registry.site, registry.registryKey.publicKey)).toEqual(logBefore);

    // A rebuild run before the document is put right refuses, naming it (before: the RenderError alone,
    // which named no plugin), and commits nothing.
    const snapshot = registry.site.objects.get('snapshot.json')?.body;
    await expect(rebuildRegistry(registry.context)).rejects.toMatchObject({
      name: 'PlugindexError',
      code: 'PUBLISHED_DOCUMENT_UNRENDERABLE',
      message: expect.stringMatching(
        /^plugins\/demo-plugin\/index\.json as published cannot be rendered \(RenderError RENDER_UNSAFE_TEXT: .*put that document right, then run the rebuild again$/,
      ),
      cause: { name: 'RenderError', code: 'RENDER_UNSAFE_TEXT' },
    });
    expect(registry.site.objects.get('snapshot.json')?.body).toEqual(snapshot);

    // Once the operator does what it says (the text put right, the document taken as it is by a rebuild),
    // the next batch records the yank at its entry and publishes the other upload.
    const key = 'plugins/demo-plugin/index.json';
    const stored = registry.site.objects.get(key) as StoredObject;
    registry.site.objects.set(key, { ...stored, body: encode(JSON.stringify(written)) });
    await rebuildRegistry(registry.context);
    forgetBins(registry.intake);
    const mended = await processSubmissions(registry.context);
    expect(mended.outcomes.map((o) => [o.plugin, o.status, o.seq])).toEqual([
      ['demo-plugin', 'accepted', 1],
      ['other-plugin', 'accepted', 2],
    ]);
    expect(pluginDoc(registry, 'demo-plugin')).toMatchObject({ description: written.description });
    expect(pluginDoc(registry, 'demo-plugin').versions[0]?.yanked).toBe(true);
    expect(incoming(registry)).toEqual([]);
  });
});

describe('when a run that died logged a publish and wrote its document, which no longer renders', () => {
  it('fails the batch LOGGED_PUBLISH_FAILED naming the publish and what to do, refusing nothing', async () => {
    // Prepare: demo-plugin@1.0.0 published; a run logs 2.0.0, writes its files and the plugin's document
    // and dies before its catalog records it; that document holds text the render refuses (as above). The
    // retry finds 2.0.0 published already, resumed at its entry, and only catches the document up.
    const registry = await makeRegistry();
    await registry.submit(await makeBundle());
    await processSubmissions(registry.context);
    const [logged] = await registry.submit(
      await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }),
    );
    const dies = (step: BatchStep): void => {
      if (step === 'plugin-documents') throw new Error('killed after the documents');
    };
    await expect(processSubmissions({ ...registry.context, onStep: dies })).rejects.toThrow(
      'killed after the documents',
    );
    forgetBins(registry.intake); // the retry is another process
    const written = pluginDoc(registry, 'demo-plugin');
    expect(written.versions.map((v) => v.version)).toEqual(['2.0.0', '1.0.0']);
    plant(registry, { ...written, description: 'broken \ud800 text' });
    const logBefore = await vouchedLog(registry.site, registry.registryKey.publicKey);

    // Act, Assess: before, the RenderError alone.
    const { failures, context } = failuresTold(registry);
    await expect(processSubmissions(context)).rejects.toMatchObject({
      name: 'PlugindexError',
      code: 'LOGGED_PUBLISH_FAILED',
      message: expect.stringMatching(
        /^the publish of demo-plugin@2\.0\.0 \(submission .*\) is in the transparency log \(entry 1, appended by a run that died\) and the registry failed rendering the plugin's documents \(RenderError RENDER_UNSAFE_TEXT: .*; put its published document plugins\/demo-plugin\/index\.json right and take it as it is \(plugindex rebuild\), then run the batch again$/,
      ),
      cause: { name: 'RenderError', code: 'RENDER_UNSAFE_TEXT' },
    });
    expect(failures).toEqual([]);
    expect(incoming(registry)).toEqual([logged]);
    expect(await vouchedLog(registry.site, registry.registryKey.publicKey)).toEqual(logBefore);
  });
});

describe('when a run that died logged a publish, and the store refuses its files for good on the retry', () => {
  it('fails the batch, refusing nothing, and publishes it once the store takes them', async () => {
    // Prepare: a run logs demo-plugin@3.0.0 (its files written) and dies; then the store refuses them.
    const registry = await makeRegistry();
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    await processSubmissions(registry.context);
    const bundle = await makeBundle({
      manifest: validManifest({ version: '3.0.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('tool 3.0.0') }],
    });
    const logged = await registry.submit(bundle);
    await diesOnceLogged(registry, logged);
    const put = registry.site.put.bind(registry.site);
    poison(registry, 'demo-plugin/3.0.0/', () => new StoreError('STORE_REFUSED', 'k', 'File name too long'));
    const other = await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'other-plugin' }) }),
    );
    const logBefore = await vouchedLog(registry.site, registry.registryKey.publicKey);

    // Act, Assess: its entry stands, so it is not refused (before: SUBMISSION_WRITE_FAILED, the entry left
    // for a version no document shows); the batch is retried whole, and the operator is told that, with the
    // logged publish named, not of an outcome that is never recorded.
    const { failures, context } = failuresTold(registry);
    await expect(processSubmissions(context, [...logged, ...other])).rejects.toMatchObject({
      code: 'LOGGED_PUBLISH_FAILED',
      message: expect.stringMatching(
        /^the publish of demo-plugin@3\.0\.0 \(submission .*entry 1, .*writing its files \(StoreError STORE_REFUSED: File name too long\).*incoming\/.*then run the batch again$/,
      ),
      cause: { code: 'STORE_REFUSED' },
    });
    expect(failures).toEqual([]);
    expect(incoming(registry).sort()).toEqual([...logged, ...other].sort());
    expect(await vouchedLog(registry.site, registry.registryKey.publicKey)).toEqual(logBefore);
    registry.site.put = put;
    const result = await processSubmissions(registry.context, [...logged, ...other]);
    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '3.0.0', 'accepted'],
      ['other-plugin', '1.0.0', 'accepted'],
    ]);
    expect(result.outcomes[0]?.seq).toBe(1);
    expect(versionsOf(registry)).toContain('3.0.0');
  });
});

describe('when two publishers claim one new name', () => {
  async function claim(together: boolean) {
    const registry = await makeRegistry();
    const first = await makeBundle({ manifest: validManifest({ name: 'contested', version: '1.0.0' }) });
    const second = await makeBundle({
      manifest: validManifest({ name: 'contested', version: '9.0.0' }),
      signer: await testKey('rival'),
    });
    let outcomes: SubmissionOutcome[];
    if (together) {
      await registry.submit(first, second);
      outcomes = [...(await processSubmissions(registry.context)).outcomes];
    } else {
      await registry.submit(first);
      outcomes = [...(await processSubmissions(registry.context)).outcomes];
      await registry.submit(second);
      outcomes.push(...(await processSubmissions(registry.context)).outcomes);
    }
    return { outcomes: statusOf(outcomes), doc: pluginDoc(registry, 'contested') };
  }

  it('decides within a batch exactly as across batches: the first owns it', async () => {
    const publisher = (await testKey('publisher')).fingerprint;
    const apart = await claim(false);
    const together = await claim(true);
    expect(together.outcomes).toEqual([
      ['contested', '1.0.0', 'accepted'],
      ['contested', '9.0.0', 'rejected', 'PUBLISHER_NOT_OWNER'],
    ]);
    expect(together.outcomes).toEqual(apart.outcomes);
    expect(together.doc.owners).toEqual([publisher]);
    expect(together.doc.latest_version).toBe('1.0.0');
    expect(together.doc.versions.map((v) => v.publisher)).toEqual([publisher]);
  });

  it('lets the new owner publish more versions in the same batch', async () => {
    const registry = await makeRegistry();
    await registry.submit(
      await makeBundle({ manifest: validManifest({ name: 'fresh', version: '1.0.0' }) }),
      await makeBundle({ manifest: validManifest({ name: 'fresh', version: '1.1.0' }) }),
    );
    expect(statusOf((await processSubmissions(registry.context)).outcomes)).toEqual([
      ['fresh', '1.0.0', 'accepted'],
      ['fresh', '1.1.0', 'accepted'],
    ]);
    expect(pluginDoc(registry, 'fresh').latest_version).toBe('1.1.0');
  });
});

describe('when versions differ only in build metadata or letter case', () => {
  it.each([
    ['1.0.0+a', '1.0.0+b'],
    ['1.0.0', '1.0.0+build.5'],
    ['1.0.0-RC.1', '1.0.0-rc.1'],
    ['2.0.0-Beta', '2.0.0-beta+x'],
  ])('publishes %s once and refuses %s, in one batch and in two', async (a, b) => {
    for (const together of [true, false]) {
      const registry = await makeRegistry();
      const first = await makeBundle({ manifest: validManifest({ version: a }) });
      const second = await makeBundle({ manifest: validManifest({ version: b }) });
      const outcomes: SubmissionOutcome[] = [];
      if (together) {
        await registry.submit(first, second);
        outcomes.push(...(await processSubmissions(registry.context)).outcomes);
      } else {
        await registry.submit(first);
        outcomes.push(...(await processSubmissions(registry.context)).outcomes);
        await registry.submit(second);
        outcomes.push(...(await processSubmissions(registry.context)).outcomes);
      }
      expect(statusOf(outcomes), `together: ${together}`).toEqual([
        ['demo-plugin', a, 'accepted'],
        ['demo-plugin', b, 'rejected', 'VERSION_EXISTS'],
      ]);
      const doc = pluginDoc(registry, 'demo-plugin');
      expect(doc.versions.map((v) => v.version)).toEqual([a]);
      // The folder is the version without build metadata: no `+` in any published key or URL.
      expect(doc.versions[0]?.manifest_url).not.toContain('+');
      expect([...registry.site.objects.keys()].filter((k) => k.includes('+'))).toEqual([]);
    }
  });
});

describe('when the same bytes are uploaded under names that differ only in their extension', () => {
  it('records an outcome for each upload, and keeps each, none standing for another', async () => {
    // Prepare: one bundle uploaded as x.tgz, x.tar.gz, x.TGZ and x (as a publisher's script or a copy may).
    const registry = await makeRegistry();
    const bundle = await makeBundle();
    const keys = ['incoming/x.tgz', 'incoming/x.tar.gz', 'incoming/x.TGZ', 'incoming/x'];
    for (const key of keys)
      await registry.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });

    // Act
    const result = await processSubmissions(registry.context);

    // Assess: four ids, four records each naming its own upload, four uploads kept; one publish.
    const ids = new Set(result.outcomes.map((o) => o.id));
    expect(ids.size).toBe(4);
    const records = [...ids].map(
      (id) =>
        JSON.parse(
          new TextDecoder().decode(registry.intake.objects.get(`status/${id}.json`)?.body),
        ) as SubmissionOutcome,
    );
    expect(records.map((r) => r.submission).sort()).toEqual([...keys].sort());
    expect(records.filter((r) => r.status === 'accepted')).toHaveLength(1);
    const kept = [...registry.intake.objects.keys()].filter(
      (k) => k.startsWith('processed/') || k.startsWith('rejected/'),
    );
    expect(kept).toHaveLength(4);
    expect(incoming(registry)).toEqual([]);
  });
});

describe('when the published manifest comes again with other artifact bytes', () => {
  it('rejects the bundle for its artifacts, not reports it already published', async () => {
    // Prepare: demo-plugin@1.0.0 published with its artifact; then its very manifest (the same bytes,
    // signed by its publisher) in a bundle whose artifact is other bytes than the manifest names.
    const registry = await makeRegistry();
    const good = encode('tool 1.0.0');
    const file = 'artifacts/linux-amd64/tool';
    const manifest = validManifest({
      installation: {
        artifacts: [{ os: 'linux', arch: 'amd64', file, sha256: sha256(good), size_bytes: good.byteLength }],
      },
    });
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    await registry.submit(await makeBundle({ manifestText, extraFiles: [{ path: file, body: good }] }));
    expect(statusOf((await processSubmissions(registry.context)).outcomes)).toEqual([
      ['demo-plugin', '1.0.0', 'accepted'],
    ]);
    const before = registry.site.fingerprint();
    const tampered = encode('tool 6.6.6');
    await registry.submit(await makeBundle({ manifestText, extraFiles: [{ path: file, body: tampered }] }));

    // Act
    const result = await processSubmissions(registry.context);

    // Assess: refused for what it carries, kept under rejected/, nothing published.
    expect(statusOf(result.outcomes)).toEqual([
      ['demo-plugin', '1.0.0', 'rejected', 'ARTIFACT_DIGEST_MISMATCH'],
    ]);
    expect(registry.intake.objects.has(`rejected/${result.outcomes[0]?.id}.tgz`)).toBe(true);
    expect(registry.site.fingerprint()).toEqual(before);
  });
});

/**
 * A registry that published demo-plugin@2.0.0, whose document then became one that cannot be rendered (as
 * the registry's own, so a batch acting on the plugin refuses its first item), with the document it
 * published to plant back.
 */
async function publishedThenUnrenderable() {
  const publisher = await testKey('publisher');
  const registry = await makeRegistry();
  await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
  await processSubmissions(registry.context);
  const published = pluginDoc(registry, 'demo-plugin');
  plant(registry, { ...published, description: 'broken \ud800 text' });
  return { publisher, registry, published };
}

describe("when an action is judged to change nothing after one the batch then refuses (its plugin's documents do not render)", () => {
  it('logs and orders neither, and refuses it with an outcome of its own: submit it again', async () => {
    // Prepare: demo-plugin@2.0.0 published, then its document one that cannot be rendered (as the
    // registry's own); an owner's yank of 2.0.0, and a later one of the same version, in one batch.
    const { publisher, registry, published } = await publishedThenUnrenderable();
    const yank = { action: 'yank', plugin: 'demo-plugin', version: '2.0.0' } as const;
    const first = await submitAction(registry.intake, { ...yank, reason: 'first' }, publisher, {
      now: new Date('2026-10-31T12:00:00Z'),
    });
    const second = await submitAction(registry.intake, { ...yank, reason: 'second' }, publisher, {
      now: new Date('2026-10-31T12:30:00Z'),
    });
    const logBefore = await vouchedLog(registry.site, registry.registryKey.publicKey);
    const { failures, context } = failuresTold(registry);

    // Act
    const result = await processSubmissions(context, [first.key, second.key]);

    // Assess: the first refused (its plugin does not render), the second judged against the first's yank,
    // never published: neither in the log, nor the action order, nor an envelope. Its outcome is its own
    // (ACTION_DEPENDS_ON_REFUSED), not the first's failure, which the operator's log has under the first's
    // id alone: told "under this submission's id", its submitter looked for a failure that was not its own.
    expect(await vouchedLog(registry.site, registry.registryKey.publicKey)).toEqual(logBefore);
    expect(registry.intake.objects.has(actionOrderKey('demo-plugin'))).toBe(false);
    expect(keysUnder(registry, 'log/actions/')).toEqual([]);
    expect(codesOf(result.outcomes)).toEqual([
      ['rejected', 'SUBMISSION_WRITE_FAILED'],
      ['rejected', 'ACTION_DEPENDS_ON_REFUSED'],
    ]);
    const [firstOutcome, secondOutcome] = result.outcomes as [SubmissionOutcome, SubmissionOutcome];
    expect(secondOutcome).toMatchObject({ action: 'yank', plugin: 'demo-plugin', version: '2.0.0' });
    expect(recordedText(registry, secondOutcome)).not.toContain("operator's log");
    expect(secondOutcome.problems[0]?.expected).toContain('submit it again');
    expect(failures.map((f) => f.id)).toEqual([firstOutcome.id]);
    expect(pluginDoc(registry, 'demo-plugin').versions[0]).not.toHaveProperty('yanked', true);

    // Submitted again (the same envelope) once the plugin renders, it is judged anew: not a replay.
    plant(registry, published);
    await upload(registry.intake, second.bytes, 'yank');
    const again = await processSubmissions(registry.context);
    expect(codesOf(again.outcomes)).toEqual([['accepted']]);
    expect(pluginDoc(registry, 'demo-plugin').versions[0]).toMatchObject({
      yanked: true,
      yanked_reason: 'second',
    });
  });
});

describe("when an action is refused as superseded by one the batch then refuses (its plugin's documents do not render)", () => {
  it('refuses it with an outcome of its own (ACTION_DEPENDS_ON_REFUSED): the newer one never stood', async () => {
    // Prepare: demo-plugin@2.0.0 published, then its document one that cannot be rendered (as the
    // registry's own); an owner's yank of 2.0.0, then one made before it, in one batch.
    const { publisher, registry, published } = await publishedThenUnrenderable();
    const yank = { action: 'yank', plugin: 'demo-plugin', version: '2.0.0' } as const;
    const newer = await submitAction(registry.intake, { ...yank, reason: 'newer' }, publisher, {
      now: new Date('2026-10-31T12:30:00Z'),
    });
    const older = await submitAction(registry.intake, { ...yank, reason: 'older' }, publisher, {
      now: new Date('2026-10-31T12:00:00Z'),
    });

    // Act
    const result = await processSubmissions(registry.context, [newer.key, older.key]);

    // Assess: the newer refused (its plugin does not render); the older was refused by its record alone,
    // which nothing records now: told ACTION_SUPERSEDED, its submitter read of a newer yank that "stands".
    expect(codesOf(result.outcomes)).toEqual([
      ['rejected', 'SUBMISSION_WRITE_FAILED'],
      ['rejected', 'ACTION_DEPENDS_ON_REFUSED'],
    ]);
    expect(registry.intake.objects.has(actionOrderKey('demo-plugin'))).toBe(false);

    // Submitted again once the plugin renders, the older one is judged anew, against what was published.
    plant(registry, published);
    await upload(registry.intake, older.bytes, 'yank');
    const again = await processSubmissions(registry.context);
    expect(codesOf(again.outcomes)).toEqual([['accepted']]);
    expect(pluginDoc(registry, 'demo-plugin').versions[0]).toMatchObject({
      yanked: true,
      yanked_reason: 'older',
    });
  });

  it('refuses it as superseded still when an action the registry applied before supersedes it too', async () => {
    // A guard: refused so before ACTION_DEPENDS_ON_REFUSED, and still, as an applied action stands for it.
    // Prepare: a yank applied at 12:10; then, with the plugin's document one that cannot be rendered, an
    // unyank made at 12:30 and one made at 12:00, in one batch.
    const publisher = await testKey('publisher');
    const registry = await makeRegistry();
    await registry.submit(await makeBundle({ manifest: validManifest({ version: '2.0.0' }) }));
    await processSubmissions(registry.context);
    const yank = { action: 'yank', plugin: 'demo-plugin', version: '2.0.0' } as const;
    await submitAction(registry.intake, { ...yank, reason: 'applied' }, publisher, {
      now: new Date('2026-10-31T12:10:00Z'),
    });
    expect((await processSubmissions(registry.context)).outcomes[0]?.status).toBe('accepted');
    plant(registry, { ...pluginDoc(registry, 'demo-plugin'), description: 'broken \ud800 text' });
    const unyank = { action: 'unyank', plugin: 'demo-plugin', version: '2.0.0' } as const;
    const newer = await submitAction(registry.intake, unyank, publisher, {
      now: new Date('2026-10-31T12:30:00Z'),
    });
    const older = await submitAction(registry.intake, unyank, publisher, {
      now: new Date('2026-10-31T12:00:00Z'),
    });

    // Act
    const result = await processSubmissions(registry.context, [newer.key, older.key]);

    // Assess: the applied yank, made after the older one, stands whatever became of the newer.
    expect(codesOf(result.outcomes)).toEqual([
      ['rejected', 'SUBMISSION_WRITE_FAILED'],
      ['rejected', 'ACTION_SUPERSEDED'],
    ]);
  });
});
