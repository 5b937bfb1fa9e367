/**
 * Lifecycle actions sent to a deployed registry (`--bucket`): the registry URL the action names read from
 * the config object the publish function reads (`config/plugindex.json` in the upload bucket), or given
 * with `--registry-url` where it cannot be read; the action uploaded to incoming/ and its outcome waited
 * for, while the publish function runs against the same S3 protocol server (s3rver on 127.0.0.1), as the
 * queue would trigger it. The function applies the action (the plugin document in the site bucket shows
 * it), and the command prints the outcome it recorded and exits by it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { S3Store } from '../../../adapters/s3-store.ts';
import { main } from '../../../cli/main.ts';
import { readSignedAction } from '../../../index-builder/actions.ts';
import { pluginDocumentKey, processedKey, rejectedKey, statusKey } from '../../../index-builder/layout.ts';
import type { PluginDocument } from '../../../index-builder/model.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import { listAll } from '../../../index-builder/store.ts';
import { encode, makeBundle, testKey, validManifest } from '../../support/fixtures.ts';
import { LOCAL_S3_ENV, type LocalS3, localPublishHandler, startLocalS3 } from '../../support/s3.ts';

const INTAKE = 'ra-intake';
const SITE = 'ra-site';
/** A deployment that keeps no config object (its URL is the function's REGISTRY_URL). */
const BARE = 'ra-bare';
/** A bucket whose config object an operator broke at a field. */
const REFUSED = 'ra-refused';
const URL_IN_CONFIG = 'https://plugins.example.com';
const PLUGIN = 'remote-demo';

