/**
 * A test registry's site served by the local server over real HTTP on a free port, the one-plugin
 * registry several client tests install from, and the same as a local registry's folder (`plugindex init`)
 * under a test file's scratch folder.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { FsStore } from '../../adapters/fs-store.ts';
import { initRegistry, openRegistry } from '../../cli/local/registry.ts';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { processSubmissions } from '../../index-builder/pipeline/index.ts';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';
import { encode, makeBundle, makeRegistry, type TestRegistry, validManifest } from './fixtures.ts';

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
