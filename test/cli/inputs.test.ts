/**
 * Files the built `plugindex` writes where the user says (`pack --out`, an action's `--output`, `keygen
 * --out`, `init-config FILE`), as a process: a path it cannot write is FILE_NOT_WRITTEN naming the file and
 * what to do, exit 1, never a stack trace; a path inside a registry's folder is OUTPUT_IN_REGISTRY, exit 2.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../cli/local/registry.ts';
import { type CommandResult, clientHomes, plugindexProcess } from '../support/cli.ts';
import { testKey, validManifest } from '../support/fixtures.ts';
import { treeOf } from '../support/tree.ts';

let work: string;
let secretKey: string;
let manifest: string;

/** The built command, in the work folder, with its own client folders. */
function plugindex(...args: string[]): Promise<CommandResult> {
  // The test's own limit (60 s) is the only one these runs had before the shared runner.
  return plugindexProcess(args, {
    cwd: work,
    env: clientHomes(path.join(work, 'client')),
    timeoutMs: 60_000,
  });
}

/** The action commands' way: a yank signed by the publisher's key, written to `output`. */
function yankTo(output: string, ...where: string[]): string[] {
  return ['yank', 'demo-plugin@1.0.0', '--key', secretKey, ...where, '--output', output];
}

/** A deployed registry's plugindex.json (README, "Configure the registry"): no local registry's folder. */
const DEPLOYED_CONFIG =
  '{"name": "My Registry", "url": "https://r.example", "policy": "open", "ownership": "first-come", "publishers": []}';

