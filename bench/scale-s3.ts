/**
 * The scale run on S3: a registry of N plugins of 10 versions (default 30,000) seeded into two buckets of a
 * local s3rver, then the publish function's handler (functions/handlers.ts, as the bundle wires it, with
 * the signing key given rather than fetched) invoked in a process of its own, once per upload: each
 * invocation publishes one version and flushes the index documents (multipart uploads past 8 MiB). Prints
 * each invocation's time and flush time, the bytes of index documents, the process's peak RSS, and how
 * each index document and variant went up in each flush (one PUT, or multipart in how many parts: what the
 * S3 store sent, counted as its commands left the client); `runScaleS3` gives them to the memory-bound test
 * (test/adapters/s3-store-scale.test.ts).
 *
 * `node --import tsx bench/scale-s3.ts [PLUGINS] [INVOCATIONS]`
 *
 * With PLUGINDEX_SCALE_TRACE=FILE, the invoked process also writes to FILE, every 100 ms, its memory
 * (`process.memoryUsage()`: RSS, heap used and total, array buffers) and each S3 command as it starts and
 * ends (with its key and part number): where the memory of a flush goes, phase by phase.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { S3Store } from '../adapters/s3-store.ts';
import { createPublishHandler } from '../functions/handlers.ts';
import { systemClock } from '../index-builder/clock.ts';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { CATALOG_ORDER_KEY, INDEX_DOCUMENTS, variantOfKey } from '../index-builder/layout.ts';
import { createSigner } from '../index-builder/signing.ts';
import { startLocalS3 } from '../test/support/s3.ts';
import { type Keys, makeKeys, scaleBundle, seedStores } from './scale.ts';
import { median } from './stats.ts';
import { URL_BASE } from './synthetic.ts';

const INTAKE = 'scale-intake';
const SITE = 'scale-site';
const CONFIG_KEY = 'config/plugindex.json';
const TRACE_MS = 100;

interface Child {
  readonly s3: S3ClientConfig;
  readonly keysFile: string;
  readonly plugins: number;
  readonly invocations: number;
}

export interface ScaleS3Result {
  readonly plugins: number;
  /** Each invocation (a publish and a flush), in order; the first in a cold process. */
  readonly times: readonly number[];
  /** Each invocation's flush, as the handler logs it. */
  readonly flushes: readonly number[];
  /** Bytes of the index documents the last flush wrote (the documents, not their variants). */
  readonly bytes: number;
  /** The parts `index.json` went up in, over every invocation (none when each was one PUT). */
  readonly indexParts: number;
  /**
   * Each invocation's writes of the index documents and their variants, by key: 0 for one PUT, else the
   * parts of its multipart upload (a key the flush did not write is absent).
   */
  readonly documentParts: readonly Readonly<Record<string, number>>[];
  /** The size of each index document and variant once the last invocation was done (bytes). */
  readonly documentSizes: Readonly<Record<string, number>>;
  /** Peak resident set of the invoked process, in bytes. */
  readonly maxRss: number;
  /** The peak so far once each invocation's rounds were done, before its flush (bytes). */
  readonly beforeFlush: readonly number[];
  /** The peak so far after each invocation's flush (bytes). */
  readonly afterFlush: readonly number[];
}

/** Writes the process's memory every TRACE_MS to `file`, and each command of `client` as it starts and ends. */
function startTrace(client: S3Client, file: string): () => void {
  const out = createWriteStream(file);
  const t0 = performance.now();
  let stopped = false;
  const at = () => (performance.now() - t0).toFixed(0);
  const line = (text: string) => {
    if (!stopped) out.write(`${at()} ${text}\n`);
  };
  const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    line(
      `mem rss=${mb(m.rss)} heap=${mb(m.heapUsed)} heapTotal=${mb(m.heapTotal)} arrayBuffers=${mb(m.arrayBuffers)}`,
    );
  }, TRACE_MS);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: string; PartNumber?: number };
      const name = `${context.commandName} ${input.Key ?? ''} ${input.PartNumber ?? ''}`;
      line(`start ${name}`);
      try {
        return await next(args);
      } finally {
        line(`end ${name}`);
      }
    },
    { step: 'initialize', name: 'scaleTrace' },
  );
  return () => {
    stopped = true;
    clearInterval(timer);
    out.end();
  };
}

