/**
 * A pasted OCI reference (`plugindex install REGISTRY/REPOSITORY[:TAG|@DIGEST]`, as falcoctl and crane
 * print one) names the repository a publish would judge it to: its host in any case, `:443` or not, Docker
 * Hub by any of its names and its official images with or without `library/` (index-builder/oci.ts
 * `ociRepositoryOf`, the one normalization publish claims repositories by). A reference written otherwise
 * than the signed manifest wrote it finds the plugin all the same; two plugins in one repository, however
 * each wrote it, are refused by name with the spelling each was published under, never one picked.
 *
 * Real parts: the pipeline, the registry server, the distribution project's registry (docker-registry) for
 * the one plugin kept at a host the test can reach, and the HTTP fetcher.
 */
import { Buffer } from 'node:buffer';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryServer, listenRegistryServer } from '../../cli/local/server.ts';
import { ClientError } from '../../client/errors.ts';
import { platformMachine } from '../support/client.ts';
import { encode, makeRegistry, ociBundle, sha256, type TestRegistry } from '../support/fixtures.ts';
import { type OciRegistry, type Pushed, pushBlob, startOciRegistry } from '../support/oci-registry.ts';
import { publish, verdicts } from '../support/published.ts';

const LINUX = { os: 'linux', arch: 'amd64' } as const;
const TOOL = encode('#!/bin/sh\necho case-lens 1.0.0\n');
const HEX_TOOL = encode('#!/bin/sh\necho hex-lens 1.0.0\n');

let registry: TestRegistry;
let oci: OciRegistry;
let pushed: Pushed;
/** hex-lens's blob, pushed to the same registry, which its signed manifest names as `0x7f.1:PORT`. */
let hexPushed: Pushed;
/** `localhost:PORT`: the OCI registry's host as case-lens's signed manifest writes it. */
let host: string;
let base: string;
let close: () => Promise<void>;
let root: string;

/** A bundle of `name` at `version` whose one (linux/amd64) artifact is kept at the OCI `reference`. */
function ociBundleOf(
  name: string,
  reference: string,
  version = '1.0.0',
  bytes = encode(`${name} ${version}`),
) {
  return ociBundle(name, reference, { sha: sha256(bytes), size: bytes.byteLength, version });
}

