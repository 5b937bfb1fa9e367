/**
 * `npm start`: one command from a fresh clone to a working registry. Creates the registry once, publishes
 * every example under examples/ as one batch (a second start finds them already published), applies the
 * lifecycle actions of examples/lifecycle.json once (a yank, an advisory, a deprecation, signed by the example
 * publisher, so the pages and the client show them), serves it, and publishes whatever is dropped into
 * incoming/.
 *
 * Example layout: examples/<name>/<version>/manifest.(json|yaml) and
 * examples/<name>/<version>/artifacts/<os>-<arch>/<file>.
 */

import { access, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type ActionBody, signAction } from '../../index-builder/actions.ts';
import { parseRegistryConfig } from '../../index-builder/config.ts';
import { INCOMING_PREFIX, pluginDocumentKey, REGISTRY_PUBLIC_KEY_KEY } from '../../index-builder/layout.ts';
import type { PluginDocument } from '../../index-builder/model.ts';
import { processSubmissions, rebuildRegistry } from '../../index-builder/pipeline/index.ts';
import { generateKeyPair } from '../../index-builder/signing.ts';
import { CACHE_PRIVATE } from '../../index-builder/store.ts';
import { type ArtifactInput, packSubmission } from '../../index-builder/submission.ts';
import { CliError } from '../errors.ts';
import { makeFolder, refuseOutputInRegistry } from '../inputs.ts';
import { createNewFile } from '../new-file.ts';
import { describeOutcome } from '../output.ts';
import {
  initRegistry,
  isRegistry,
  openRegistry,
  readConfig,
  withRegistryLock,
  writeConfig,
} from './registry.ts';
import { startService, untilInterrupted } from './service.ts';

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

export interface ExampleVersion {
  readonly label: string;
  readonly manifestFile: string;
  readonly artifacts: readonly { os: string; arch: string; file: string }[];
}

/** Finds every example version and its per-platform artifacts. */
export async function findExamples(root: string): Promise<ExampleVersion[]> {
  const found: ExampleVersion[] = [];
  for (const name of await subdirectories(root)) {
    for (const version of await subdirectories(path.join(root, name))) {
      const dir = path.join(root, name, version);
      let manifestFile: string | undefined;
      for (const candidate of ['manifest.json', 'manifest.yaml', 'manifest.yml']) {
        if (await exists(path.join(dir, candidate))) manifestFile = path.join(dir, candidate);
      }
      if (!manifestFile) continue;
      const artifacts = [];
      for (const platform of await subdirectories(path.join(dir, 'artifacts'))) {
        const [os, arch] = platform.split('-');
        if (!os || !arch) continue;
        for (const file of (await readdir(path.join(dir, 'artifacts', platform))).sort()) {
          artifacts.push({ os, arch, file: path.join(dir, 'artifacts', platform, file) });
        }
      }
      found.push({ label: `${name}@${version}`, manifestFile, artifacts });
    }
  }
  return found;
}

/**
 * The example publisher's secret key, made by the first start. Created whole or not at all, as `keygen`
 * creates one: a start that failed or was killed while it wrote the key left part of one, which every later
 * start took for the key and failed on. Of starts making it at once one creates it, and the others, refused,
 * read that one (they had read it half written, or written their own over it).
 */
export async function demoPublisherKey(dir: string): Promise<string> {
  const keyDir = path.join(dir, 'demo-publisher');
  const secretFile = path.join(keyDir, 'secret.asc');
  const publicFile = path.join(keyDir, 'public.asc');
  if (await exists(secretFile)) return readFile(secretFile, 'utf8');
  const pair = await generateKeyPair({
    name: 'plugindex example publisher',
    email: 'examples@plugindex.invalid',
  });
  const refused = (file: string) => (cause: unknown) =>
    new CliError('FILE_EXISTS', `${file} exists`, { cause });
  // Not Node's recursive mkdir, which loops for ever under /proc (makeFolder says why).
  await makeFolder(keyDir);
  try {
    await createNewFile(secretFile, pair.secretKey, { mode: 0o600, exists: refused(secretFile) });
  } catch (error) {
    if (!(error instanceof CliError && error.code === 'FILE_EXISTS')) throw error;
    // Another start created it first: that key is the demo publisher's, and that start writes its public half.
    return readFile(secretFile, 'utf8');
  }
  await createNewFile(publicFile, pair.publicKey, { mode: 0o644, exists: refused(publicFile) });
  return pair.secretKey;
}

/** Whether the plugin document already shows what `body` would do (so a restart does not repeat it). */
function shows(doc: PluginDocument | undefined, body: ActionBody): boolean {
  if (!doc || body.action === 'revoke-key') return true;
  const record = 'version' in body ? doc.versions.find((v) => v.version === body.version) : undefined;
  switch (body.action) {
    case 'yank':
      return record?.yanked !== false;
    case 'advisory-add':
      return (doc.advisories ?? []).some((a) => a.id === body.advisory.id);
    case 'deprecate':
      return doc.versions.some((v) => v.deprecated);
    default:
      return true;
  }
}

/**
 * Applies the example lifecycle actions the registry does not show yet, as one batch, each signed by the
 * example publisher as `plugindex yank` and the rest would sign it.
 */