/** An index document or one of its compressed variants (what a flush writes whatever the registry). */
function isIndexDocument(key: string): boolean {
  return INDEX_DOCUMENTS.includes(variantOfKey(key)?.document ?? key);
}

/** In the child: the handler, invoked once per upload; one JSON line out. */
async function invoke(spec: Child): Promise<void> {
  const keys = JSON.parse(await readFile(spec.keysFile, 'utf8')) as Keys;
  const client = new S3Client(spec.s3);
  const trace = process.env.PLUGINDEX_SCALE_TRACE;
  const stopTrace = trace ? startTrace(client, trace) : undefined;
  let indexParts = 0;
  /** This invocation's writes of index documents and variants: parts by key, 0 for a PUT. */
  let parts: Record<string, number> = {};
  const documentParts: Record<string, number>[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const key = (args.input as { Key?: string }).Key ?? '';
      if (isIndexDocument(key)) {
        if (context.commandName === 'PutObjectCommand') parts[key] = 0;
        if (context.commandName === 'CreateMultipartUploadCommand') parts[key] = 0;
        if (context.commandName === 'UploadPartCommand') {
          parts[key] = (parts[key] ?? 0) + 1;
          if (key === 'index.json') indexParts++;
        }
      }
      return next(args);
    },
    { step: 'initialize', name: 'countParts' },
  );
  const signer = await createSigner(keys.registry);
  const flushes: number[] = [];
  /** Peak RSS once an invocation's rounds are done (it logs each outcome before the flush), per invocation. */
  const beforeFlush: number[] = [];
  const afterFlush: number[] = [];
  const rss = (): number => process.resourceUsage().maxRSS * 1024;
  const handler = createPublishHandler({
    config: {
      intakeBucket: INTAKE,
      siteBucket: SITE,
      signingKeySecretId: 'unused',
      configKey: CONFIG_KEY,
      distributionId: undefined,
      s3Endpoint: undefined,
      defaults: {},
      publishers: undefined,
      operators: undefined,
      snapshotRefreshSeconds: undefined,
    },
    s3: client,
    cloudfront: undefined as never, // no distribution: never called
    signer: async () => signer,
    logger: {
      info: (message, fields) => {
        if (message === 'submission') beforeFlush.push(rss());
        if (message === 'batch done') {
          flushes.push(Number(fields?.flushMs));
          afterFlush.push(rss());
        }
      },
      warn: () => {},
      error: (message, fields) => console.error(message, fields),
    },
  });
  const times: number[] = [];
  const series = Date.now();
  for (let r = 0; r < spec.invocations; r++) {
    const Body = await scaleBundle(keys, spec.plugins, r, series);
    await client.send(new PutObjectCommand({ Bucket: INTAKE, Key: `incoming/scale-${r}.tgz`, Body }));
    const t = performance.now();
    parts = {};
    const result = await handler({});
    times.push(performance.now() - t);
    documentParts.push(parts);
    if (result.outcomes[0]?.status !== 'accepted') throw new Error(JSON.stringify(result.outcomes[0]));
  }
  const maxRss = rss();
  stopTrace?.();
  const site = new S3Store({ client, bucket: SITE });
  let bytes = 0;
  for (const key of INDEX_DOCUMENTS) bytes += (await site.head(key))?.size ?? 0;
  const documentSizes: Record<string, number> = {};
  for (const key of new Set(documentParts.flatMap((p) => Object.keys(p))))
    documentSizes[key] = (await site.head(key))?.size ?? 0;
  const result: ScaleS3Result = {
    plugins: spec.plugins,
    times,
    flushes,
    bytes,
    indexParts,
    documentParts,
    documentSizes,
    maxRss,
    beforeFlush,
    afterFlush,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  client.destroy();
}

/**
 * Seeds `plugins` plugins of 10 versions into a fresh s3rver, then invokes the publish function
 * `invocations` times in a process of its own (its RSS is the function's alone: s3rver runs here).
 */