/** Refused as FILE_NOT_WRITTEN naming `file` and `next`, exit 1, with no stack trace. */
function expectNotWritten(result: CommandResult, file: string, next: string): void {
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).toContain(`FILE_NOT_WRITTEN: cannot write ${file}: `);
  expect(result.stderr).toContain(next);
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-cli-inputs-'));
  secretKey = path.join(work, 'secret.asc');
  await writeFile(secretKey, (await testKey('publisher')).secretKey);
  manifest = path.join(work, 'manifest.json');
  await writeFile(manifest, JSON.stringify(validManifest()));
  await writeFile(path.join(work, 'a-file'), 'not a folder');
  await mkdir(path.join(work, 'a-folder'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('when the file to write is in a folder that is not there', () => {
  it('refuses pack --out naming the file and to create its folder', async () => {
    const out = path.join('missing', 'my.tgz');
    expectNotWritten(
      await plugindex('pack', manifest, '--key', secretKey, '--out', out),
      out,
      'create its folder first',
    );
  });

  it("refuses an action's --output, and init-config's FILE, the same way", async () => {
    const output = path.join('missing', 'yank.json');
    expectNotWritten(
      await plugindex(
        'yank',
        'demo-plugin@1.0.0',
        '--key',
        secretKey,
        '--registry-url',
        'https://plugins.example.org',
        '--output',
        output,
      ),
      output,
      'create its folder first',
    );
    expectNotWritten(
      await plugindex('init-config', path.join('missing', 'plugins.yaml')),
      path.join(work, 'missing', 'plugins.yaml'),
      'create its folder first',
    );
  });
});

describe('when the path to write is a folder, or goes through a file', () => {
  it('refuses init-config of a folder, and keygen --out under a file', async () => {
    expectNotWritten(
      await plugindex('init-config', 'a-folder', '--force'),
      path.join(work, 'a-folder'),
      'it is a folder',
    );
    expectNotWritten(
      await plugindex('keygen', '--out', path.join('a-file', 'key')),
      path.join('a-file', 'key'),
      'is a file, not a folder',
    );
  });
});

describe("when the file to write is inside a registry's folder", () => {
  let registry: string;
  let newKey: string;

  beforeAll(async () => {
    registry = path.join(work, 'registry');
    await initRegistry(registry, { name: 'r', url: 'http://127.0.0.1:8080' });
    newKey = path.join(work, 'new-registry-secret.asc');
    await writeFile(newKey, (await testKey('next-registry')).secretKey);
    // A link from the work folder into the registry's published tree.
    await symlink(path.join(registry, 'public'), path.join(work, 'site-link'));
  });

  it.each([
    {
      title: "an action's --output over the config of the --registry given",
      args: () => yankTo(path.join(registry, 'plugindex.json'), '--registry', registry),
      option: 'output',
    },
    {
      title: "an action's --output in the published tree of a registry it was not given, through a link",
      args: () =>
        yankTo(path.join('site-link', 'snapshot.json'), '--registry-url', 'https://plugins.example.org'),
      option: 'output',
    },
    {
      title: "rotate-key --output under its registry's keys/",
      args: () => [
        'rotate-key',
        '--registry',
        registry,
        '--new-key',
        newKey,
        '--output',
        path.join(registry, 'keys', 'rotation.json'),
      ],
      option: 'output',
    },
    {
      title: "pack --out into a registry's published tree",
      args: () => ['pack', manifest, '--key', secretKey, '--out', path.join(registry, 'public', 'demo.tgz')],
      option: 'out',
    },
    {
      title: "keygen --out a folder under a registry's published tree (its secret key served to anyone)",
      args: () => ['keygen', '--out', path.join(registry, 'public', 'me')],
      option: 'out',
    },
  ])('refuses $title: OUTPUT_IN_REGISTRY (exit 2), the registry as it was', async (c) => {
    const before = await treeOf(registry);
    const args = c.args();
    const output = args[args.indexOf(`--${c.option}`) + 1] as string;
    const refused = await plugindex(...args);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_IN_REGISTRY: --${c.option} ${output} is inside the registry `);
    expect(refused.stderr).toContain('nothing was written');
    expect(refused.stdout).toBe('');
    expect(await treeOf(registry)).toEqual(before);
  });

  it.each([
    {
      title: 'pack --out',
      args: () => [
        'pack',
        manifest,
        '--key',
        secretKey,
        '--out',
        path.join(registry, 'incoming', 'demo.tgz'),
      ],
      submit: 'plugindex publish FILE',
    },
    {
      title: "an action's --output",
      args: () => yankTo(path.join(registry, 'incoming', 'yank.json'), '--registry', registry),
      submit: 'plugindex submit FILE',
    },
  ])('refuses $title into its incoming/ saying how to submit what it writes there', async (c) => {
    // What README's tour does by hand (`mv my.tgz .plugindex/incoming/`), done in one step: refused as any
    // file in the registry's folder, told only to write it elsewhere, never how it then gets in.
    const before = await treeOf(registry);

    const refused = await plugindex(...c.args());

    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('OUTPUT_IN_REGISTRY');
    expect(refused.stderr).toContain(
      `write it outside, then ${c.submit} --registry ${registry} (or move it into ${path.join(registry, 'incoming')} once whole)`,
    );
    expect(await treeOf(registry)).toEqual(before);
  });

  it("writes an action beside a plugindex.json that is no registry's (README's recipe for a deployed one)", async () => {
    // The operator's working folder, holding the config to copy into the upload bucket: no keys/, no public/.
    const folder = path.join(work, 'deployed-config');
    await mkdir(folder);
    await writeFile(
      path.join(folder, 'plugindex.json'),
      '{"name": "My Registry", "url": "https://r.example"}',
    );
    const output = path.join(folder, 'yank.json');
    const written = await plugindex(...yankTo(output, '--registry-url', 'https://r.example'));
    expect(written.code, written.stderr).toBe(0);
    const envelope = JSON.parse(await readFile(output, 'utf8')) as { action: string };
    expect(JSON.parse(envelope.action)).toMatchObject({ action: 'yank', registry: 'https://r.example' });
  });
});

describe('when init-config FILE or verify --state FILE would write where an output may not', () => {
  let registry: string;
  let secretCopy: string;
  let publicKey: string;
  // Nothing listens there: each refusal comes before the registry is read.
  const url = 'http://127.0.0.1:9';

  beforeAll(async () => {
    registry = path.join(work, 'guarded-registry');
    await initRegistry(registry, { name: 'g', url: 'http://127.0.0.1:8080' });
    secretCopy = path.join(work, 'guarded-secret.asc');
    await writeFile(secretCopy, await readFile(secretKey, 'utf8'));
    publicKey = path.join(work, 'guarded-public.asc');
    await writeFile(publicKey, (await testKey('guarded-registry')).publicKey);
  });

  it.each([
    {
      title: "init-config FILE in a registry's published tree",
      args: () => ['init-config', path.join(registry, 'public', 'plugins.yaml')],
      named: (file: string) => `FILE ${file}`,
    },
    {
      title: "verify --state FILE under a registry's state/",
      args: () => ['verify', '--url', url, '--state', path.join(registry, 'state', 'verify.json')],
      named: (file: string) => `--state ${file}`,
    },
  ])('refuses $title: OUTPUT_IN_REGISTRY (exit 2), the registry as it was', async (c) => {
    const before = await treeOf(registry);
    const args = c.args();
    const file = args.at(-1) as string;
    const refused = await plugindex(...args);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_IN_REGISTRY: ${c.named(file)} is inside the registry `);
    expect(await treeOf(registry)).toEqual(before);
  });

  it('refuses init-config --force over a secret key: OUTPUT_OVER_SECRET_KEY (exit 2), the key as it was', async () => {
    const key = await readFile(secretCopy, 'utf8');
    const refused = await plugindex('init-config', secretCopy, '--force');
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_OVER_SECRET_KEY: FILE ${secretCopy} holds a secret key`);
    expect(await readFile(secretCopy, 'utf8')).toBe(key);
  });

  it('refuses verify --state over a secret key: OUTPUT_OVER_SECRET_KEY (exit 2)', async () => {
    const key = await readFile(secretCopy, 'utf8');
    const refused = await plugindex('verify', '--url', url, '--state', secretCopy);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_OVER_SECRET_KEY: --state ${secretCopy} holds a secret key`);
    expect(await readFile(secretCopy, 'utf8')).toBe(key);
  });

  it('refuses verify --state naming the --key file it reads: OUTPUT_OVER_INPUT (exit 2)', async () => {
    const key = await readFile(publicKey, 'utf8');
    const refused = await plugindex('verify', '--url', url, '--key', publicKey, '--state', publicKey);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`OUTPUT_OVER_INPUT: --state ${publicKey} is ${publicKey}`);
    expect(await readFile(publicKey, 'utf8')).toBe(key);
  });
});

