/**
 * The lifecycle action commands as a user runs them (the built `plugindex` as a process): the signed
 * envelope `--output` writes (read back as the registry reads it, its signature checked by openpgp.js and
 * by GnuPG), the registry URL it names taken from the registry's config, every usage error before any file
 * is read (exit 2), the other failures (exit 1), a local submission's recorded outcome, `submit` of a
 * written envelope, `owners list` of a published registry, and the help of every new command.
 *
 * A submitted action is judged and applied by the pipeline: here one accepted action's outcome, record
 * and effect, and a replayed one refused; test/cli/commands/actions-applied.test.ts applies every kind.
 * Operator actions are signed by an operator key (`plugindex operators add`), never the registry's own.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import { main } from '../../../cli/main.ts';
import { ACTION_SCHEMA, type Action, readSignedAction } from '../../../index-builder/actions.ts';
import { SubmissionError } from '../../../index-builder/errors.ts';
import {
  actionEnvelopeKey,
  pluginDocumentKey,
  processedKey,
  rejectedKey,
  statusKey,
} from '../../../index-builder/layout.ts';
import type { PluginDocument, RevokedKeysDocument } from '../../../index-builder/model.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import { readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import { makeBundle, testKey, validManifest } from '../../support/fixtures.ts';
import { gpgKeyring } from '../../support/gpg.ts';
import { type ServingRegistry, startServe } from '../../support/serve.ts';
import { treeOf } from '../../support/tree.ts';
import { UNTRUSTED_KEYS } from '../../support/untrusted-keys.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const execute = promisify(execFile);
const PLUGIN = 'demo-plugin';
/** As `plugindex init` was given it: the config keeps it without the trailing slash. */
const REGISTRY_URL = 'http://127.0.0.1:1/reg';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let work: string;
let dir: string;
let publisherSecret: string;
let publisherFingerprint: string;
let newOwnerSecret: string;
let newOwnerFingerprint: string;
let operatorSecret: string;
let operatorFingerprint: string;
let outputs = 0;