export async function runScaleS3(
  plugins: number,
  invocations: number,
  onSeeded?: (ms: number) => void,
  options: { readonly fullRendering?: boolean } = {},
): Promise<ScaleS3Result> {
  const s3 = await startLocalS3([INTAKE, SITE]);
  const dir = await mkdtemp(path.join(tmpdir(), 'plugindex-bench-s3-'));
  try {
    const keys = await makeKeys();
    const keysFile = path.join(dir, 'keys.json');
    await writeFile(keysFile, JSON.stringify(keys));
    const intake = new S3Store({ client: s3.client, bucket: INTAKE });
    await intake.put(CONFIG_KEY, new TextEncoder().encode(JSON.stringify({ name: 'Scale', url: URL_BASE })), {
      contentType: 'application/json',
      cacheControl: 'no-store',
    });
    const t = performance.now();
    await seedStores(
      {
        intake,
        site: new S3Store({ client: s3.client, bucket: SITE }),
        signer: await createSigner(keys.registry),
        clock: systemClock,
        config: parseRegistryConfig({ name: 'Scale', url: URL_BASE }),
      },
      keys,
      plugins,
    );
    onSeeded?.(performance.now() - t);
    // Without the order the seeding rendered in, the first flush renders every document in full (the spill):
    // what a rebuild or the first flush after an upgrade does, the most memory a flush takes.
    if (options.fullRendering) await intake.delete(CATALOG_ORDER_KEY);
    const spec: Child = { s3: s3.config, keysFile, plugins, invocations };
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', import.meta.filename, '--child', JSON.stringify(spec)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    let out = '';
    for await (const chunk of child.stdout) out += chunk;
    const code = await exited;
    if (code !== 0) throw new Error(`the invoked process exited with ${code}`);
    return JSON.parse(out) as ScaleS3Result;
  } finally {
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(plugins: number, invocations: number): Promise<void> {
  const result = await runScaleS3(plugins, invocations, (ms) =>
    console.log(`${plugins} plugins seeded into s3rver in ${ms.toFixed(0)} ms`),
  );
  const mb = (bytes: readonly number[]): string => bytes.map((b) => (b / 1e6).toFixed(0)).join(', ');
  const warm = result.times.slice(1);
  console.log(
    `publish function on s3rver, ${plugins} plugins: ${invocations} invocations (each a publish and a flush): ${result.times.map((x) => x.toFixed(0)).join(', ')} ms; warm median ${median(warm).toFixed(0)} ms, of which the flush ${median(result.flushes.slice(1)).toFixed(0)} ms (flushes ${result.flushes.map((x) => x.toFixed(0)).join(', ')} ms) for ${(result.bytes / 1e6).toFixed(0)} MB of index documents; peak RSS ${(result.maxRss / 1e6).toFixed(0)} MB (per invocation, before its flush: ${mb(result.beforeFlush)} MB; after: ${mb(result.afterFlush)} MB)`,
  );
  console.log(
    `how each flush wrote the index documents (the S3 store's part size ${PART_SIZE_BYTES / 2 ** 20} MiB; multipart from ${MULTIPART_FROM}):`,
  );
  for (const line of partLines(result)) console.log(`  ${line}`);
}

/** The S3 store's defaults (adapters/s3-store.ts), which the handler's store uses. */
const PART_SIZE_BYTES = 8 * 2 ** 20;
const MULTIPART_FROM = 'a streamed body over one part, or a whole one of 16 MiB';

/** Per document and variant: its size, and per invocation whether it went multipart and in how many parts. */
export function partLines(result: ScaleS3Result): string[] {
  const keys = [...new Set(result.documentParts.flatMap((p) => Object.keys(p)))].sort();
  return keys.map((key) => {
    const size = result.documentSizes[key] ?? 0;
    const each = result.documentParts.map((p) => {
      const parts = p[key];
      if (parts === undefined) return 'not written';
      return parts === 0 ? 'one PUT' : `multipart, ${parts} parts`;
    });
    const over = size > PART_SIZE_BYTES ? 'over' : 'within';
    return `${key} (${(size / 1e6).toFixed(1)} MB, ${over} the part size): ${each.join('; ')}`;
  });
}

if (process.argv[1] === import.meta.filename) {
  if (process.argv[2] === '--child') await invoke(JSON.parse(process.argv[3] as string) as Child);
  else await main(Number(process.argv[2] ?? 30_000), Number(process.argv[3] ?? 4));
}
