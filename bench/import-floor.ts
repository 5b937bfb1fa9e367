/**
 * A yardstick for `plugindex process` of a batch of new plugins: the work an import cannot do without,
 * done the plainest way, with the core's own parts, in the pipeline's shape (an inspection thread, the
 * publishing thread, a writer thread), and none of the pipeline's bookkeeping. For each upload in
 * REGISTRY/incoming, in name order:
 * - this thread reads it and sends it to an inspection thread (this module again, in a worker), which
 *   hashes it (SHA-256), gunzips and untars it (`readTar`), parses and validates its manifest
 *   (`loadManifest`), and checks the publisher's signature with the key the bundle carries
 *   (`verifyDetachedSignature`, each distinct key read once), as the pipeline's inspector thread does;
 * - this thread signs the published manifest and the new plugin document (`createSigner`, the registry's
 *   key), renders the document, its page and its index lines (`versionRecordOf`, `mergePluginDocument`,
 *   `renderPlugin`), and hands its six files (manifest, signature, artifact, document, signature, page) and
 *   their folders to one writer thread, which writes each to a temporary name and renames it into place,
 *   as the filesystem store does.
 * Then the four index documents are rendered from the plugins' lines, hashed, signed, and those over 1 MB
 * compressed in both codings (`compressDocument`); then each upload gets a status file and moves to
 * processed/.
 *
 * Left out, and owed by the real import: the registry's state (catalog, log, snapshot, intents, markers),
 * what an upload is checked against beyond its own signature (ownership, policy, versions already
 * published, the key's validity over time), crash recovery and the re-reads that make it safe, and every
 * rejection path. So it is a yardstick for the same layout and the same threads, not a competitor: the
 * distance from it to the command is what the pipeline's bookkeeping costs.
 *
 * Built as the CLI is built (build/cli.mjs; bench/side-by-side.bench.ts builds and runs it), so it loads
 * the same bundled libraries. Usage: node FLOOR.mjs REGISTRY OUT_DIR: writes OUT_DIR/public and
 * OUT_DIR/status, moves the uploads from REGISTRY/incoming to OUT_DIR/processed, and signs with
 * REGISTRY/keys/registry-secret.asc (a registry `plugindex init` made, unencrypted key).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isMainThread, type MessagePort, parentPort, Worker, workerData } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { compressDocument } from '../index-builder/compression.ts';
import { normalizeDigest, sha256Hex } from '../index-builder/digest.ts';
import {
  artifactKey,
  manifestKey,
  pluginDocumentKey,
  pluginPageKey,
  signatureKey,
} from '../index-builder/layout.ts';
import { loadManifest } from '../index-builder/manifest/index.ts';
import type { ArtifactRecord, Manifest } from '../index-builder/model.ts';
import { mergePluginDocument, renderPlugin } from '../index-builder/pipeline/plugin-document.ts';
import { versionRecordOf } from '../index-builder/records.ts';
import {
  renderFalcoctlIndex,
  renderIndexJson,
  renderIndexYaml,
  renderSearchJson,
} from '../index-builder/render/index-documents.ts';
import { createSigner, verifyDetachedSignature } from '../index-builder/signing.ts';
import { readTar } from '../index-builder/tar.ts';

/** What the inspection thread answers for one upload. */
interface Inspected {
  readonly id: number;
  readonly sourceSha256: string;
  readonly manifest: Manifest;
  readonly manifestBytes: Uint8Array;
  /** The files the manifest's artifacts name, by name, each checked against its digest. */
  readonly files: readonly (readonly [string, Uint8Array])[];
  readonly publisher: string;
}

const INSPECTOR = 'import-floor-inspector';

/** The inspection thread: bundles in, what the publishing thread needs of each out, a batch a message. */
function serveInspections(port: MessagePort): void {
  const publishers = new Map<string, openpgp.Key>();
  const inspect = async ({ id, bytes }: { id: number; bytes: Uint8Array }): Promise<Inspected> => {
    const sourceSha256 = createHash('sha256').update(bytes).digest('hex');
    const files = new Map(readTar(gunzipSync(bytes), 1000).entries.map((e) => [e.name, e.body]));
    const manifestBytes = files.get('manifest.json');
    const armoredSignature = files.get('manifest.json.asc');
    const armoredKey = files.get('publisher.asc');
    if (!manifestBytes || !armoredSignature || !armoredKey) throw new Error(`upload ${id}: not a bundle`);
    const keyText = Buffer.from(armoredKey).toString('utf8');
    let key = publishers.get(keyText);
    if (!key) {
      key = await openpgp.readKey({ armoredKey: keyText });
      publishers.set(keyText, key);
    }
    const manifest = await loadManifest(manifestBytes, 'manifest.json');
    const verified = await verifyDetachedSignature(
      manifestBytes,
      Buffer.from(armoredSignature).toString('utf8'),
      [key],
    );
    if (!verified.ok) throw new Error(`upload ${id}: its signature does not verify`);
    // Checked here, as the pipeline's inspection checks them: the publishing thread takes the digests as given.
    const named = (manifest.installation?.artifacts ?? []).flatMap((a) => {
      const body = a.file === undefined ? undefined : files.get(a.file);
      if (a.file === undefined || !body) return [];
      if (sha256Hex(body) !== normalizeDigest(a.sha256))
        throw new Error(`upload ${id}: ${a.file} does not match its digest`);
      return [[a.file, body.slice()] as const];
    });
    return {
      id,
      sourceSha256,
      manifest,
      manifestBytes: manifestBytes.slice(),
      files: named,
      publisher: verified.fingerprint,
    };
  };
  port.on('message', async (batch: { id: number; bytes: Uint8Array }[]) => {
    port.postMessage(await Promise.all(batch.map(inspect)));
  });
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === INSPECTOR)
  serveInspections(parentPort);
