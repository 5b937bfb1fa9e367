/**
 * `node --import tsx bench/verify.bench.ts [N] [ROUNDS]`: N publisher signatures (default 1,000) judged as a
 * batch judges them (`judgeSignature`: verify, then the key's usability at the time of publishing), one
 * publisher key read once, each signature over its own ~500-byte manifest. Also times `verifyDetachedSignature`
 * alone. Prints the median per round, for signatures made by the registry's one-pass signer (SHA-256) and
 * by openpgp.js (SHA-512, as GnuPG also signs with an Ed25519 key). With PLUGINDEX_BENCH_PROFILE=FILE writes
 * a V8 CPU profile of one judged round, 8 in flight.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import * as openpgp from 'openpgp';
import {
  createSigner,
  generateKeyPair,
  readPublicKey,
  verifyDetachedSignature,
} from '../index-builder/signing.ts';
import { judgeSignature } from '../index-builder/trust.ts';
import { median } from './stats.ts';

const n = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 5);
const created = new Date(Date.now() - 86_400_000);
const pair = await generateKeyPair({ name: 'Bench Publisher', date: created });
const key = (await readPublicKey(pair.publicKey)).key;
const signer = await createSigner(pair.secretKey);
const privateKey = await openpgp.readPrivateKey({ armoredKey: pair.secretKey });
const manifests = Array.from({ length: n }, (_, i) =>
  new TextEncoder().encode(JSON.stringify({ name: `plugin-${i}`, version: '1.0.0', pad: 'x'.repeat(400) })),
);
const signed = {
  'one-pass (SHA-256)': await Promise.all(manifests.map((m) => signer.sign(m))),
  'openpgp.js (SHA-512)': await Promise.all(
    manifests.map(async (m) =>
      openpgp.sign({
        message: await openpgp.createMessage({ binary: m }),
        signingKeys: privateKey,
        detached: true,
        format: 'armored',
      }),
    ),
  ),
};
const now = new Date();

/** `inFlight` at once, as the pipeline inspects bundles (INSPECT_CONCURRENCY, evaluate.ts). */
async function judgeAll(signatures: readonly string[], inFlight = 1): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) await judgeOne(signatures, i);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

async function judgeOne(signatures: readonly string[], i: number): Promise<void> {
  const judged = await judgeSignature({
    data: manifests[i] as Uint8Array,
    signature: signatures[i] as string,
    candidates: [key],
    now,
    sigPath: 'bundle:manifest.json.asc',
    what: 'manifest.json',
    registryFingerprints: [],
  });
  if (!judged.ok) throw new Error(`signature ${i} refused: ${JSON.stringify(judged)}`);
}

async function verifyAll(signatures: readonly string[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const result = await verifyDetachedSignature(
      manifests[i] as Uint8Array,
      signatures[i] as string,
      [key],
      now,
    );
    if (!result.ok) throw new Error(`signature ${i} refused: ${result.message}`);
  }
}

/** Median wall time of a round, and median time the main thread was busy in it (the rest: the thread pool). */
async function time(run: () => Promise<void>): Promise<{ wall: number; main: number }> {
  const walls: number[] = [];
  const mains: number[] = [];
  await run(); // warm-up: JIT, and the key's self-signatures verified once
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    const loop = performance.eventLoopUtilization();
    await run();
    walls.push(performance.now() - started);
    mains.push(performance.eventLoopUtilization(loop).active);
  }
  return { wall: median(walls), main: median(mains) };
}

const each = (t: { wall: number; main: number }): string =>
  `${t.wall.toFixed(0)} ms (${((t.wall / n) * 1000).toFixed(0)} µs each; main thread busy ${((t.main / n) * 1000).toFixed(0)} µs)`;

for (const [kind, signatures] of Object.entries(signed)) {
  const judged = await time(() => judgeAll(signatures));
  const judged8 = await time(() => judgeAll(signatures, 8));
  const verified = await time(() => verifyAll(signatures));
  console.log(`${kind}, ${n} signatures, median of ${rounds}:`);
  console.log(`  judged one at a time: ${each(judged)}`);
  console.log(`  judged 8 in flight:   ${each(judged8)}`);
  console.log(`  verified only:        ${each(verified)}`);
}

const profileTo = process.env.PLUGINDEX_BENCH_PROFILE;
if (profileTo) {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  await judgeAll(signed['one-pass (SHA-256)'], 8);
  const { profile } = await session.post('Profiler.stop');
  await writeFile(profileTo, JSON.stringify(profile));
  console.log(`profile written to ${profileTo}`);
}