describe("when the working folder holds README's deployed-registry recipe (plugindex.json beside keys/ of publisher keys)", () => {
  it('writes keygen --out keys/NAME, an action --output and pack --out there: no registry of its own', async () => {
    // README ("Restrict publishing", "Configure the registry"): `keygen --output keys/acme` and a
    // plugindex.json to copy into the upload bucket, side by side in one working folder; neither is a
    // local registry's (no keys/registry-secret.asc, no public/), and the next publisher's key goes beside.
    const folder = path.join(work, 'deployed-recipe');
    await mkdir(folder);
    const inFolder = (...args: string[]) =>
      plugindexProcess(args, { cwd: folder, env: clientHomes(path.join(work, 'client')), timeoutMs: 60_000 });
    const first = await inFolder('keygen', '--output', path.join('keys', 'acme'), '--name', 'ACME');
    expect(first.code, first.stderr).toBe(0);
    await writeFile(path.join(folder, 'plugindex.json'), DEPLOYED_CONFIG);

    const next = await inFolder('keygen', '--output', path.join('keys', 'globex'), '--name', 'Globex');
    const action = await inFolder(...yankTo('yank.json', '--registry-url', 'https://r.example'));
    const packed = await inFolder('pack', manifest, '--key', secretKey, '--out', 'my.tgz');

    expect(next.code, next.stderr).toBe(0);
    expect(await readFile(path.join(folder, 'keys', 'globex', 'public.asc'), 'utf8')).toContain(
      'BEGIN PGP PUBLIC KEY BLOCK',
    );
    expect(action.code, action.stderr).toBe(0);
    expect(packed.code, packed.stderr).toBe(0);
  });
});

describe('when the working folder holds a plugindex.json beside a public/ no registry published', () => {
  it("writes an action's --output and pack --out there (a web project's public/; macOS's ~/Public, on its case-insensitive disk)", async () => {
    const folder = path.join(work, 'web-project');
    await mkdir(path.join(folder, 'public'), { recursive: true });
    await writeFile(path.join(folder, 'public', 'index.html'), '<!doctype html>\n');
    await writeFile(path.join(folder, 'plugindex.json'), DEPLOYED_CONFIG);

    const action = await plugindex(
      ...yankTo(path.join(folder, 'yank.json'), '--registry-url', 'https://r.example'),
    );
    const packed = await plugindex(
      'pack',
      manifest,
      '--key',
      secretKey,
      '--out',
      path.join(folder, 'my.tgz'),
    );

    expect(action.code, action.stderr).toBe(0);
    expect(packed.code, packed.stderr).toBe(0);
  });
});

describe('when a file to read is a folder, or is not there', () => {
  it('names the file and what to do (FILE_NOT_FOUND, exit 1), where it said only EISDIR or ENOENT', async () => {
    // `cannot read DIR: EISDIR: illegal operation on a directory, read` left the user to decode errno.
    const folder = path.join(work, 'a-folder');
    const missing = path.join(work, 'no-such.asc');
    for (const [args, file, next] of [
      [
        ['registry', 'add', 'r', 'http://127.0.0.1:18199', '--key', folder],
        folder,
        'it is a folder: name a file in it',
      ],
      [
        ['registry', 'add', 'r', 'http://127.0.0.1:18199', '--key', missing],
        missing,
        'no file is there: check the path',
      ],
      [
        ['pack', manifest, '--key', folder, '--output', path.join(work, 'x.tgz')],
        folder,
        'it is a folder: name a file in it',
      ],
      [['validate', folder], folder, 'it is a folder: name a file in it'],
    ] as const) {
      const refused = await plugindex(...args);
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(1);
      expect(refused.stderr).toContain(`FILE_NOT_FOUND: cannot read ${file}: `);
      expect(refused.stderr).toContain(next);
      expect(refused.stderr).not.toMatch(/^\s+at /m);
    }
  });
});