beforeAll(async () => {
  oci = await startOciRegistry('open');
  pushed = await pushBlob(oci, 'acme/case-lens', TOOL, { tag: '1.0.0' });
  hexPushed = await pushBlob(oci, 'acme/hex-lens', HEX_TOOL, { tag: '1.0.0' });
  host = oci.host.replace('127.0.0.1', 'localhost');
  registry = await makeRegistry();
  const outcomes = await publish(
    registry,
    await ociBundleOf('case-lens', `${host}/acme/case-lens:1.0.0`, '1.0.0', TOOL),
    // Docker Hub's official image, written with library/ as Docker Hub serves it.
    await ociBundleOf('hub-lens', 'docker.io/library/hub-lens:1.0.0'),
    await ociBundleOf('acme-hub-lens', 'docker.io/acme/hub-tool:2.1.0', '2.1.0'),
    await ociBundleOf('lens', 'registry.example/acme/lens:1.2.0', '1.2.0'),
    // IP literals not in the URL parser's form: the registry at 10.0.0.1:5000, at [::1]:5000, and this
    // machine's OCI registry (127.0.0.1:PORT) written in hex.
    await ociBundleOf('ip-lens', '10.1:05000/acme/ip-lens:1.0.0'),
    await ociBundleOf('v6-lens', '[0:0::1]:5000/acme/v6-lens:1.0.0'),
    await ociBundleOf(
      'hex-lens',
      `${oci.host.replace('127.0.0.1', '0x7f.1')}/acme/hex-lens:1.0.0`,
      '1.0.0',
      HEX_TOOL,
    ),
    // A registry on this machine with no port: reached over http: on port 80 (fetcher.ts ociTarget).
    await ociBundleOf('loop-lens', 'localhost/acme/loop-lens:1.0.0'),
    // One plugin whose versions wrote its repository two ways: the index names it as its latest wrote it.
    await ociBundleOf('solo-lens', 'docker.io/solo-lens:1.0.0', '1.0.0'),
    await ociBundleOf('solo-lens', 'index.docker.io/library/solo-lens:2.0.0', '2.0.0'),
    // Two plugins in one repository (one owner's two products, or a registry made before publish judged
    // claims), each writing it its own way.
    await ociBundleOf('twin-a', 'docker.io/twin:1.0.0'),
    await ociBundleOf('twin-b', 'registry-1.docker.io/library/twin:1.0.0'),
  );
  expect(verdicts(outcomes).filter(([, status]) => status !== 'accepted')).toEqual([]);
  const listening = await listenRegistryServer(createRegistryServer({ site: registry.site }), 0);
  base = listening.url;
  close = listening.close;
  root = await mkdtemp(join(tmpdir(), 'plugindex-oci-spelling-'));
});
afterAll(async () => {
  await close?.();
  await oci?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

let machines = 0;
/** A machine (linux/amd64) with the test registry added. */
async function machine() {
  machines += 1;
  const m = platformMachine(join(root, `m${machines}`));
  await m.run(LINUX, (c) =>
    c.addRegistry({ name: 'test', url: base, pin: { armored: registry.registryKey.publicKey } }),
  );
  return { ...m, reference: (text: string) => m.run(LINUX, (c) => c.reference(text)) };
}

describe('when a pasted OCI reference writes the repository otherwise than the signed manifest', () => {
  it("finds a Docker Hub official image without library/, or under Docker Hub's other names", async () => {
    const m = await machine();
    for (const text of [
      'docker.io/hub-lens:1.0.0',
      'docker.io/hub-lens',
      'index.docker.io/hub-lens:1.0.0',
      'registry-1.docker.io/library/hub-lens:1.0.0',
      'docker.io/library/hub-lens:1.0.0',
    ])
      expect(await m.reference(text), text).toEqual({ request: 'hub-lens@1.0.0', registry: 'test' });
    expect(await m.reference('index.docker.io/acme/hub-tool:2.1.0')).toEqual({
      request: 'acme-hub-lens@2.1.0',
      registry: 'test',
    });
  });

  it('finds a repository whose host is written in capitals, or with :443', async () => {
    const m = await machine();
    for (const text of [
      'Registry.Example:443/acme/lens:1.2.0',
      'REGISTRY.EXAMPLE/acme/lens',
      'registry.example:0443/acme/lens:1.2.0',
    ])
      expect(await m.reference(text), text).toEqual({ request: 'lens@1.2.0', registry: 'test' });
    // Another port is another repository, and another path.
    for (const text of ['registry.example:8443/acme/lens:1.2.0', 'docker.io/acme/lens:1.2.0'])
      await expect(m.reference(text), text).rejects.toMatchObject({
        name: 'ClientError',
        code: 'PLUGIN_NOT_FOUND',
      });
  });

  it('keeps a loopback registry at :443 apart from one without a port, which the client reaches at port 80', async () => {
    const m = await machine();
    for (const text of [
      'localhost:80/acme/loop-lens:1.0.0',
      'localhost/acme/loop-lens',
      'localhost:080/acme/loop-lens',
    ])
      expect(await m.reference(text), text).toEqual({ request: 'loop-lens@1.0.0', registry: 'test' });
    // http://localhost:443 is another server than http://localhost: another repository.
    await expect(m.reference('localhost:443/acme/loop-lens:1.0.0')).rejects.toMatchObject({
      name: 'ClientError',
      code: 'PLUGIN_NOT_FOUND',
    });
  });

  it('finds a registry at an IP literal however written, as publish judges its claim: decimal, hex, octal, one number, IPv6 zeros', async () => {
    const m = await machine();
    for (const text of [
      '10.0.0.1:5000/acme/ip-lens:1.0.0',
      '10.1:5000/acme/ip-lens',
      '0x0A.0.0.1:5000/acme/ip-lens:1.0.0',
      '012.0.0.1:05000/acme/ip-lens:1.0.0',
      '167772161:5000/acme/ip-lens:1.0.0',
    ])
      expect(await m.reference(text), text).toEqual({ request: 'ip-lens@1.0.0', registry: 'test' });
    for (const text of ['[::1]:5000/acme/v6-lens:1.0.0', '[0000::0:1]:5000/acme/v6-lens'])
      expect(await m.reference(text), text).toEqual({ request: 'v6-lens@1.0.0', registry: 'test' });
    // Another address is another registry; 10.0.0.1 written in IPv6 (an IPv4-mapped address) is too.
    for (const text of ['10.0.0.2:5000/acme/ip-lens:1.0.0', '[::ffff:a00:1]:5000/acme/ip-lens:1.0.0'])
      await expect(m.reference(text), text).rejects.toMatchObject({
        name: 'ClientError',
        code: 'PLUGIN_NOT_FOUND',
      });
  });

  it('reaches a registry its signed manifest writes as a hex IP literal, resolving a pasted digest and installing the blob', async () => {
    const m = await machine();
    const target = await m.reference(`${oci.host}/acme/hex-lens@${hexPushed.manifestDigest}`);
    expect(target).toEqual({ request: 'hex-lens@1.0.0', registry: 'test' });
    const result = await m.run(LINUX, (c) =>
      c.install({ requests: [target?.request as string], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(await readFile(result.items[0]?.path as string)).toEqual(Buffer.from(HEX_TOOL));
  });

  it('takes a version whose artifact wrote the repository another way than the one the index lists', async () => {
    const m = await machine();
    expect(await m.reference('docker.io/solo-lens:1.0.0')).toEqual({
      request: 'solo-lens@1.0.0',
      registry: 'test',
    });
    expect(await m.reference('docker.io/library/solo-lens:2.0.0')).toEqual({
      request: 'solo-lens@2.0.0',
      registry: 'test',
    });
    // The tag is still the one the signed reference names (or the version's own).
    await expect(m.reference('docker.io/solo-lens:3.0.0')).rejects.toMatchObject({
      name: 'ClientError',
      code: 'NO_MATCHING_VERSION',
    });
  });

  it("resolves a manifest's digest through the OCI registry under the host written in capitals, and installs the signed blob", async () => {
    const m = await machine();
    const loud = host.replace('localhost', 'LocalHost');
    expect(await m.reference(`${loud}/acme/case-lens:1.0.0`)).toEqual({
      request: 'case-lens@1.0.0',
      registry: 'test',
    });
    const target = await m.reference(`${loud}/acme/case-lens@${pushed.manifestDigest}`);
    expect(target).toEqual({ request: 'case-lens@1.0.0', registry: 'test' });
    const result = await m.run(LINUX, (c) =>
      c.install({ requests: [target?.request as string], dir: m.dir, lockfile: m.lockfile }),
    );
    expect(await readFile(result.items[0]?.path as string)).toEqual(Buffer.from(TOOL));
  });
});

describe('when one repository, however written, holds two plugins', () => {
  it('refuses every spelling of it, naming both plugins and how each wrote it, and installs either by name', async () => {
    const m = await machine();
    for (const text of [
      'docker.io/twin:1.0.0',
      'docker.io/library/twin:1.0.0',
      `index.docker.io/twin@sha256:${'ab'.repeat(32)}`,
    ]) {
      const refused = await m.reference(text).catch((error: unknown) => error);
      expect(refused, text).toBeInstanceOf(ClientError);
      expect(refused).toMatchObject({ code: 'REQUEST_INVALID' });
      expect((refused as ClientError).message).toContain(
        'twin-a (docker.io/twin), twin-b (registry-1.docker.io/library/twin)',
      );
    }
    expect(await m.reference('twin-b:1.0.0')).toEqual({ request: 'twin-b@1.0.0', registry: 'test' });
  });
});
