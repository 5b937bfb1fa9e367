/**
 * `plugindex pack` as a publisher runs it (the built command as a process): a bundle signed by the key
 * given, written to `--out`, but never over a file the command reads or over a secret key.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../../index-builder/bundle.ts';
import { plugindexProcess } from '../../support/cli.ts';
import { testKey, validManifest } from '../../support/fixtures.ts';

let work: string;

/** The files of one `pack`, fresh, so that a command that wrote over one leaves the others' alone. */
async function files(): Promise<Record<'manifest' | 'artifact' | 'key' | 'other' | 'link', string>> {
  const folder = await mkdtemp(path.join(work, 'pack-'));
  const paths = {
    manifest: path.join(folder, 'manifest.json'),
    artifact: path.join(folder, 'demo-linux'),
    key: path.join(folder, 'secret.asc'),
    other: path.join(folder, 'other', 'secret.asc'),
    link: path.join(folder, 'out.tgz'),
  };
  await writeFile(paths.manifest, JSON.stringify(validManifest({ name: 'demo-plugin' }), null, 2));
  await writeFile(paths.artifact, '#!/bin/sh\necho demo\n');
  await writeFile(paths.key, (await testKey('publisher')).secretKey);
  await mkdir(path.dirname(paths.other));
  await writeFile(paths.other, (await testKey('other')).secretKey);
  await symlink(paths.manifest, paths.link);
  return paths;
}