async function applyExampleActions(
  dir: string,
  registry: Awaited<ReturnType<typeof openRegistry>>,
  secretKey: string,
  file: string,
  log: (line: string) => void,
): Promise<void> {
  if (!(await exists(file))) return;
  const { actions } = JSON.parse(await readFile(file, 'utf8')) as { actions: ActionBody[] };
  const keys: string[] = [];
  for (const [i, body] of actions.entries()) {
    if (body.action === 'revoke-key') continue;
    const published = await registry.context.site.get(pluginDocumentKey(body.plugin));
    const doc = published
      ? (JSON.parse(new TextDecoder().decode(published.body)) as PluginDocument)
      : undefined;
    if (shows(doc, body)) continue;
    const { bytes } = await signAction(body, { registry: registry.context.config.url, secretKey });
    const key = `${INCOMING_PREFIX}example-action-${i}-${body.action}.json`;
    await registry.context.intake.put(key, bytes, {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    });
    keys.push(key);
  }
  if (keys.length === 0) return;
  const result = await withRegistryLock(dir, () => processSubmissions(registry.context, keys));
  for (const outcome of result.outcomes) log(`  ${describeOutcome(outcome, 'line').join(' ')}`);
}

export async function runDev(options: {
  readonly dir: string;
  readonly port: number;
  readonly examples: string;
  readonly log: (line: string) => void;
  /** The server's errors and warnings (`startService`'s `warn`): stderr; `log` unless given. */
  readonly warn?: (line: string) => void;
}): Promise<void> {
  const { dir, port, log } = options;
  const url = `http://127.0.0.1:${port}`;
  if (!(await isRegistry(dir))) {
    // Never inside another registry's folder, as init refuses it: under its public/ the new signing key
    // was served to anyone.
    await refuseOutputInRegistry('registry', dir, { kind: 'folder' });
    const { fingerprint } = await initRegistry(dir, {
      name: 'plugindex demo registry',
      url,
      description: 'A local plugindex registry with example plugins',
    });
    log(`created registry in ${dir} (signing key ${fingerprint})`);
  } else {
    const config = await readConfig(dir);
    if (config.url !== url) {
      // Links in published documents are absolute: follow the port this run serves on.
      await writeConfig(dir, parseRegistryConfig({ ...config, url }));
      const reopened = await openRegistry(dir);
      await withRegistryLock(dir, () => rebuildRegistry(reopened.context));
      log(`registry URL changed to ${url}; documents rebuilt`);
    }
  }
  const registry = await openRegistry(dir);
  const secretKey = await demoPublisherKey(dir);
  const examples = await findExamples(options.examples);
  const keys: string[] = [];
  for (const example of examples) {
    const [name, version] = example.label.split('@') as [string, string];
    // Already published: skip packing (a new signature would only produce an "already published" record).
    const published = await registry.context.site.get(pluginDocumentKey(name));
    const doc = published
      ? (JSON.parse(new TextDecoder().decode(published.body)) as PluginDocument)
      : undefined;
    if (doc?.versions.some((v) => v.version === version)) continue;
    const artifacts: ArtifactInput[] = [];
    for (const a of example.artifacts) {
      artifacts.push({
        os: a.os,
        arch: a.arch,
        fileName: path.basename(a.file),
        body: new Uint8Array(await readFile(a.file)),
      });
    }
    const packed = await packSubmission({
      manifestName: path.basename(example.manifestFile),
      manifest: new Uint8Array(await readFile(example.manifestFile)),
      artifacts,
      secretKey,
    });
    const key = `${INCOMING_PREFIX}example-${example.label.replace('@', '-')}.tgz`;
    await registry.context.intake.put(key, packed.bundle, {
      contentType: 'application/gzip',
      cacheControl: CACHE_PRIVATE,
    });
    keys.push(key);
  }
  const result = await withRegistryLock(dir, () => processSubmissions(registry.context, keys));
  const count = (status: string): number => result.outcomes.filter((o) => o.status === status).length;
  log(
    `examples: ${count('accepted')} published, ${examples.length - keys.length + count('already-published')} already published, ${count('rejected')} rejected`,
  );
  for (const outcome of result.outcomes.filter((o) => o.status === 'rejected'))
    log(`  ${describeOutcome(outcome, 'line').join(' ')}`);

  await applyExampleActions(dir, registry, secretKey, path.join(options.examples, 'lifecycle.json'), log);

  const service = await startService({
    dir,
    port,
    watch: true,
    log,
    ...(options.warn ? { warn: options.warn } : {}),
  });
  log('');
  log(`plugindex registry at ${service.url}/`);
  log(`  home (search):   ${service.url}/`);
  log(`  registry index:  ${service.url}/index.json  (also /index.yaml, /plugins)`);
  log(`  falcoctl index:  ${service.url}/falcoctl/index.yaml`);
  log(`  search (spec):   ${service.url}/search?q=cost&provider=aws`);
  log(
    `  signed snapshot: ${service.url}/snapshot.json (+ .asc), key at ${service.url}/${REGISTRY_PUBLIC_KEY_KEY}`,
  );
  const first = examples[0]?.label.split('@')[0];
  if (first) log(`  a plugin:        ${service.url}/plugins/${first}  (JSON or HTML by Accept)`);
  log('');
  log(`Drop a bundle into ${path.join(dir, 'incoming')}/ and it is published within a second or two:`);
  log(`  npx plugindex keygen --output my-key`);
  log(
    `  npx plugindex pack MANIFEST --key my-key/secret.asc --output my.tgz && mv my.tgz ${path.join(dir, 'incoming')}/`,
  );
  log(`Outcomes land in ${path.join(dir, 'status')}/. Ctrl-C stops.`);
  await untilInterrupted(service);
}