async function plugindex(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [BIN, ...args], {
      cwd: work,
      env: { ...process.env, CI: '1', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const outputFile = () => path.join(work, `action-${++outputs}.json`);

/** Copies of the keys and files a command reads, for the tests that aim its output at one of them. */
interface Copies {
  readonly signer: string;
  readonly passphrase: string;
  readonly keyFile: string;
  readonly link: string;
  readonly other: string;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-actions-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'Actions Registry', url: `${REGISTRY_URL}/` });
  const publisher = await testKey('publisher');
  const newOwner = await testKey('new-owner');
  publisherSecret = path.join(work, 'publisher-secret.asc');
  newOwnerSecret = path.join(work, 'new-owner-secret.asc');
  publisherFingerprint = publisher.fingerprint;
  newOwnerFingerprint = newOwner.fingerprint;
  await writeFile(publisherSecret, publisher.secretKey);
  await writeFile(path.join(work, 'publisher-public.asc'), publisher.publicKey);
  await writeFile(newOwnerSecret, newOwner.secretKey);
  await writeFile(path.join(work, 'new-owner-public.asc'), newOwner.publicKey);
  const operator = await testKey('operator');
  operatorSecret = path.join(work, 'operator-secret.asc');
  operatorFingerprint = operator.fingerprint;
  await writeFile(operatorSecret, operator.secretKey);
  await writeFile(path.join(work, 'operator-public.asc'), operator.publicKey);
  expect(await main(['operators', 'add', path.join(work, 'operator-public.asc'), '--registry', dir])).toBe(0);
  const bundle = path.join(work, 'demo.tgz');
  await writeFile(bundle, await makeBundle({ manifest: validManifest({ name: PLUGIN }) }));
  expect(await main(['publish', bundle, '--registry', dir, '--json'])).toBe(0);
}, 60_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The action a command line asks for, the key that signs it, and the fields the envelope must carry. */
const ACTIONS: readonly {
  readonly title: string;
  readonly args: () => string[];
  readonly key: () => string;
  readonly signer: () => string;
  readonly fields: () => Record<string, unknown>;
}[] = [
  {
    title: 'yank NAME@VERSION --reason',
    args: () => ['yank', `${PLUGIN}@1.0.0`, '--reason', 'broken build'],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({ action: 'yank', plugin: PLUGIN, version: '1.0.0', reason: 'broken build' }),
  },
  {
    title: 'unyank NAME@VERSION',
    args: () => ['unyank', `${PLUGIN}@1.0.0`],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({ action: 'unyank', plugin: PLUGIN, version: '1.0.0' }),
  },
  {
    title: 'deprecate NAME@RANGE --message --replacement',
    args: () => [
      'deprecate',
      `${PLUGIN}@>=1.0.0 <2.0.0`,
      '--message',
      'use the new one',
      '--replacement',
      'new-plugin',
    ],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({
      action: 'deprecate',
      plugin: PLUGIN,
      range: '>=1.0.0 <2.0.0',
      message: 'use the new one',
      replacement: 'new-plugin',
    }),
  },
  {
    title: 'undeprecate NAME (the whole plugin)',
    args: () => ['undeprecate', PLUGIN],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({ action: 'undeprecate', plugin: PLUGIN }),
  },
  {
    title: 'advisory add',
    args: () => [
      'advisory',
      'add',
      PLUGIN,
      '--id',
      'PDX-2026-0001',
      '--severity',
      'high',
      '--affected',
      '<1.1.0',
      '--fixed',
      '1.1.0',
      '--summary',
      'Credentials in the log',
      '--url',
      'https://advisories.example/PDX-2026-0001',
    ],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({
      action: 'advisory-add',
      plugin: PLUGIN,
      advisory: {
        id: 'PDX-2026-0001',
        severity: 'high',
        affected: '<1.1.0',
        fixed: '1.1.0',
        summary: 'Credentials in the log',
        url: 'https://advisories.example/PDX-2026-0001',
      },
    }),
  },
  {
    title: 'advisory withdraw',
    args: () => ['advisory', 'withdraw', PLUGIN, '--id', 'PDX-2026-0001', '--reason', 'a false alarm'],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({
      action: 'advisory-withdraw',
      plugin: PLUGIN,
      id: 'PDX-2026-0001',
      reason: 'a false alarm',
    }),
  },
  {
    title: 'owners remove NAME FINGERPRINT (as gpg prints it: groups, lowercase)',
    args: () => [
      'owners',
      'remove',
      PLUGIN,
      (newOwnerFingerprint.match(/.{4}/g) as string[]).join(' ').toLowerCase(),
    ],
    key: () => publisherSecret,
    signer: () => publisherFingerprint,
    fields: () => ({ action: 'owners-remove', plugin: PLUGIN, fingerprint: newOwnerFingerprint }),
  },
  {
    title: 'operator remove NAME@VERSION --reason (an operator key)',
    args: () => ['operator', 'remove', `${PLUGIN}@1.0.0`, '--reason', 'a court order'],
    key: () => operatorSecret,
    signer: () => operatorFingerprint,
    fields: () => ({ action: 'remove', plugin: PLUGIN, version: '1.0.0', reason: 'a court order' }),
  },
  {
    title: 'operator revoke FINGERPRINT --reason',
    args: () => ['operator', 'revoke', publisherFingerprint, '--reason', 'the key leaked'],
    key: () => operatorSecret,
    signer: () => operatorFingerprint,
    fields: () => ({ action: 'revoke-key', fingerprint: publisherFingerprint, reason: 'the key leaked' }),
  },
];

/** Reads an envelope as the registry does, and checks its signature with openpgp.js and GnuPG. */
async function verifiedEnvelope(file: string, signer: string): Promise<Action> {
  const read = readSignedAction(new Uint8Array(await readFile(file)));
  const key = await readPublicKey(read.key);
  expect(key.fingerprint).toBe(signer);
  expect(read.key).not.toContain('PRIVATE KEY');
  const verified = await verifyDetachedSignature(read.text, read.signature, [key.key]);
  expect(verified.ok && verified.fingerprint).toBe(signer);
  const gpg = gpgKeyring(read.key);
  try {
    expect(gpg.verify(read.text, read.signature)).toContain(`VALIDSIG ${signer}`);
  } finally {
    gpg.close();
  }
  return read.action;
}

/** Runs the action command `args` signed by `key` against the local registry, written to `file`, not submitted. */
const writeAction = (args: readonly string[], key: string, file: string) =>
  plugindex([...args, '--key', key, '--registry', dir, '--output', file]);

describe('when an action is written with --output instead of submitted', () => {
  it.each(ACTIONS)(
    '$title: an envelope the registry reads, signed by --key, naming the registry from its config',
    async (c) => {
      const before = await treeOf(dir);
      const file = outputFile();
      const started = Date.now();
      const result = await writeAction(c.args(), c.key(), file);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`by ${c.signer()} -> ${file}`);
      const action = await verifiedEnvelope(file, c.signer());
      const { schema, registry, created, nonce, ...fields } = action;
      expect(schema).toBe(ACTION_SCHEMA);
      expect(registry).toBe(REGISTRY_URL);
      expect(Date.parse(created)).toBeGreaterThanOrEqual(started - 1000);
      expect(Date.parse(created)).toBeLessThanOrEqual(Date.now());
      expect(nonce).toMatch(/^[0-9a-f]{32}$/);
      expect(fields).toEqual(c.fields());
      // Written, not submitted: the registry is as it was.
      expect(await treeOf(dir)).toEqual(before);
    },
  );

  it('operator revoke: its message names the key it revokes, as another action its plugin@version', async () => {
    const file = outputFile();
    const result = await writeAction(
      ['operator', 'revoke', publisherFingerprint, '--reason', 'the key leaked'],
      operatorSecret,
      file,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      `signed revoke-key ${publisherFingerprint} for ${REGISTRY_URL} by ${operatorFingerprint} -> ${file}`,
    );
  });

  it.each([
    [
      'owners add NAME KEYFILE',
      'owners',
      ['add', PLUGIN],
      'owners-add',
      {},
      () => path.join(work, 'new-owner-public.asc'),
    ],
    [
      'operator transfer NAME KEYFILE --reason',
      'operator',
      ['transfer', PLUGIN],
      'transfer',
      { reason: 'sold' },
      () => path.join(work, 'new-owner-public.asc'),
    ],
  ] as const)('%s: carries the public key KEYFILE holds', async (_, command, args, kind, extra, keyFile) => {
    const file = outputFile();
    const signer = command === 'operator' ? operatorSecret : publisherSecret;
    const result = await writeAction(
      [command, ...args, keyFile(), ...('reason' in extra ? ['--reason', extra.reason] : [])],
      signer,
      file,
    );
    expect(result.code, result.stderr).toBe(0);
    const action = await verifiedEnvelope(
      file,
      command === 'operator' ? operatorFingerprint : publisherFingerprint,
    );
    expect(action).toMatchObject({ action: kind, plugin: PLUGIN, ...extra });
    const key = (action as Action & { key: string }).key;
    expect(key).not.toContain('PRIVATE KEY');
    expect((await readPublicKey(key)).fingerprint).toBe(newOwnerFingerprint);
  });

  it.each([
    ['a secret key', () => newOwnerSecret],
    ['a public key followed by a secret one', () => path.join(work, 'public-then-secret.asc')],
    // Secret packets under a public key's armor header: openpgp.js reads them as the secret key.
    ['a secret key under a public key’s armor header', () => path.join(work, 'relabelled-secret.asc')],
  ])(
    'owners add refuses %s as KEYFILE with SECRET_KEY_GIVEN (exit 2), signing and sending nothing',
    async (_, keyFile) => {
      // The owner's own new key (a rotation) or another person's: a secret key where the public one is
      // asked for is an operator's mistake either way, and the file it is in gets copied on (into scripts,
      // config, to a co-owner). Its public part was taken in silence.
      await writeFile(
        path.join(work, 'public-then-secret.asc'),
        `${await readFile(path.join(work, 'new-owner-public.asc'), 'utf8')}\n${await readFile(newOwnerSecret, 'utf8')}`,
      );
      await writeFile(
        path.join(work, 'relabelled-secret.asc'),
        (await readFile(newOwnerSecret, 'utf8')).replaceAll('PGP PRIVATE KEY BLOCK', 'PGP PUBLIC KEY BLOCK'),
      );
      const before = await treeOf(dir);
      const file = outputFile();

      const written = await writeAction(['owners', 'add', PLUGIN, keyFile()], publisherSecret, file);
      const submitted = await plugindex([
        'owners',
        'add',
        PLUGIN,
        keyFile(),
        '--key',
        publisherSecret,
        '--registry',
        dir,
      ]);

      expect(written.code).toBe(2);
      expect(written.stderr).toContain(
        `SECRET_KEY_GIVEN: ${keyFile()} is a secret key, not the new owner's public key`,
      );
      expect(written.stderr).toContain('public.asc');
      expect(await readFile(file).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
      expect(submitted.code).toBe(2);
      expect(submitted.stderr).toContain('SECRET_KEY_GIVEN');
      expect(submitted.stderr).not.toContain('signed owners-add');
      expect(await treeOf(dir)).toEqual(before);
    },
  );

  it("operator transfer refuses the new owner's secret key file with SECRET_KEY_GIVEN (exit 2), signing and sending nothing", async () => {
    // The operator acts for another person: a secret key of theirs in the operator's hands left its owner,
    // as the registry says of one in an envelope and publishers add of one handed to it.
    const before = await treeOf(dir);
    const file = outputFile();
    const written = await writeAction(
      ['operator', 'transfer', PLUGIN, newOwnerSecret, '--reason', 'sold'],
      operatorSecret,
      file,
    );
    expect(written.code).toBe(2);
    expect(written.stderr).toContain(`SECRET_KEY_GIVEN: ${newOwnerSecret} is a secret key`);
    expect(await readFile(file).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
    const submitted = await plugindex([
      'operator',
      'transfer',
      PLUGIN,
      newOwnerSecret,
      '--reason',
      'sold',
      '--key',
      operatorSecret,
      '--registry',
      dir,
    ]);
    expect(submitted.code).toBe(2);
    expect(submitted.stderr).toContain('SECRET_KEY_GIVEN');
    expect(submitted.stderr).not.toContain('signed transfer');
    expect(await treeOf(dir)).toEqual(before);
  });

  it.each(UNTRUSTED_KEYS)(
    'owners add and operator transfer refuse $label as KEYFILE with KEY_INVALID, signing and submitting nothing',
    async (key) => {
      // The registry refuses such a key (PUBLISHER_KEY_INVALID) and every signature by it: said here, first.
      const keyFile = path.join(work, 'untrusted-owner.asc');
      await writeFile(keyFile, key.publicKey);
      const before = await treeOf(dir);
      for (const [command, args, signer] of [
        ['owners', ['add', PLUGIN, keyFile], publisherSecret],
        ['operator', ['transfer', PLUGIN, keyFile, '--reason', 'sold'], operatorSecret],
      ] as const) {
        const file = outputFile();
        const refused = await writeAction([command, ...args], signer, file);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(`KEY_INVALID: the key ${key.fingerprint} cannot be trusted`);
        expect(refused.stderr).toContain(key.reason);
        expect(await readFile(file).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOENT');
        const submitted = await plugindex([command, ...args, '--key', signer, '--registry', dir]);
        expect(submitted.code).toBe(1);
        expect(submitted.stderr).toContain('KEY_INVALID');
      }
      expect(await treeOf(dir)).toEqual(before);
    },
  );

  it.each([
    {
      title: 'the --key file that signs it',
      code: 'OUTPUT_OVER_INPUT',
      args: (keys: Copies) => ['yank', `${PLUGIN}@1.0.0`, '--key', keys.signer, '--output', keys.signer],
      target: (keys: Copies) => keys.signer,
    },
    {
      title: 'the --passphrase-file',
      code: 'OUTPUT_OVER_INPUT',
      args: (keys: Copies) => [
        'yank',
        `${PLUGIN}@1.0.0`,
        '--key',
        keys.signer,
        '--passphrase-file',
        keys.passphrase,
        '--output',
        keys.passphrase,
      ],
      target: (keys: Copies) => keys.passphrase,
    },
    {
      title: 'the KEYFILE it carries, through a link',
      code: 'OUTPUT_OVER_INPUT',
      args: (keys: Copies) => [
        'owners',
        'add',
        PLUGIN,
        keys.keyFile,
        '--key',
        keys.signer,
        '--output',
        keys.link,
      ],
      target: (keys: Copies) => keys.keyFile,
    },
    {
      title: 'another secret key',
      code: 'OUTPUT_OVER_SECRET_KEY',
      args: (keys: Copies) => ['yank', `${PLUGIN}@1.0.0`, '--key', keys.signer, '--output', keys.other],
      target: (keys: Copies) => keys.other,
    },
  ])('never writes over $title: $code (exit 2), the file and the registry as they were', async (c) => {
    // Copies, so that a command that wrote over one leaves the keys the other tests use alone.
    const folder = await mkdtemp(path.join(work, 'over-'));
    const keys: Copies = {
      signer: path.join(folder, 'secret.asc'),
      passphrase: path.join(folder, 'passphrase'),
      keyFile: path.join(folder, 'new-owner-public.asc'),
      link: path.join(folder, 'link.asc'),
      other: path.join(folder, 'other-secret.asc'),
    };
    await writeFile(keys.signer, await readFile(publisherSecret));
    await writeFile(keys.passphrase, 'not needed: the key is not encrypted\n');
    await writeFile(keys.keyFile, await readFile(path.join(work, 'new-owner-public.asc')));
    await symlink(keys.keyFile, keys.link);
    await writeFile(keys.other, await readFile(operatorSecret));
    const before = await readFile(c.target(keys));
    const registryBefore = await treeOf(dir);
    const refused = await plugindex([...c.args(keys), '--registry', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${c.code}: --output `);
    expect(refused.stderr).toContain('nothing was written');
    expect(await readFile(c.target(keys))).toEqual(before);
    expect(await treeOf(dir)).toEqual(registryBefore);
  });

  it('signs with an encrypted key given PLUGINDEX_KEY_PASSPHRASE (or --passphrase-file), and fails without (exit 1)', async () => {
    const keyDir = path.join(work, 'encrypted');
    await writeFile(path.join(work, 'passphrase'), 'correct horse\n');
    const made = await plugindex([
      'keygen',
      '--out',
      keyDir,
      '--passphrase-file',
      path.join(work, 'passphrase'),
    ]);
    expect(made.code, made.stderr).toBe(0);
    const fingerprint = made.stdout.trim();
    const args = ['yank', `${PLUGIN}@1.0.0`, '--key', path.join(keyDir, 'secret.asc'), '--registry', dir];
    const file = outputFile();
    const byEnv = await plugindex([...args, '--output', file], { PLUGINDEX_KEY_PASSPHRASE: 'correct horse' });
    expect(byEnv.code, byEnv.stderr).toBe(0);
    await verifiedEnvelope(file, fingerprint);
    const byFile = await plugindex([
      ...args,
      '--output',
      outputFile(),
      '--passphrase-file',
      path.join(work, 'passphrase'),
    ]);
    expect(byFile.code, byFile.stderr).toBe(0);
    const without = await plugindex([...args, '--output', outputFile()]);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('KEY_PASSPHRASE');
  });

  it('refuses a public key as --key with KEY_INVALID naming the option and the file, writing and sending nothing (exit 1)', async () => {
    // "not an armored OpenPGP secret key: Armored text not of type private key" named neither, nor the
    // secret.asc keygen wrote beside the public.asc given.
    const given = path.join(work, 'given-public.asc');
    await writeFile(given, (await testKey('publisher')).publicKey);
    const before = await treeOf(dir);
    const file = outputFile();
    const written = await plugindex([
      'yank',
      `${PLUGIN}@1.0.0`,
      '--key',
      given,
      '--registry',
      dir,
      '--output',
      file,
    ]);
    expect(written.code).toBe(1);
    expect(written.stderr).toContain(
      `KEY_INVALID: --key ${given} is a public key, not the secret key that signs: give the secret key (the secret.asc plugindex keygen wrote beside public.asc`,
    );
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    const submitted = await plugindex([
      'yank',
      `${PLUGIN}@1.0.0`,
      '--key',
      given,
      '--registry',
      dir,
      '--json',
    ]);
    expect(submitted.code).toBe(1);
    expect(JSON.parse(submitted.stdout)).toMatchObject({ ok: false, error: { code: 'KEY_INVALID' } });
    expect(await treeOf(dir)).toEqual(before);
  });

  it('refuses a --registry-url no registry config takes (credentials, a query, a fragment, no URL) before signing, never showing it whole (exit 2)', async () => {
    // Signed into the action and sent to the registry, which refuses it as another registry's and files the
    // URL it names: a token in it went with the action. And a refusal echoed it whole.
    for (const url of [
      'https://deploy:s3cret@plugins.example.com',
      'https://s3cret@plugins.example.com/',
      'https://plugins.example.com/?token=s3cret',
      'https://plugins.example.com/#s3cret',
      'ftp://deploy:s3cret@plugins.example.com',
      'https://deploy:s3cret@plugins.example.com:99999',
    ]) {
      const file = outputFile();
      const refused = await plugindex([
        'unyank',
        `${PLUGIN}@1.0.0`,
        '--key',
        publisherSecret,
        '--registry-url',
        url,
        '--output',
        file,
        '--json',
      ]);
      expect(refused.code, `${url}: ${refused.stdout}${refused.stderr}`).toBe(2);
      expect(refused.stderr).toContain('--registry-url must be an http(s) URL');
      expect(`${refused.stdout}${refused.stderr}`).not.toContain('s3cret');
      await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('takes the URL from --registry-url without a registry folder, and refuses one the folder contradicts', async () => {
    const file = outputFile();
    const given = await plugindex([
      'unyank',
      `${PLUGIN}@1.0.0`,
      '--key',
      publisherSecret,
      '--registry-url',
      'https://plugins.example.com/',
      '--output',
      file,
      '--json',
    ]);
    expect(given.code, given.stderr).toBe(0);
    const answer = JSON.parse(given.stdout) as {
      file: string;
      signer: string;
      digest: string;
      action: Action;
    };
    expect(answer).toMatchObject({ file, signer: publisherFingerprint });
    expect(answer.action.registry).toBe('https://plugins.example.com');
    const read = readSignedAction(new Uint8Array(await readFile(file)));
    expect(read.digest).toBe(answer.digest);
    expect(read.action).toEqual(answer.action);

    const contradicted = await plugindex([
      'unyank',
      `${PLUGIN}@1.0.0`,
      '--key',
      publisherSecret,
      '--registry',
      dir,
      '--registry-url',
      'https://plugins.example.com',
      '--output',
      outputFile(),
    ]);
    expect(contradicted.code).toBe(2);
    expect(contradicted.stderr).toContain(
      `the registry at ${dir} is ${REGISTRY_URL}, not https://plugins.example.com`,
    );
  });
});

describe('when an action command is used wrongly', () => {
  /** A key file that does not exist: a usage error must come before any file is read. */
  const missingKey = () => path.join(work, 'no-such-key.asc');
  const cases: readonly (readonly [string, () => string[], string])[] = [
    [
      'no NAME@VERSION',
      () => ['yank', '--key', missingKey(), '--registry', dir],
      'expected one NAME@VERSION',
    ],
    [
      'NAME without @VERSION',
      () => ['yank', PLUGIN, '--key', missingKey(), '--registry', dir],
      'expected NAME@VERSION, found "demo-plugin"',
    ],
    [
      'a version that is not SemVer',
      () => ['yank', `${PLUGIN}@1.0`, '--key', missingKey(), '--registry', dir],
      'VERSION: expected a SemVer version (found "1.0")',
    ],
    [
      'a name that is not a plugin name',
      () => ['unyank', 'Demo_Plugin@1.0.0', '--key', missingKey(), '--registry', dir],
      'NAME: expected a plugin name',
    ],
    [
      'two specs',
      () => ['yank', `${PLUGIN}@1.0.0`, `${PLUGIN}@1.1.0`, '--key', missingKey(), '--registry', dir],
      'expected one NAME@VERSION',
    ],
    [
      'an empty range',
      () => ['deprecate', `${PLUGIN}@`, '--message', 'm', '--key', missingKey(), '--registry', dir],
      'the range after "@" is empty',
    ],
    [
      'a range that is not one',
      () => ['undeprecate', `${PLUGIN}@one two three`, '--key', missingKey(), '--registry', dir],
      'RANGE: expected a SemVer range',
    ],
    [
      'deprecate without --message',
      () => ['deprecate', PLUGIN, '--key', missingKey(), '--registry', dir],
      '--message TEXT',
    ],
    [
      'an empty --reason',
      () => ['yank', `${PLUGIN}@1.0.0`, '--reason', ' ', '--key', missingKey(), '--registry', dir],
      '--reason: expected non-empty text',
    ],
    [
      'an unknown severity',
      () => [
        'advisory',
        'add',
        PLUGIN,
        '--id',
        'A-1',
        '--severity',
        'urgent',
        '--affected',
        '<2.0.0',
        '--summary',
        's',
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      '--severity: expected one of low, moderate, high, critical (found "urgent")',
    ],
    [
      'an advisory whose --fixed version is one --affected names',
      () => [
        'advisory',
        'add',
        PLUGIN,
        '--id',
        'A-1',
        '--severity',
        'high',
        '--affected',
        '<2.0.0',
        '--fixed',
        '1.5.0',
        '--summary',
        's',
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      '--fixed: 1.5.0 is in the affected range <2.0.0',
    ],
    [
      'a plugin deprecated for itself',
      () => [
        'deprecate',
        PLUGIN,
        '--message',
        'moved',
        '--replacement',
        PLUGIN,
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      `--replacement: ${PLUGIN} cannot replace itself`,
    ],
    [
      'an advisory without --summary',
      () => [
        'advisory',
        'add',
        PLUGIN,
        '--id',
        'A-1',
        '--severity',
        'low',
        '--affected',
        '<2.0.0',
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      '--summary TEXT is required',
    ],
    [
      'an advisory link over http',
      () => [
        'advisory',
        'add',
        PLUGIN,
        '--id',
        'A-1',
        '--severity',
        'low',
        '--affected',
        '<2.0.0',
        '--summary',
        's',
        '--url',
        'http://x.example/a',
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      '--url: expected an https URL',
    ],
    [
      'a fixed version that is not one',
      () => [
        'advisory',
        'add',
        PLUGIN,
        '--id',
        'A-1',
        '--severity',
        'low',
        '--affected',
        '<2.0.0',
        '--fixed',
        'soon',
        '--summary',
        's',
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      '--fixed: expected a SemVer version',
    ],
    [
      'an option of another subcommand',
      () => [
        'advisory',
        'withdraw',
        PLUGIN,
        '--id',
        'A-1',
        '--severity',
        'high',
        '--key',
        missingKey(),
        '--registry',
        dir,
      ],
      '--severity is not an option of advisory withdraw',
    ],
    [
      'an unknown subcommand',
      () => ['advisory', 'publish', PLUGIN, '--key', missingKey(), '--registry', dir],
      'unknown advisory action "publish"',
    ],
    [
      'owners remove without FINGERPRINT',
      () => ['owners', 'remove', PLUGIN, '--key', missingKey(), '--registry', dir],
      'expected owners remove NAME FINGERPRINT',
    ],
    [
      'a fingerprint that is not one',
      () => ['operator', 'revoke', 'ABCD', '--reason', 'r', '--key', missingKey(), '--registry', dir],
      'FINGERPRINT: expected a key fingerprint',
    ],
    [
      'operator remove without --reason',
      () => ['operator', 'remove', `${PLUGIN}@1.0.0`, '--key', missingKey(), '--registry', dir],
      '--reason TEXT',
    ],
    ['no --key', () => ['yank', `${PLUGIN}@1.0.0`, '--registry', dir], '--key SECRET_KEY is required'],
    [
      'neither --registry nor --bucket',
      () => ['yank', `${PLUGIN}@1.0.0`, '--key', missingKey()],
      'give exactly one of --registry DIR or --bucket NAME',
    ],
    [
      'both --registry and --bucket',
      () => ['yank', `${PLUGIN}@1.0.0`, '--key', missingKey(), '--registry', dir, '--bucket', 'b'],
      'give exactly one of --registry DIR or --bucket NAME',
    ],
    [
      '--output with both --registry and --bucket',
      () => [
        'yank',
        `${PLUGIN}@1.0.0`,
        '--key',
        missingKey(),
        '--registry',
        dir,
        '--bucket',
        'b',
        '--output',
        'x.json',
      ],
      'give at most one of --registry DIR or --bucket NAME',
    ],
    [
      'a --timeout that is not seconds',
      () => ['unyank', `${PLUGIN}@1.0.0`, '--key', missingKey(), '--bucket', 'b', '--timeout', 'soon'],
      '--timeout must be a number of seconds',
    ],
    [
      'a --registry-url that is not http(s)',
      () => [
        'unyank',
        `${PLUGIN}@1.0.0`,
        '--key',
        missingKey(),
        '--registry-url',
        'ftp://x.example',
        '--output',
        'x.json',
      ],
      '--registry-url must be an http(s) URL',
    ],
    [
      'an unknown option',
      () => ['yank', `${PLUGIN}@1.0.0`, '--bogus', '--key', missingKey(), '--registry', dir],
      "Unknown option '--bogus'",
    ],
    [
      'owners list with neither --registry nor --url',
      () => ['owners', 'list', PLUGIN],
      'give exactly one of --registry DIR or --url URL',
    ],
    [
      'owners list with --key',
      () => ['owners', 'list', PLUGIN, '--registry', dir, '--key', missingKey()],
      '--key is not an option of owners list',
    ],
    [
      'owners list of a name that is not one',
      () => ['owners', 'list', '../etc', '--registry', dir],
      'NAME must be a plugin name',
    ],
    ['submit without FILE', () => ['submit', '--registry', dir], 'expected one FILE'],
    [
      'submit without a target',
      () => ['submit', path.join(work, 'x.json')],
      'give exactly one of --registry DIR or --bucket NAME',
    ],
  ];

  it.each(cases)(
    '%s: exit 2, saying what is wrong, and the registry is unchanged',
    async (_, args, message) => {
      const before = await treeOf(dir);
      const result = await plugindex(args());
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain('usage: plugindex');
      expect(await treeOf(dir)).toEqual(before);
    },
  );

  it('needs a registry URL to write an action for: exit 2 without --registry, --bucket or --registry-url', async () => {
    const result = await plugindex([
      'yank',
      `${PLUGIN}@1.0.0`,
      '--key',
      publisherSecret,
      '--output',
      outputFile(),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the action must name its registry: give --registry-url URL');
  });

  it.each([
    [
      'a key file that is not there',
      (): [string, string] => [path.join(work, 'no-such-key.asc'), dir],
      'FILE_NOT_FOUND',
    ],
    [
      'a public key as --key',
      (): [string, string] => [path.join(work, 'publisher-public.asc'), dir],
      'KEY_INVALID',
    ],
    ['a folder that is not a registry', (): [string, string] => [publisherSecret, work], 'NOT_A_REGISTRY'],
  ] as const)('fails (exit 1) for %s, naming its code, and submits nothing', async (_, given, code) => {
    const [key, registry] = given();
    const before = await treeOf(dir);
    const result = await plugindex(['yank', `${PLUGIN}@1.0.0`, '--key', key, '--registry', registry]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(code);
    expect(await treeOf(dir)).toEqual(before);
  });
});

/**
 * What the registry keeps of a submission: its outcome record and the upload moved out of incoming/ (an
 * action kept as the JSON it is, under processed/ or rejected/).
 */
async function recorded(outcome: SubmissionOutcome): Promise<{ status: unknown; upload: Uint8Array }> {
  const status = JSON.parse(await readFile(path.join(dir, statusKey(outcome.id)), 'utf8')) as unknown;
  const kept =
    outcome.status === 'rejected' ? rejectedKey(outcome.id, 'json') : processedKey(outcome.id, 'json');
  const upload = new Uint8Array(await readFile(path.join(dir, kept)));
  return { status, upload };
}

/** The plugin document as the registry published it. */
async function published(): Promise<PluginDocument> {
  return JSON.parse(await readFile(path.join(dir, 'public', pluginDocumentKey(PLUGIN)), 'utf8'));
}

describe('when an action is submitted to a local registry', () => {
  it('puts the signed action under incoming/, processes it at once, prints the recorded outcome and exits by it', async () => {
    const result = await plugindex([
      'yank',
      `${PLUGIN}@1.0.0`,
      '--reason',
      'broken build',
      '--key',
      publisherSecret,
      '--registry',
      dir,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout) as SubmissionOutcome;
    expect(outcome).toMatchObject({
      status: 'accepted',
      action: 'yank',
      plugin: PLUGIN,
      version: '1.0.0',
      signer: publisherFingerprint,
      problems: [],
    });
    expect(outcome.seq).toEqual(expect.any(Number));
    expect(result.stderr).toContain(
      `signed yank ${PLUGIN}@1.0.0 for ${REGISTRY_URL} by ${publisherFingerprint}`,
    );
    expect(outcome.submission).toMatch(new RegExp(`^incoming/.*-yank-${PLUGIN}$`));
    const { status, upload } = await recorded(outcome);
    expect(status).toEqual(outcome);
    const read = readSignedAction(upload);
    expect(read.action).toMatchObject({
      action: 'yank',
      plugin: PLUGIN,
      version: '1.0.0',
      registry: REGISTRY_URL,
    });
    expect(await readdir(path.join(dir, 'incoming'))).toEqual([]);
    // Applied: the version is yanked with its reason, and the envelope is published beside the log.
    expect((await published()).versions.find((v) => v.version === '1.0.0')).toMatchObject({
      yanked: true,
      yanked_reason: 'broken build',
    });
    expect(new Uint8Array(await readFile(path.join(dir, 'public', actionEnvelopeKey(read.digest))))).toEqual(
      upload,
    );
  });

  it('submits a written envelope with submit FILE, byte for byte, prints its outcome, and refuses it again as a replay', async () => {
    const file = outputFile();
    const written = await plugindex([
      'advisory',
      'add',
      PLUGIN,
      '--id',
      'PDX-2026-0042',
      '--severity',
      'low',
      '--affected',
      '<=1.0.0',
      '--summary',
      'verbose logs',
      '--key',
      publisherSecret,
      '--registry',
      dir,
      '--output',
      file,
    ]);
    expect(written.code, written.stderr).toBe(0);
    // Written, not applied: the document has no such advisory yet.
    expect((await published()).advisories ?? []).not.toContainEqual(
      expect.objectContaining({ id: 'PDX-2026-0042' }),
    );
    const result = await plugindex(['submit', file, '--registry', dir, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout) as SubmissionOutcome;
    expect(outcome).toMatchObject({ status: 'accepted', action: 'advisory-add', plugin: PLUGIN });
    const { status, upload } = await recorded(outcome);
    expect(status).toEqual(outcome);
    expect(upload).toEqual(new Uint8Array(await readFile(file)));
    expect((await published()).advisories).toContainEqual(
      expect.objectContaining({ id: 'PDX-2026-0042', severity: 'low', affected: '<=1.0.0' }),
    );

    // The same envelope again: applied already, so refused (exit 1), and kept under rejected/.
    const before = await published();
    const text = await plugindex(['submit', file, '--registry', dir]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`^rejected advisory-add ${PLUGIN} `));
    expect(text.stdout).toContain('ACTION_REPLAYED');
    expect(await published()).toEqual(before);
  });

  it('refuses to submit a file that is not a signed action (exit 1), naming each fault, and uploads nothing', async () => {
    const file = path.join(work, 'not-an-action.json');
    await writeFile(file, JSON.stringify({ schema: 'plugindex/signed-action/v1', action: '{}', extra: 1 }));
    const before = await treeOf(dir);
    const result = await plugindex(['submit', file, '--registry', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ACTION_MALFORMED envelope:/signature');
    expect(result.stderr).toContain('ACTION_MALFORMED envelope:/extra');
    expect(await treeOf(dir)).toEqual(before);
    // The same reading the registry does.
    expect(() => readSignedAction(new TextEncoder().encode(JSON.stringify({})))).toThrow(SubmissionError);
  });
});

describe('when the owners of a plugin are listed', () => {
  let served: ServingRegistry | undefined;
  afterAll(async () => {
    await served?.stop();
  });

  it("reads a local registry's published plugin document (text and --json)", async () => {
    const text = await plugindex(['owners', 'list', PLUGIN, '--registry', dir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(`owners of ${PLUGIN} (${dir}):\n  ${publisherFingerprint}\n`);
    const json = await plugindex(['owners', 'list', PLUGIN, '--registry', dir, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({
      plugin: PLUGIN,
      source: dir,
      owners: [publisherFingerprint],
      revoked: [],
    });
  });

  it('marks an owner whose key the operator revoked (keys/revoked.json), as info marks a revoked publisher key', async () => {
    const copy = path.join(work, 'owners-revoked');
    await cp(dir, copy, { recursive: true });
    const revoked: RevokedKeysDocument = {
      schema: 'plugindex/revoked-keys/v1',
      keys: [
        {
          fingerprint: publisherFingerprint,
          revoked: '2026-11-06T00:00:00.000Z',
          reason: 'the key\nleaked',
          action: 'a'.repeat(64),
        },
      ],
    };
    await writeFile(path.join(copy, 'public', 'keys', 'revoked.json'), JSON.stringify(revoked));
    const text = await plugindex(['owners', 'list', PLUGIN, '--registry', copy]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(
      `owners of ${PLUGIN} (${copy}):\n  ${publisherFingerprint}  [key revoked 2026-11-06T00:00:00.000Z: the key\\u000aleaked]\n`,
    );
    const json = await plugindex(['owners', 'list', PLUGIN, '--registry', copy, '--json']);
    expect(JSON.parse(json.stdout)).toEqual({
      plugin: PLUGIN,
      source: copy,
      owners: [publisherFingerprint],
      revoked: [
        { fingerprint: publisherFingerprint, revoked: '2026-11-06T00:00:00.000Z', reason: 'the key\nleaked' },
      ],
    });
  });

  it('says a plugin the registry does not have is not found (exit 1)', async () => {
    const result = await plugindex(['owners', 'list', 'no-such-plugin', '--registry', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PLUGIN_NOT_FOUND');
  });

  it('reads a served registry through the client, verified by the key it pinned, and only one it added', async () => {
    served = await startServe(dir);
    const home = path.join(work, 'client-home');
    await mkdir(home, { recursive: true });
    const env = {
      PLUGINDEX_CONFIG_HOME: path.join(home, 'config'),
      PLUGINDEX_DATA_HOME: path.join(home, 'data'),
      PLUGINDEX_CACHE_HOME: path.join(home, 'cache'),
    };
    const unknown = await plugindex(['owners', 'list', PLUGIN, '--url', served.url], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('REGISTRY_NOT_CONFIGURED');
    const added = await plugindex(
      ['registry', 'add', 'local', served.url, '--key', path.join(dir, 'public/keys/registry.asc')],
      env,
    );
    expect(added.code, added.stderr).toBe(0);
    const result = await plugindex(['owners', 'list', PLUGIN, '--url', `${served.url}/`, '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      plugin: PLUGIN,
      source: `local ${served.url}`,
      owners: [publisherFingerprint],
      revoked: [],
    });
  });
});

describe('when a person asks for help', () => {
  it.each(['yank', 'unyank', 'deprecate', 'undeprecate', 'advisory', 'owners', 'operator', 'submit'])(
    '%s --help prints its usage (exit 0), and plugindex --help lists it',
    async (command) => {
      const help = await plugindex([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`usage: plugindex ${command}`);
      expect((await plugindex(['--help'])).stdout).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    },
  );

  it("operator --help names an operator key as the signer, never the registry's own", async () => {
    const help = await plugindex(['operator', '--help']);
    expect(help.stdout).toContain('signed by an operator key');
    expect(help.stdout).toContain(
      "--key: an operator's secret key (one `plugindex operators add` listed; never the registry's own key)",
    );
  });

  it("says --key is missing naming an operator key for operator actions, not the registry's", async () => {
    const result = await plugindex([
      'operator',
      'revoke',
      publisherFingerprint,
      '--reason',
      'r',
      '--registry',
      dir,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('for operator actions an operator key, never the registry');
  });
});