const pack = (f: Awaited<ReturnType<typeof files>>, out: string) =>
  plugindexProcess(
    ['pack', f.manifest, '--artifact', `linux/amd64=${f.artifact}`, '--key', f.key, '--out', out],
    { cwd: work },
  );

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-pack-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when a publisher packs a bundle', () => {
  it('writes the signed bundle to --out, over an earlier bundle too', async () => {
    const f = await files();
    const out = path.join(path.dirname(f.manifest), 'demo.tgz');
    await writeFile(out, 'an earlier bundle');
    const packed = await pack(f, out);
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.stdout).toContain(`packed demo-plugin@1.0.0 -> ${out}`);
    expect((await readBundle(await readFile(out))).manifestName).toBe('manifest.json');
  });

  it.each([
    { title: 'the --key file that signs it', code: 'OUTPUT_OVER_INPUT', out: 'key', target: 'key' },
    { title: 'the MANIFEST, through a link', code: 'OUTPUT_OVER_INPUT', out: 'link', target: 'manifest' },
    { title: 'an --artifact', code: 'OUTPUT_OVER_INPUT', out: 'artifact', target: 'artifact' },
    { title: 'another secret key', code: 'OUTPUT_OVER_SECRET_KEY', out: 'other', target: 'other' },
  ] as const)('never writes over $title: $code (exit 2), the file as it was', async (c) => {
    const f = await files();
    const before = await readFile(f[c.target]);
    const refused = await pack(f, f[c.out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${c.code}: --out ${f[c.out]}`);
    expect(refused.stderr).toContain('nothing was written');
    expect(refused.stdout).toBe('');
    expect(await readFile(f[c.target])).toEqual(before);
  });
});

describe('when the bundle is named with --output, as every action and rotate-key name what they write', () => {
  const packTo = (f: Awaited<ReturnType<typeof files>>, ...where: string[]) =>
    plugindexProcess(
      ['pack', f.manifest, '--artifact', `linux/amd64=${f.artifact}`, '--key', f.key, ...where],
      {
        cwd: work,
      },
    );

  it('writes it there, as --out does', async () => {
    const f = await files();
    const out = path.join(path.dirname(f.manifest), 'named.tgz');
    const packed = await packTo(f, '--output', out);
    expect(packed.code, packed.stderr).toBe(0);
    expect((await readBundle(await readFile(out))).manifestName).toBe('manifest.json');
  });

  it('names --output when it would write over the key it reads (exit 2)', async () => {
    const f = await files();
    const refused = await packTo(f, '--output', f.key);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_OVER_INPUT: --output ${f.key}`);
  });

  it('refuses --out and --output at once (exit 2), writing neither', async () => {
    const f = await files();
    const [a, b] = ['a.tgz', 'b.tgz'].map((n) => path.join(path.dirname(f.manifest), n)) as [string, string];
    const refused = await packTo(f, '--out', a, '--output', b);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('give --output or --out (the same option), not both');
    await expect(readFile(a)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readFile(b)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('when --key is not a secret key to sign with', () => {
  // openpgp.js's words alone ("not an armored OpenPGP secret key: Armored text not of type private key")
  // named neither the option nor the file, nor the secret.asc keygen wrote beside the public.asc given.
  it.each([
    {
      title: 'the public key keygen wrote beside it',
      content: async () => (await testKey('publisher')).publicKey,
      says: 'is a public key, not the secret key that signs: give the secret key (the secret.asc plugindex keygen wrote beside public.asc',
    },
    {
      title: 'a binary secret key (gpg --export-secret-keys without --armor)',
      content: async () => (await openpgp.unarmor((await testKey('publisher')).secretKey)).data as Uint8Array,
      says: 'is a binary secret key: give it armored (gpg --export-secret-keys --armor FINGERPRINT)',
    },
    {
      title: 'no key at all',
      content: async () => JSON.stringify(validManifest({ name: 'demo-plugin' })),
      says: 'holds no armored OpenPGP secret key: give the secret key',
    },
  ])('refuses $title: KEY_INVALID naming --key and the file (exit 1), writing nothing', async (c) => {
    const f = await files();
    const given = path.join(path.dirname(f.manifest), 'given.asc');
    await writeFile(given, await c.content());
    const out = path.join(path.dirname(f.manifest), 'demo.tgz');
    const refused = await plugindexProcess(
      ['pack', f.manifest, '--artifact', `linux/amd64=${f.artifact}`, '--key', given, '--out', out],
      { cwd: work },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`KEY_INVALID: --key ${given} ${c.says}`);
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('when a publisher packs builds for a C library or a universal binary', () => {
  const packWith = (f: Awaited<ReturnType<typeof files>>, out: string, ...platforms: string[]) =>
    plugindexProcess(
      [
        'pack',
        f.manifest,
        ...platforms.flatMap((p) => ['--artifact', `${p}=${f.artifact}`]),
        '--key',
        f.key,
        '--out',
        out,
      ],
      { cwd: work },
    );

  it('records musl as libc after the glibc builds, and darwin/universal as its arch', async () => {
    const f = await files();
    const out = path.join(path.dirname(f.manifest), 'kinds.tgz');
    const packed = await packWith(f, out, 'linux/amd64/musl', 'linux/amd64', 'darwin/universal');
    expect(packed.code, packed.stderr).toBe(0);
    const bundle = await readBundle(await readFile(out));
    const manifest = JSON.parse(new TextDecoder().decode(bundle.manifest));
    expect(
      manifest.installation.artifacts.map((a: Record<string, string>) => [a.os, a.arch, a.libc, a.file]),
    ).toEqual([
      ['linux', 'amd64', undefined, 'artifacts/linux-amd64/demo-linux'],
      ['darwin', 'universal', undefined, 'artifacts/darwin-universal/demo-linux'],
      ['linux', 'amd64', 'musl', 'artifacts/linux-amd64-musl/demo-linux'],
    ]);
  });

  it.each([
    ['darwin/arm64/musl', 'follows only a linux'],
    ['linux/amd64/uclibc', 'follows only a linux'],
    ['linux/universal', 'arch must be one of'],
  ])('refuses --artifact %s (exit 2)', async (platform, says) => {
    const f = await files();
    const refused = await packWith(f, path.join(path.dirname(f.manifest), 'no.tgz'), platform);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(says);
  });
});
