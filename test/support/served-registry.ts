/**
 * A test registry's site served by the local server over real HTTP on a free port, the one-plugin
 * registry several client tests install from, the same as a local registry's folder (`plugindex init`)
 * under a test file's scratch folder, and a registry on two filesystem stores served so (the void and
 * stuck-publish pipeline tests), with what they set up on it: a client that saw its first plugin, a folder
 * where a plugin's page goes, a batch killed once it has logged.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { FsStore } from '../../adapters/fs-store.ts';
import { initRegistry, openRegistry } from '../../cli/local/registry.ts';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { forgetBins } from '../../index-builder/catalog.ts';
import type { RegistryConfig } from '../../index-builder/config.ts';
import { submissionIdFromBytes } from '../../index-builder/layout.ts';
import { logSegmentKey, parseSegment } from '../../index-builder/log.ts';
import {
  type BatchStep,
  type PipelineContext,
  processSubmissions,
  type SubmissionFailure,
} from '../../index-builder/pipeline/index.ts';
import type { SubmissionOutcome } from '../../index-builder/pipeline/outcomes.ts';
import { CACHE_PRIVATE, listAll } from '../../index-builder/store.ts';
import { httpClient } from './client.ts';
import {
  encode,
  makeBundle,
  makeRegistry,
  nextUploadName,
  type TestRegistry,
  validManifest,
} from './fixtures.ts';

export interface ServedSite {
  readonly base: string;
  readonly close: () => Promise<void>;
  /** Each request's log line (`GET /path 200`), in order: what a test counts requests by. */
  readonly requests: string[];
}

/** `registry`'s site served by the local server, each request logged in `requests`. */
export async function serveSite(registry: TestRegistry): Promise<ServedSite> {
  const requests: string[] = [];
  const listening = await listenRegistryServer(
    createRegistryServer({ site: registry.site, log: (line) => requests.push(line) }),
    0,
  );
  return { base: listening.url, close: listening.close, requests };
}

/** A registry that published `name` 1.0.0 with one linux/amd64 artifact holding `body`, served. */
export async function servedOnePlugin(
  name: string,
  body: Uint8Array,
): Promise<ServedSite & { readonly registry: TestRegistry }> {
  const registry = await makeRegistry();
  await processSubmissions(
    registry.context,
    await registry.submit(
      await makeBundle({
        manifest: validManifest({ name, version: '1.0.0' }),
        artifacts: [{ os: 'linux', arch: 'amd64', name, body }],
      }),
    ),
  );
  return { ...(await serveSite(registry)), registry };
}

export interface ScratchFolder {
  /** The folder (made once the file's tests start). */
  readonly path: string;
  /** Closes a server after the file's tests, before the folder is removed. */
  readonly closeAfter: (close: () => Promise<void>) => void;
}

/**
 * A folder under the OS temp folder for one test file, made before its tests and removed after them, the
 * servers given to `closeAfter` closed first. Call it at the top of the file: it adds the file's hooks.
 */
export function scratchFolder(prefix: string): ScratchFolder {
  const closers: (() => Promise<void>)[] = [];
  let made: string | undefined;
  beforeAll(async () => {
    made = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    for (const close of closers) await close();
    if (made) await rm(made, { recursive: true, force: true });
  });
  return {
    get path() {
      if (!made) throw new Error('the scratch folder is made once the tests start');
      return made;
    },
    closeAfter: (close) => {
      closers.push(close);
    },
  };
}

export interface ServedLocalRegistry {
  readonly dir: string;
  /** Where it is served, which need not be the URL it names itself by. */
  readonly url: string;
  /** Its registry key as published (keys/registry.asc): what its first clients pin. */
  readonly key: string;
}

/** `dir`'s public folder served over HTTP until `scratch`'s file ends; the URL it is served at. */
export async function serveLocalFolder(scratch: ScratchFolder, dir: string): Promise<string> {
  const listening = await listenRegistryServer(
    createRegistryServer({ site: new FsStore(join(dir, 'public')) }),
    0,
  );
  scratch.closeAfter(listening.close);
  return listening.url;
}

/**
 * A local registry made in `dir` (`plugindex init`) naming itself `url` (none: the URL it is served at, the
 * server started on its folder first), `plugin` 1.0.0 with one linux/amd64 artifact published through its
 * pipeline, served over HTTP from its folder until `scratch`'s file ends.
 */
export async function servedLocalRegistry(
  scratch: ScratchFolder,
  dir: string,
  options: { readonly name: string; readonly url?: string; readonly plugin: string },
): Promise<ServedLocalRegistry> {
  const { plugin } = options;
  await mkdir(join(dir, 'public'), { recursive: true });
  const url = await serveLocalFolder(scratch, dir);
  await initRegistry(dir, { name: options.name, url: options.url ?? url });
  const { context } = await openRegistry(dir);
  const key = `incoming/${plugin}-1.0.0.tgz`;
  const bundle = await makeBundle({
    manifest: validManifest({ name: plugin, version: '1.0.0' }),
    artifacts: [{ os: 'linux', arch: 'amd64', name: plugin, body: encode('#!/bin/sh\necho 1.0.0\n') }],
  });
  await context.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: CACHE_PRIVATE });
  expect((await processSubmissions(context, [key])).outcomes.map((o) => o.status)).toEqual(['accepted']);
  return { dir, url, key: await readFile(join(dir, 'public/keys/registry.asc'), 'utf8') };
}

const LINUX = { os: 'linux', arch: 'amd64' } as const;

