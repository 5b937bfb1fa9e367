/**
 * The scale run on S3: a registry of N plugins of 10 versions (default 30,000) seeded into two buckets of a
 * local s3rver, then the publish function's handler (functions/handlers.ts, as the bundle wires it, with
 * the signing key given rather than fetched) invoked in a process of its own, once per upload: each
 * invocation publishes one version and flushes the index documents (multipart uploads past 8 MiB). Prints
 * each invocation's time and flush time, the bytes of index documents, and the process's peak RSS.
 *
 * `node --import tsx bench/scale-s3.ts [PLUGINS] [INVOCATIONS]`
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { S3Store } from '../adapters/s3-store.ts';
import { createPublishHandler } from '../functions/handlers.ts';
import { systemClock } from '../index-builder/clock.ts';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { createSigner } from '../index-builder/signing.ts';
import { startLocalS3 } from '../test/support/s3.ts';
import { type Keys, makeKeys, scaleBundle, seedStores } from './scale.ts';
import { median } from './stats.ts';
import { URL_BASE } from './synthetic.ts';

const INTAKE = 'scale-intake';
const SITE = 'scale-site';
const CONFIG_KEY = 'config/plugindex.json';

interface Child {
  readonly s3: S3ClientConfig;
  readonly keysFile: string;
  readonly plugins: number;
  readonly invocations: number;
}

/** In the child: the handler, invoked once per upload; one JSON line out. */
async function invoke(spec: Child): Promise<void> {
  const keys = JSON.parse(await readFile(spec.keysFile, 'utf8')) as Keys;
  const client = new S3Client(spec.s3);
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
    const result = await handler({});
    times.push(performance.now() - t);
    if (result.outcomes[0]?.status !== 'accepted') throw new Error(JSON.stringify(result.outcomes[0]));
  }
  const site = new S3Store({ client, bucket: SITE });
  let bytes = 0;
  for (const key of ['index.json', 'index.yaml', 'search.json', 'falcoctl/index.yaml'])
    bytes += (await site.head(key))?.size ?? 0;
  const maxRss = rss();
  process.stdout.write(`${JSON.stringify({ times, flushes, bytes, maxRss, beforeFlush, afterFlush })}\n`);
  client.destroy();
}

async function main(plugins: number, invocations: number): Promise<void> {
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
    let t = performance.now();
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
    console.log(`${plugins} plugins seeded into s3rver in ${(performance.now() - t).toFixed(0)} ms`);
    const spec: Child = { s3: s3.config, keysFile, plugins, invocations };
    t = performance.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', import.meta.filename, '--child', JSON.stringify(spec)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    for await (const chunk of child.stdout) out += chunk;
    const result = JSON.parse(out) as {
      times: number[];
      flushes: number[];
      bytes: number;
      maxRss: number;
      beforeFlush: number[];
      afterFlush: number[];
    };
    const mb = (bytes: number[]): string => bytes.map((b) => (b / 1e6).toFixed(0)).join(', ');
    const warm = result.times.slice(1);
    console.log(
      `publish function on s3rver, ${plugins} plugins: ${invocations} invocations (each a publish and a flush): ${result.times.map((x) => x.toFixed(0)).join(', ')} ms; warm median ${median(warm).toFixed(0)} ms, of which the flush ${median(result.flushes.slice(1)).toFixed(0)} ms for ${(result.bytes / 1e6).toFixed(0)} MB of index documents; peak RSS ${(result.maxRss / 1e6).toFixed(0)} MB (per invocation, before its flush: ${mb(result.beforeFlush)} MB; after: ${mb(result.afterFlush)} MB)`,
    );
  } finally {
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await invoke(JSON.parse(process.argv[3] as string) as Child);
else await main(Number(process.argv[2] ?? 30_000), Number(process.argv[3] ?? 4));
