/**
 * The registry a client pinned is the one its snapshots name (their `registry`), kept beside the key: a
 * snapshot naming another is refused (SNAPSHOT_REGISTRY_CHANGED), as apt refuses a Release whose Origin or
 * Suite changed. Two registries signed by one key (a staging registry made from a copy of production's
 * folder, with production's history) are then never taken for one another, whoever serves them. A registry
 * that really moved is taken by adding it again with --force. Local registries served over real HTTP.
 */
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRegistry } from '../../cli/local/registry.ts';
import { rotateLocalRegistry } from '../../cli/local/rotate-key.ts';
import { verifyRegistry } from '../../cli/verify.ts';
import { ClientError } from '../../client/errors.ts';
import { TrustError } from '../../index-builder/errors.ts';
import { refreshSnapshot } from '../../index-builder/pipeline/index.ts';
import { generateKeyPair } from '../../index-builder/signing.ts';
import { type ClientMachine, clientMachine } from '../support/client.ts';
import {
  type ServedLocalRegistry,
  scratchFolder,
  servedLocalRegistry,
  serveLocalFolder,
} from '../support/served-registry.ts';

const NAME = 'named-tool';
const PRODUCTION = 'https://plugins.production.example';
const STAGING = 'https://plugins.staging.example';

const scratch = scratchFolder('plugindex-identity-');

let folders = 0;
/** A local registry naming itself `url`, with one version of one plugin, served over HTTP from its folder. */
async function servedRegistry(url: string): Promise<ServedLocalRegistry> {
  folders += 1;
  return servedLocalRegistry(scratch, join(scratch.path, `registry${folders}`), {
    name: 'Named',
    url,
    plugin: NAME,
  });
}

/**
 * What the folder at `dir` serves becomes another registry's, signed by the same key and with the same
 * history: a copy of the folder naming itself `url`, its snapshot signed anew (a later generation).
 */
async function serveAnotherRegistry(dir: string, url: string): Promise<void> {
  const copy = `${dir}-copy`;
  await cp(dir, copy, { recursive: true });
  const config = JSON.parse(await readFile(join(copy, 'plugindex.json'), 'utf8'));
  await writeFile(join(copy, 'plugindex.json'), JSON.stringify({ ...config, url }));
  await refreshSnapshot((await openRegistry(copy)).context);
  await rm(join(dir, 'public'), { recursive: true });
  await cp(join(copy, 'public'), join(dir, 'public'), { recursive: true });
}

let machines = 0;
function machine(): ClientMachine {
  machines += 1;
  return clientMachine(join(scratch.path, `m${machines}`));
}

describe('when the registry a client added is served as another registry signed by the same key', () => {
  it('refuses its snapshot (SNAPSHOT_REGISTRY_CHANGED) and keeps the trust state as it was', async () => {
    // Prepare: production added; then its URL serves staging, made from a copy of production's folder.
    const registry = await servedRegistry(PRODUCTION);
    const m = machine();
    const added = await m.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.key } }),
    );
    expect(added.registry).toBe(PRODUCTION);
    const stateFile = join(m.data, 'trust', 'main', 'state.json');
    const before = await readFile(stateFile, 'utf8');
    expect(JSON.parse(before)).toMatchObject({ registry: PRODUCTION });
    await serveAnotherRegistry(registry.dir, STAGING);

    // Act
    const [report] = await m.run((c) => c.updateRegistries(['main']));

    // Assess
    expect(report?.error).toBeInstanceOf(TrustError);
    expect(report?.error).toMatchObject({
      code: 'SNAPSHOT_REGISTRY_CHANGED',
      message: expect.stringContaining(`"${STAGING}", not of "${PRODUCTION}"`),
    });
    expect(String(report?.error)).toContain('plugindex registry add --force main');
    expect(await readFile(stateFile, 'utf8')).toBe(before);
  });
});

describe('when a registry the client added really moved (its snapshots name a new URL)', () => {
  it('takes the new name when the registry is added again with --force, and reads it from then on', async () => {
    // Prepare
    const registry = await servedRegistry(PRODUCTION);
    const m = machine();
    await m.run((c) => c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.key } }));
    await serveAnotherRegistry(registry.dir, STAGING);
    const [refused] = await m.run((c) => c.updateRegistries(['main']));
    expect(refused?.error).toMatchObject({ code: 'SNAPSHOT_REGISTRY_CHANGED' });

    // Act: added again without --force, then with it.
    const unforced = await m
      .run((c) => c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.key } }))
      .catch((e: unknown) => e);
    const forced = await m.run((c) =>
      c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.key }, force: true }),
    );
    const [later] = await m.run((c) => c.updateRegistries(['main']));

    // Assess
    expect(unforced).toBeInstanceOf(TrustError);
    expect(unforced).toMatchObject({ code: 'SNAPSHOT_REGISTRY_CHANGED' });
    expect(forced.registry).toBe(STAGING);
    expect(later?.error).toBeUndefined();
    expect(JSON.parse(await readFile(join(m.data, 'trust', 'main', 'state.json'), 'utf8'))).toMatchObject({
      registry: STAGING,
    });
  });
});