let s3: LocalS3;
let work: string;
let secretKey: string;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the command in this process (the AWS settings are this process's environment), capturing output. */
async function plugindex(args: string[], whileRunning?: () => Promise<unknown>): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => stdout.push(String(chunk)) > 0);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => stderr.push(String(chunk)) > 0);
  try {
    let done = false;
    const cli = main(args).finally(() => {
      done = true;
    });
    // The publish function, as each upload's queue message would run it.
    while (whileRunning && !done) {
      await whileRunning();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { code: await cli, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const store = (bucket: string) => new S3Store({ client: s3.client, bucket });

beforeAll(async () => {
  s3 = await startLocalS3([INTAKE, SITE, BARE, REFUSED]);
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-actions-remote-'));
  Object.assign(process.env, LOCAL_S3_ENV);
  // As an operator stores it: with a trailing slash, which the registry drops.
  await s3.client.send(
    new PutObjectCommand({
      Bucket: INTAKE,
      Key: 'config/plugindex.json',
      Body: encode(JSON.stringify({ name: 'Remote', url: `${URL_IN_CONFIG}/` })),
    }),
  );
  secretKey = path.join(work, 'secret.asc');
  await writeFile(secretKey, (await testKey('publisher')).secretKey);
  const bundle = path.join(work, 'remote.tgz');
  await writeFile(bundle, await makeBundle({ manifest: validManifest({ name: PLUGIN }) }));
  const handler = await localPublishHandler(s3, INTAKE, SITE);
  const published = await plugindex(
    ['publish', bundle, '--bucket', INTAKE, '--endpoint', s3.endpoint, '--timeout', '20'],
    () => handler({}),
  );
  expect(published.code, published.stderr).toBe(0);
}, 60_000);

/** The publisher's key, and the upload bucket on the local S3 server. */
const toBucket = (): string[] => ['--key', secretKey, '--bucket', INTAKE, '--endpoint', s3.endpoint];

afterAll(async () => {
  await s3?.close();
  await rm(work, { recursive: true, force: true });
});

describe('when an action for a deployed registry is written with --output', () => {
  it('names the config object as well as the field when it is refused at one (exit 1)', async () => {
    await s3.client.send(
      new PutObjectCommand({
        Bucket: REFUSED,
        Key: 'config/plugindex.json',
        Body: encode(JSON.stringify({ name: 'Remote', url: URL_IN_CONFIG, policy: 'anyone' })),
      }),
    );
    const file = path.join(work, 'refused.json');
    const refused = await plugindex([
      'yank',
      `${PLUGIN}@1.0.0`,
      '--key',
      secretKey,
      '--bucket',
      REFUSED,
      '--endpoint',
      s3.endpoint,
      '--output',
      file,
    ]);
    expect(refused.code).toBe(1);
    // Before, `registry config /policy: …`: the field alone, not which bucket's object.
    expect(refused.stderr).toContain(
      `CONFIG_INVALID: registry config s3://${REFUSED}/config/plugindex.json /policy:`,
    );
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("names the URL in the upload bucket's config object", async () => {
    const file = path.join(work, 'from-config.json');
    const result = await plugindex(['yank', `${PLUGIN}@1.0.0`, ...toBucket(), '--output', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(readSignedAction(new Uint8Array(await readFile(file))).action.registry).toBe(URL_IN_CONFIG);
    // Written, not uploaded.
    expect(await listAll(store(INTAKE), 'incoming/')).toEqual([]);
  });

  it('asks for --registry-url where the bucket keeps no config (exit 2), and names the URL given', async () => {
    const args = [
      'unyank',
      `${PLUGIN}@1.0.0`,
      '--key',
      secretKey,
      '--bucket',
      BARE,
      '--endpoint',
      s3.endpoint,
    ];
    const missing = await plugindex([...args, '--output', path.join(work, 'never.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`cannot read the registry config s3://${BARE}/config/plugindex.json`);
    expect(missing.stderr).toContain('--registry-url URL');
    const file = path.join(work, 'given.json');
    const given = await plugindex([...args, '--registry-url', 'https://cdn.example.org/', '--output', file]);
    expect(given.code, given.stderr).toBe(0);
    expect(readSignedAction(new Uint8Array(await readFile(file))).action.registry).toBe(
      'https://cdn.example.org',
    );
  });
});

/** The outcome the function recorded, and the upload it kept (moved out of incoming/, as the JSON it is). */
async function recorded(outcome: SubmissionOutcome): Promise<{ status: unknown; upload: Uint8Array }> {
  const status = await store(INTAKE).get(statusKey(outcome.id));
  const kept = await store(INTAKE).get(
    outcome.status === 'rejected' ? rejectedKey(outcome.id, 'json') : processedKey(outcome.id, 'json'),
  );
  if (!status || !kept) throw new Error(`no record of ${outcome.id}`);
  return { status: JSON.parse(new TextDecoder().decode(status.body)), upload: kept.body };
}

/** The plugin document the function published in the site bucket. */
async function published(): Promise<PluginDocument> {
  const object = await store(SITE).get(pluginDocumentKey(PLUGIN));
  if (!object) throw new Error(`no plugin document for ${PLUGIN}`);
  return JSON.parse(new TextDecoder().decode(object.body)) as PluginDocument;
}

describe('when an action is submitted to a deployed registry', () => {
  it('uploads it to incoming/, waits for the outcome the function records, prints it and exits by it', async () => {
    const handler = await localPublishHandler(s3, INTAKE, SITE);
    const result = await plugindex(
      ['deprecate', PLUGIN, '--message', 'use remote-demo-2', ...toBucket(), '--timeout', '20', '--json'],
      () => handler({}),
    );
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout) as SubmissionOutcome;
    expect(outcome).toMatchObject({ status: 'accepted', action: 'deprecate', plugin: PLUGIN, problems: [] });
    expect(outcome.seq).toEqual(expect.any(Number));
    expect(result.stderr).toContain(`uploaded s3://${INTAKE}/incoming/`);
    const { status, upload } = await recorded(outcome);
    expect(status).toEqual(outcome);
    expect(readSignedAction(upload).action).toMatchObject({
      action: 'deprecate',
      plugin: PLUGIN,
      message: 'use remote-demo-2',
      registry: URL_IN_CONFIG,
    });
    // Applied: the whole plugin deprecated, its version too.
    const doc = await published();
    expect(doc.deprecation).toMatchObject({ message: 'use remote-demo-2' });
    expect(doc.versions.find((v) => v.version === '1.0.0')).toMatchObject({
      deprecated: true,
      deprecation_message: 'use remote-demo-2',
    });
  });

  it('submits a written envelope with submit FILE --bucket, byte for byte', async () => {
    const file = path.join(work, 'to-submit.json');
    const written = await plugindex([
      'advisory',
      'add',
      PLUGIN,
      '--id',
      'PDX-2026-0009',
      '--severity',
      'critical',
      '--affected',
      '<=1.0.0',
      '--summary',
      'remote code execution',
      ...toBucket(),
      '--output',
      file,
    ]);
    expect(written.code, written.stderr).toBe(0);
    const handler = await localPublishHandler(s3, INTAKE, SITE);
    const result = await plugindex(
      ['submit', file, '--bucket', INTAKE, '--endpoint', s3.endpoint, '--timeout', '20', '--json'],
      () => handler({}),
    );
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout) as SubmissionOutcome;
    expect(outcome).toMatchObject({ status: 'accepted', action: 'advisory-add', plugin: PLUGIN });
    const { upload } = await recorded(outcome);
    expect(upload).toEqual(new Uint8Array(await readFile(file)));
    expect((await published()).advisories).toEqual([
      expect.objectContaining({ id: 'PDX-2026-0009', severity: 'critical', affected: '<=1.0.0' }),
    ]);
  });

  it('exits 1 when no outcome is recorded in time, saying where to read it later', async () => {
    // No function runs: the outcome never comes.
    const result = await plugindex(['unyank', `${PLUGIN}@1.0.0`, ...toBucket(), '--timeout', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no outcome after 0 s: read status\/.+\.json later/);
    // Left for the function: it is taken at the next doorbell.
    expect(await listAll(store(INTAKE), 'incoming/')).toHaveLength(1);
    await (await localPublishHandler(s3, INTAKE, SITE))({});
  });

  it('prints that failure as JSON under --json, an action and submit alike, as publish and rotate-key do', async () => {
    // Prepare: an envelope to submit; no function runs, so neither outcome comes.
    const file = path.join(work, 'unanswered.json');
    const written = await plugindex(['yank', `${PLUGIN}@1.0.0`, ...toBucket(), '--output', file]);
    expect(written.code, written.stderr).toBe(0);

    // Act
    const runs = [
      await plugindex(['unyank', `${PLUGIN}@1.0.0`, ...toBucket(), '--timeout', '0', '--json']),
      await plugindex([
        'submit',
        file,
        '--bucket',
        INTAKE,
        '--endpoint',
        s3.endpoint,
        '--timeout',
        '0',
        '--json',
      ]),
    ];

    // Assess
    for (const result of runs) {
      expect(result.code, result.stderr).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({
        ok: false,
        error: {
          code: 'OUTCOME_TIMEOUT',
          bucket: INTAKE,
          upload_key: expect.stringMatching(/^incoming\//),
          status_keys: [expect.stringMatching(/^status\/.+\.json$/), expect.anything()],
        },
      });
    }
    expect(await listAll(store(INTAKE), 'incoming/')).toHaveLength(2);
    await (await localPublishHandler(s3, INTAKE, SITE))({});
  });
});