else if (isMainThread) await runImport();

async function runImport(): Promise<void> {
  const [registry, out] = process.argv.slice(2);
  if (!registry || !out) {
    process.stderr.write('usage: import-floor REGISTRY OUT_DIR\n');
    process.exit(2);
  }
  const started = performance.now();
  const incoming = path.join(registry, 'incoming');
  const publicDir = path.join(out, 'public');
  const statusDir = path.join(out, 'status');
  const processedDir = path.join(out, 'processed');
  for (const dir of [publicDir, statusDir, processedDir]) mkdirSync(dir, { recursive: true });

  /** One writer thread's work: folders to make, files to write (temporary name, then renamed), a move. */
  interface Job {
    readonly dirs?: readonly string[];
    readonly files?: readonly (readonly [string, Uint8Array])[];
    readonly move?: readonly [string, string];
  }
  // Plain JavaScript, run by `eval`: the floor's writer loads nothing but `fs`.
  const writer = new Worker(
    `const { parentPort } = require('node:worker_threads');
  const fs = require('node:fs');
  const made = new Set();
  parentPort.on('message', (jobs) => {
    for (const job of jobs) {
      for (const dir of job.dirs ?? []) {
        if (made.has(dir)) continue;
        try { fs.mkdirSync(dir); } catch (error) { if (error.code !== 'EEXIST') throw error; }
        made.add(dir);
      }
      for (const [file, body] of job.files ?? []) {
        const temp = file + '.tmp';
        const fd = fs.openSync(temp, 'wx');
        fs.writeSync(fd, body);
        fs.closeSync(fd);
        fs.renameSync(temp, file);
      }
      if (job.move) fs.renameSync(job.move[0], job.move[1]);
    }
    parentPort.postMessage(jobs.length);
  });`,
    { eval: true },
  );
  let pending = 0;
  let drained: (() => void) | undefined;
  writer.on('message', () => {
    pending--;
    if (pending === 0) drained?.();
  });
  writer.on('error', (error) => {
    throw error;
  });
  let jobs: Job[] = [];
  const send = (job: Job): void => {
    jobs.push(job);
    if (jobs.length < 64) return;
    pending++;
    writer.postMessage(jobs);
    jobs = [];
  };
  const written = async (): Promise<void> => {
    if (jobs.length > 0) {
      pending++;
      writer.postMessage(jobs);
      jobs = [];
    }
    if (pending > 0) await new Promise<void>((resolve) => (drained = resolve));
  };
  /** The folders of `key` under public/, outermost first (the writer makes each once). */
  const foldersOf = (key: string): string[] => {
    const parts = key.split('/').slice(0, -1);
    return parts.map((_, i) => path.join(publicDir, ...parts.slice(0, i + 1)));
  };

  const url = 'http://127.0.0.1:8080';
  const identity = { name: 'plugindex import floor', url };
  const signer = await createSigner(readFileSync(path.join(registry, 'keys', 'registry-secret.asc'), 'utf8'));
  const utf8 = new TextEncoder();
  const published = new Date().toISOString();
  const lines: { entry: string; search: string; falcoctl: string }[] = [];
  const uploads = readdirSync(incoming).sort();

  // The inspection thread: this module again. Uploads go to it 16 a message, answers come back as many.
  const inspector = new Worker(new URL(import.meta.url), { workerData: { role: INSPECTOR } });
  const answers = new Map<number, (inspected: Inspected) => void>();
  inspector.on('message', (batch: Inspected[]) => {
    for (const inspected of batch) answers.get(inspected.id)?.(inspected);
  });
  inspector.on('error', (error) => {
    throw error;
  });
  let outbox: { id: number; bytes: Uint8Array }[] = [];
  const post = (): void => {
    if (outbox.length === 0) return;
    inspector.postMessage(outbox);
    outbox = [];
  };
  const inspected = (id: number, bytes: Uint8Array): Promise<Inspected> => {
    const answer = new Promise<Inspected>((resolve) => answers.set(id, resolve));
    if (outbox.length === 0) setImmediate(post);
    outbox.push({ id, bytes });
    if (outbox.length >= 16) post();
    return answer;
  };

  /** Judges one upload, and hands its files to the writer: its lines go to `lines[index]`. */
  async function judge(upload: string, index: number): Promise<void> {
    const raw = readFileSync(path.join(incoming, upload));
    const { sourceSha256, manifest, manifestBytes, files, publisher } = await inspected(index, raw);
    answers.delete(index);
    const artifacts: ArtifactRecord[] = [];
    const writes: [string, Uint8Array][] = [];
    for (const artifact of manifest.installation?.artifacts ?? []) {
      const body = files.find(([file]) => file === artifact.file)?.[1];
      if (!body || artifact.file === undefined) continue;
      const key = artifactKey(manifest.name, manifest.version, artifact.file);
      writes.push([key, body]);
      const sha256 = normalizeDigest(artifact.sha256);
      artifacts.push({
        os: artifact.os,
        arch: artifact.arch,
        url: `${url}/${key}`,
        sha256,
        size_bytes: body.byteLength,
        hosted: true,
      });
    }
    const manifestAt = manifestKey(manifest.name, manifest.version);
    const signedManifest = await signer.signWithDigest(manifestBytes);
    const record = versionRecordOf(manifest, {
      published,
      manifest_url: `${url}/${manifestAt}`,
      manifest_signature_url: `${url}/${signatureKey(manifestAt)}`,
      manifest_sha256: signedManifest.sha256,
      manifest_size: manifestBytes.byteLength,
      manifest_signature: signedManifest.signature,
      source_sha256: sourceSha256,
      publisher,
      artifacts,
    });
    const rendered = renderPlugin(
      mergePluginDocument(undefined, [{ record, manifest }], 'first-come'),
      identity,
    );
    const documentAt = pluginDocumentKey(manifest.name);
    writes.push(
      [manifestAt, manifestBytes],
      [signatureKey(manifestAt), utf8.encode(signedManifest.signature)],
      [documentAt, rendered.body],
      [signatureKey(documentAt), utf8.encode(await signer.sign(rendered.body))],
      [pluginPageKey(manifest.name), rendered.page],
    );
    send({
      dirs: [...new Set(writes.flatMap(([key]) => foldersOf(key)))],
      files: writes.map(([key, body]) => [path.join(publicDir, key), body] as const),
    });
    lines[index] = rendered.line;
  }
  // 64 uploads in flight, as the pipeline has: the inspection thread works while this one signs and renders.
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < uploads.length) {
        const index = next++;
        await judge(uploads[index] as string, index);
      }
    }),
  );
  await written();
  const judged = performance.now();

  // The index documents, from the plugins' lines, each hashed and signed (one pass), the large ones compressed.
  const metadata = { name: identity.name, url };
  const indexDocuments: [string, Uint8Array][] = [
    [
      'index.json',
      renderIndexJson(
        metadata,
        lines.map((l) => utf8.encode(l.entry)),
      ),
    ],
    [
      'index.yaml',
      renderIndexYaml(
        'registry_version: 1.0.0\n',
        lines.map((l) => utf8.encode(l.entry)),
      ),
    ],
    [
      'search.json',
      renderSearchJson(
        published,
        lines.map((l) => utf8.encode(l.search)),
      ),
    ],
    ['falcoctl/index.yaml', renderFalcoctlIndex(lines.map((l) => utf8.encode(l.falcoctl)))],
  ];
  const variants = await Promise.all(
    indexDocuments.map(async ([key, body]): Promise<[string, Uint8Array][]> => {
      const { signature } = await signer.signWithDigest(body);
      const compressed =
        body.byteLength > 1_000_000
          ? await Promise.all(
              (['br', 'gzip'] as const).map(
                async (coding) =>
                  [`${key}.${coding === 'br' ? 'br' : 'gz'}`, await compressDocument(body, coding)] as [
                    string,
                    Uint8Array,
                  ],
              ),
            )
          : [];
      return [[key, body], [signatureKey(key), utf8.encode(signature)], ...compressed];
    }),
  );
  for (const files of variants)
    send({
      dirs: [...new Set(files.flatMap(([key]) => foldersOf(key)))],
      files: files.map(([key, body]) => [path.join(publicDir, key), body] as const),
    });
  await written();
  const committed = performance.now();

  // Outcomes, then the uploads leave incoming/.
  for (const upload of uploads)
    send({
      files: [
        [path.join(statusDir, `${upload}.json`), utf8.encode(`{"status":"accepted","upload":"${upload}"}\n`)],
      ],
      move: [path.join(incoming, upload), path.join(processedDir, upload)],
    });
  await written();
  await Promise.all([writer.terminate(), inspector.terminate()]);
  const ms = (t: number) => `${Math.round(t)} ms`;
  process.stderr.write(
    `import floor: ${uploads.length} uploads; judged and written ${ms(judged - started)}, index documents ` +
      `${ms(committed - judged)}, outcomes ${ms(performance.now() - committed)}; ${ms(performance.now())} since the process started\n`,
  );
}