/**
 * A test registry (`options` as makeRegistry's) on two filesystem stores under `root`, `intake/` and
 * `site/`; `submit` puts a bundle under incoming/ as an upload, its key and submission id.
 */
export async function registryOnStores(root: string, options?: Parameters<typeof makeRegistry>[0]) {
  const base = await makeRegistry(options);
  const context: PipelineContext = {
    ...base.context,
    intake: new FsStore(join(root, 'intake')),
    site: new FsStore(join(root, 'site')),
  };
  const submit = async (bundle: Uint8Array): Promise<{ key: string; id: string }> => {
    const key = `incoming/${nextUploadName()}.tgz`;
    await context.intake.put(key, bundle, { contentType: 'application/gzip', cacheControl: 'no-store' });
    return { key, id: submissionIdFromBytes(key, bundle) };
  };
  return { base, context, submit };
}

/** A bundle of `name`@`version` with a linux/amd64 artifact: what a client installs. */
export const installable = (name: string, version = '1.0.0') =>
  makeBundle({
    manifest: validManifest({ name, version }),
    artifacts: [{ ...LINUX, name, body: encode(`#!/bin/sh\necho ${name}\n`) }],
  });

/**
 * A registry on two filesystem stores under a fresh folder named `prefix…`, its site served over a socket by
 * the local server (its config names that URL, with `config`); the folder removed and the server closed by
 * `cleanups` (a test file's, run after each test). Each batch is a process of its own.
 */
export async function servedOnDisk(
  prefix: string,
  cleanups: (() => Promise<void>)[],
  config: Partial<RegistryConfig> = {},
) {
  const root = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const siteRoot = join(root, 'site');
  const listening = await listenRegistryServer(createRegistryServer({ site: new FsStore(siteRoot) }), 0);
  cleanups.push(listening.close);
  const onDisk = await registryOnStores(root, { url: listening.url, ...config });
  const { base, submit } = onDisk;
  const told: SubmissionFailure[] = [];
  const context: PipelineContext = {
    ...onDisk.context,
    onSubmissionFailure: (failure) => told.push(failure),
  };
  const batch = async (keys?: string[], onStep?: (step: BatchStep) => void) => {
    try {
      return await processSubmissions({ ...context, ...(onStep ? { onStep } : {}) }, keys);
    } finally {
      forgetBins(context.intake); // the next batch is another process
    }
  };
  const incoming = async () => (await listAll(context.intake, 'incoming/')).map((o) => o.key).sort();
  const outcome = async (id: string) => {
    const read = await context.intake.get(`status/${id}.json`);
    return read && (JSON.parse(new TextDecoder().decode(read.body)) as SubmissionOutcome);
  };
  const entries = async () => {
    const segment = await context.site.get(logSegmentKey(0));
    return parseSegment(segment?.body ?? new Uint8Array(), 0).map((read) => read.entry);
  };
  const verify = () =>
    verifyRegistry({ url: listening.url, pinnedKey: base.registryKey.publicKey, now: VERIFIED });
  return {
    root,
    siteRoot,
    url: listening.url,
    base,
    context,
    told,
    submit,
    batch,
    incoming,
    outcome,
    entries,
    verify,
  };
}

/** When `servedOnDisk`'s registry is verified. */
const VERIFIED = new Date('2026-11-02T00:00:00Z');

export type ServedOnDisk = Awaited<ReturnType<typeof servedOnDisk>>;

/** first-plugin published; a client installs it, remembering the log of one entry; its home and plugins. */
export async function clientSawFirst(registry: ServedOnDisk, cleanups: (() => Promise<void>)[]) {
  const first = await registry.submit(await installable('first-plugin'));
  await registry.batch([first.key]);
  const home = await mkdtemp(join(registry.root, 'home-'));
  const client = httpClient(home);
  cleanups.push(() => client.close());
  await client.addRegistry({
    name: 'main',
    url: registry.url,
    pin: { armored: registry.base.registryKey.publicKey },
  });
  const dir = join(home, 'plugins');
  await client.install({ requests: ['first-plugin'], lockfile: join(home, 'a.lock'), dir, platform: LINUX });
  return { home, dir };
}

/** A folder stands where demo-plugin's page goes under `site` (EISDIR: STORE_REFUSED); its path. */
export async function pageMadeAFolder(site: string): Promise<string> {
  const page = join(site, 'plugins/demo-plugin/index.html');
  await rm(page, { force: true });
  await mkdir(page, { recursive: true });
  return page;
}

/** Runs a batch that dies (a process killed: nothing of it runs after) once its entries are logged. */
export async function diesOnceLogged(context: PipelineContext, keys: string[]): Promise<void> {
  const onStep = (step: BatchStep): void => {
    if (step === 'logged') throw new Error('killed after the log');
  };
  await expect(processSubmissions({ ...context, onStep }, keys)).rejects.toThrow('killed after the log');
  forgetBins(context.intake); // the retry is another process
}

/**
 * Another run of the client `clientSawFirst` made (its state on disk: the log it saw): it updates `main`, then
 * installs `plugin`; what each gave.
 */
export async function laterRunInstalls(
  saw: { readonly home: string; readonly dir: string },
  cleanups: (() => Promise<void>)[],
  plugin: string,
) {
  const later = httpClient(saw.home);
  cleanups.push(() => later.close());
  const [updated] = await later.updateRegistries(['main']);
  const installed = await later.install({
    requests: [plugin],
    lockfile: join(saw.home, 'b.lock'),
    dir: saw.dir,
    platform: LINUX,
  });
  return { updated, installed };
}
