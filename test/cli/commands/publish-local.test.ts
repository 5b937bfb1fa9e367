/** `plugindex publish --registry`: what it refuses before anything reaches the registry. */
import { mkdir, mkdtemp, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/outcomes.ts';
import { generateKeyPair } from '../../../index-builder/signing.ts';
import { plugindex } from '../../support/cli.ts';
import { treeOf } from '../../support/tree.ts';

let work: string;
let dir: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-publish-local-'));
  dir = path.join(work, 'registry');
  await initRegistry(dir, { name: 'r', url: 'http://127.0.0.1:8080' });
  await mkdir(path.join(work, 'a-folder.tgz'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when the bundle to publish cannot be read', () => {
  it.each([
    ['a missing file', 'missing.tgz', 'ENOENT: no such file or directory, open'],
    ['a folder', 'a-folder.tgz', 'it is a folder: name a file in it'],
  ])('refuses %s naming it (exit 1), and the registry is unchanged', async (_, name, why) => {
    const before = await treeOf(dir);
    const file = path.join(work, name);
    const result = await plugindex('publish', file, '--registry', dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`plugindex publish: FILE_NOT_FOUND: cannot read ${file}`);
    expect(result.stderr).toContain(why);
    expect(await treeOf(dir)).toEqual(before);
  });
});

describe('when the file to publish is a secret key', () => {
  // `publish my-key/secret.asc` (a completion one folder off): the key was copied into incoming/ and then
  // kept in rejected/ (on AWS, uploaded to the upload bucket and kept there), readable by the operator.
  it.each([
    ['an armored one', async (secretKey: string) => new TextEncoder().encode(`\n${secretKey}`)],
    [
      'a binary one (gpg --export-secret-keys)',
      async (secretKey: string) => {
        const key = await openpgp.readPrivateKey({ armoredKey: secretKey });
        return key.write();
      },
    ],
  ])('refuses %s (exit 2, SECRET_KEY_GIVEN), sending nothing', async (label, bytesOf) => {
    // Prepare
    const { secretKey } = await generateKeyPair({ name: 'publisher' });
    const file = path.join(work, `secret-${label.split(' ')[1]}.asc`);
    await writeFile(file, await bytesOf(secretKey), { mode: 0o600 });
    const before = await treeOf(dir);

    // Act
    const result = await plugindex('publish', file, '--registry', dir);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`plugindex publish: SECRET_KEY_GIVEN: ${file}`);
    expect(await treeOf(dir)).toEqual(before);
  });
});

describe('when an upload in incoming/ is past four times the bundle limit', () => {
  it('is refused once, by its bytes, and moved to rejected/: no later batch meets it again', async () => {
    // The publish function refuses such an upload unread and leaves it in incoming/, passed over for the rest
    // of its invocation (its 15 minutes). A local registry had the same bound and nothing to pass it over
    // with: serve's watcher, which polls incoming/ every second, recorded and printed its refusal each
    // second for good. Hashed and moved as a stream, it is refused once, as it was before the bound.
    // Prepare: a sparse file, 1 GiB and a byte long (the default bundle limit is 256 MiB), costs no disk.
    const local = path.join(work, 'huge-registry');
    await initRegistry(local, { name: 'h', url: 'http://127.0.0.1:8080' });
    const huge = path.join(local, 'incoming', 'huge.tgz');
    await writeFile(huge, '');
    await truncate(huge, 4 * 256 * 1024 * 1024 + 1);

    // Act
    const first = await plugindex('process', '--registry', local, '--json');
    const again = await plugindex('process', '--registry', local, '--json');

    // Assess
    expect(first.code).toBe(1);
    const [outcome] = (JSON.parse(first.stdout) as { outcomes: SubmissionOutcome[] }).outcomes;
    expect(outcome).toMatchObject({ status: 'rejected', problems: [{ code: 'BUNDLE_TOO_LARGE' }] });
    expect(outcome?.submission_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await readdir(path.join(local, 'incoming'))).toEqual([]);
    expect((await stat(path.join(local, 'rejected', `${outcome?.id}.tgz`))).size).toBe(
      4 * 256 * 1024 * 1024 + 1,
    );
    expect(JSON.parse(again.stdout)).toMatchObject({ outcomes: [] });
  }, 180_000);
});

describe('when the file published is no bundle', () => {
  it("names where the problem is as every problem line does: 'bundle:/', never 'bundle::'", async () => {
    // A problem about the bundle as a whole has the path `bundle:`, printed as `BUNDLE_NOT_GZIP bundle:: ...`.
    const file = path.join(work, 'notes.txt');
    await writeFile(file, 'release notes, not a bundle\n');

    const result = await plugindex('publish', file, '--registry', dir);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain('  BUNDLE_NOT_GZIP bundle:/: the bundle is not a gzip file');
    expect(result.stdout).not.toContain('::');
  });
});