describe('when verify --url --state meets a snapshot naming another registry than the state kept', () => {
  it('refuses it (SNAPSHOT_REGISTRY_CHANGED), naming the state file to remove, and keeps the state', async () => {
    // Prepare
    const registry = await servedRegistry(PRODUCTION);
    const stateFile = join(scratch.path, 'verify-state.json');
    await verifyRegistry({ url: PRODUCTION, mirror: registry.url, pinnedKey: registry.key, stateFile });
    const before = await readFile(stateFile, 'utf8');
    expect(JSON.parse(before)).toMatchObject({ registry: PRODUCTION });
    await serveAnotherRegistry(registry.dir, STAGING);

    // Act
    const error = await verifyRegistry({ url: PRODUCTION, mirror: registry.url, stateFile }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({
      code: 'SNAPSHOT_REGISTRY_CHANGED',
      message: expect.stringContaining(`remove ${stateFile}`),
    });
    expect(await readFile(stateFile, 'utf8')).toBe(before);
  });
});

describe('when a trust state names its registry by something not a string', () => {
  it('refuses the state (TRUST_STATE_INVALID) rather than reading it as no name pinned', async () => {
    // Prepare
    const registry = await servedRegistry(PRODUCTION);
    const m = machine();
    await m.run((c) => c.addRegistry({ name: 'main', url: registry.url, pin: { armored: registry.key } }));
    const stateFile = join(m.data, 'trust', 'main', 'state.json');
    const state = JSON.parse(await readFile(stateFile, 'utf8'));
    await writeFile(stateFile, JSON.stringify({ ...state, registry: 7 }));

    // Act
    const [report] = await m.run((c) => c.updateRegistries(['main']));

    // Assess
    expect(report?.error).toBeInstanceOf(ClientError);
    expect(report?.error).toMatchObject({
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining('#/registry'),
    });
  });
});

/**
 * A local registry naming itself by the URL it is served at (the server started on its folder first), with
 * one version of one plugin: a registry reached at its own URL, as `verify --url` is asked to check it.
 */
async function servedAtItsOwnUrl(): Promise<ServedLocalRegistry> {
  folders += 1;
  return servedLocalRegistry(scratch, join(scratch.path, `own${folders}`), { name: 'Named', plugin: NAME });
}

/** A copy of `dir`'s public folder served at a URL of its own (a mirror). */
async function servedCopyOf(dir: string): Promise<string> {
  folders += 1;
  const copy = join(scratch.path, `mirror${folders}`);
  await cp(join(dir, 'public'), join(copy, 'public'), { recursive: true });
  return serveLocalFolder(scratch, copy);
}

describe('when verify --url, with no --state, is served at a registry URL another registry signed by the same key', () => {
  it('refuses the other registry (SNAPSHOT_OTHER_REGISTRY), naming both and the way to verify a mirror', async () => {
    // Prepare: production at its own URL; staging made from its folder, same key and history, served there.
    const production = await servedAtItsOwnUrl();
    expect(await verifyRegistry({ url: production.url, pinnedKey: production.key })).toMatchObject({
      plugins: 1,
    });
    await serveAnotherRegistry(production.dir, STAGING);

    // Act
    const error = await verifyRegistry({ url: production.url, pinnedKey: production.key }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_OTHER_REGISTRY' });
    const { message } = error as TrustError;
    expect(message).toContain(JSON.stringify(STAGING));
    expect(message).toContain(production.url);
    expect(message).toContain('--mirror');
  });

  it("refuses it too when the other registry rotated its key since: its rotation is not this registry's", async () => {
    // Prepare: staging rotates the shared key away; a verifier holding that key is served staging.
    const production = await servedAtItsOwnUrl();
    await serveAnotherRegistry(production.dir, STAGING);
    const copy = `${production.dir}-copy`;
    await rotateLocalRegistry(copy, (await generateKeyPair({ name: 'staging next' })).secretKey);
    await rm(join(production.dir, 'public'), { recursive: true });
    await cp(join(copy, 'public'), join(production.dir, 'public'), { recursive: true });

    // Act
    const error = await verifyRegistry({ url: production.url, pinnedKey: production.key }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'SNAPSHOT_OTHER_REGISTRY' });
  });
});

describe('when verify --url names the registry spelled otherwise than its snapshot does', () => {
  it('takes it (the scheme in capitals, a trailing slash): one registry as registryIdentity spells it', async () => {
    // Prepare
    const production = await servedAtItsOwnUrl();
    const spelled = `${production.url.replace(/^http:/, 'HTTP:')}/`;

    // Act
    const report = await verifyRegistry({ url: spelled, pinnedKey: production.key });
    const mirrored = await verifyRegistry({
      url: spelled,
      mirror: await servedCopyOf(production.dir),
      pinnedKey: production.key,
    });

    // Assess
    expect(report).toMatchObject({ plugins: 1, manifests: 1 });
    expect(mirrored).toMatchObject({ plugins: 1, manifests: 1 });
  });
});

describe('when verify --url is given a mirror of the registry with --mirror', () => {
  it('reads the mirror and holds it to the registry named by --url; the mirror by --url alone is refused', async () => {
    // Prepare
    const production = await servedAtItsOwnUrl();
    const mirror = await servedCopyOf(production.dir);

    // Act
    const report = await verifyRegistry({ url: production.url, mirror, pinnedKey: production.key });
    const alone = await verifyRegistry({ url: mirror, pinnedKey: production.key }).catch((e: unknown) => e);
    const other = await verifyRegistry({ url: STAGING, mirror, pinnedKey: production.key }).catch(
      (e: unknown) => e,
    );

    // Assess
    expect(report).toMatchObject({ plugins: 1, manifests: 1, artifacts: 1 });
    expect(alone).toMatchObject({ code: 'SNAPSHOT_OTHER_REGISTRY' });
    expect(other).toMatchObject({ code: 'SNAPSHOT_OTHER_REGISTRY' });
  });
});
