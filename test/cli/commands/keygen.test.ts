/**
 * `plugindex keygen --out DIR`: a publisher's key pair, the secret half readable by its owner only, and
 * never written over a key or through a name someone else put in the folder first.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPublicKey } from '../../../index-builder/signing.ts';
import { plugindex, plugindexProcess } from '../../support/cli.ts';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'plugindex-keygen-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh folder under this test's work folder. */
async function folder(name: string): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

describe('when the folder is new', () => {
  it('writes the pair, the secret key readable by its owner only', async () => {
    // Prepare
    const dir = path.join(work, 'new');

    // Act
    const result = await plugindex('keygen', '--out', dir, '--name', 'New Publisher');

    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect((await stat(path.join(dir, 'secret.asc'))).mode & 0o777).toBe(0o600);
    const key = await readPublicKey(await readFile(path.join(dir, 'public.asc'), 'utf8'));
    expect(result.stdout.trim()).toBe(key.fingerprint);
    expect((await readdir(dir)).sort()).toEqual(['public.asc', 'secret.asc']);
  });
});

describe('when the folder already holds a key', () => {
  it('refuses with FILE_EXISTS, the secret key there left as it was', async () => {
    // Prepare: a publisher's key, which owns their plugins' names; a second keygen into the same folder
    // wrote a new key over it (exit 0), and the names could never be published to again.
    const dir = path.join(work, 'existing');
    expect((await plugindex('keygen', '--out', dir)).code).toBe(0);
    const secret = await readFile(path.join(dir, 'secret.asc'));
    const pub = await readFile(path.join(dir, 'public.asc'));

    // Act
    const again = await plugindex('keygen', '--out', dir);

    // Assess
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('FILE_EXISTS');
    expect(await readFile(path.join(dir, 'secret.asc'))).toEqual(secret);
    expect(await readFile(path.join(dir, 'public.asc'))).toEqual(pub);
  });

  it('refuses with FILE_EXISTS when only public.asc is there, writing no secret key', async () => {
    // Prepare
    const dir = await folder('public-only');
    await writeFile(path.join(dir, 'public.asc'), 'a key the publisher handed out\n');

    // Act
    const result = await plugindex('keygen', '--out', dir);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FILE_EXISTS');
    expect(await readdir(dir)).toEqual(['public.asc']);
  });
});

describe('when secret.asc is a link someone else put in a shared folder', () => {
  it('refuses with FILE_EXISTS and writes nothing through the link', async () => {
    // Prepare: a file the other user can read (0644), and a link to it named as the secret key.
    const dir = await folder('planted');
    const theirs = path.join(await folder('theirs'), 'collected');
    await writeFile(theirs, '', { mode: 0o644 });
    await symlink(theirs, path.join(dir, 'secret.asc'));

    // Act
    const result = await plugindex('keygen', '--out', dir);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FILE_EXISTS');
    expect(await readFile(theirs, 'utf8')).toBe('');
    expect((await lstat(path.join(dir, 'secret.asc'))).isSymbolicLink()).toBe(true);
    expect(await readdir(dir)).toEqual(['secret.asc']);
  });

  it('refuses a dangling link too, creating nothing at its target', async () => {
    // Prepare: the link's target does not exist yet; writing through it would create it, 0600 but in a
    // folder its owner controls (and can read after a chmod of their own).
    const dir = await folder('dangling');
    const target = path.join(await folder('theirs-dangling'), 'collected');
    await symlink(target, path.join(dir, 'secret.asc'));

    // Act
    const result = await plugindex('keygen', '--out', dir);

    // Assess
    expect(result.code).toBe(1);
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('when the secret key file is already there with a looser mode', () => {
  it('is refused rather than written into a file others can read', async () => {
    // Prepare: writeFile's mode applies only to a file it creates; an existing 0644 file kept its mode.
    const dir = await folder('loose');
    await writeFile(path.join(dir, 'secret.asc'), '', { mode: 0o644 });

    // Act
    const result = await plugindex('keygen', '--out', dir);

    // Assess
    expect(result.code).toBe(1);
    expect(await readFile(path.join(dir, 'secret.asc'), 'utf8')).toBe('');
  });
});

describe('when the passphrase file is empty', () => {
  it.each([
    ['empty', ''],
    ['a line break only', '\n'],
  ])('refuses it (%s) with a usage error, writing no key unencrypted', async (label, text) => {
    // Prepare: a passphrase that came out empty (a password manager's command that failed into the file);
    // the key was written unencrypted, exit 0, its owner believing it encrypted.
    const dir = path.join(work, `empty-passphrase-${label.replaceAll(' ', '-')}`);
    const file = path.join(work, `passphrase-${label.replaceAll(' ', '-')}.txt`);
    await writeFile(file, text);

    // Act
    const result = await plugindex('keygen', '--out', dir, '--passphrase-file', file);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--passphrase-file');
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('when the folder is named with --output, as every action and rotate-key name what they write', () => {
  it('writes the pair there, as --out does', async () => {
    const dir = path.join(work, 'named');
    const result = await plugindexProcess(['keygen', '--output', dir], { cwd: work });
    expect(result.code, result.stderr).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['public.asc', 'secret.asc']);
  });

  it('refuses --out and --output at once (exit 2), writing neither', async () => {
    const [a, b] = [path.join(work, 'both-a'), path.join(work, 'both-b')];
    const result = await plugindexProcess(['keygen', '--out', a, '--output', b], { cwd: work });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('give --output or --out (the same option), not both');
    await expect(lstat(a)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(lstat(b)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('when the folder is on a filesystem that makes no folders (/proc)', () => {
  it.skipIf(process.platform !== 'linux')(
    'fails fast with FILE_NOT_WRITTEN naming it, where it hung in Node.js recursive mkdir',
    async () => {
      // Node's mkdir(recursive) makes /proc (EEXIST), tries /proc/x again (ENOENT), and loops for ever.
      const dir = `/proc/plugindex-keygen-${process.pid}`;
      // Killed at 45 s, below the test's timeout, should it hang: far from what a loaded machine's start takes.
      const result = await plugindexProcess(['keygen', '--output', dir], { cwd: work, timeoutMs: 45_000 });
      expect(result.code, 'killed at the timeout: it hung').toBe(1);
      expect(result.stderr).toContain(`FILE_NOT_WRITTEN: cannot create the folder ${dir}`);
      expect(result.stdout).toBe('');
    },
  );
});

describe('when --email is not an address a key can carry', () => {
  it.each([
    ['no domain past one letter', 'me@x'],
    ['a space', 'my name@example.org'],
    ['no @', 'me.example.org'],
  ])(
    'refuses it (%s) with a usage error naming the option, no stack trace, no key written',
    async (_label, email) => {
      // Prepare: openpgp.js refuses such a user ID, and its error came out as a stack trace, exit 1.
      const dir = path.join(work, `email-${_label.replaceAll(' ', '-')}`);

      // Act
      const result = await plugindex('keygen', '--out', dir, '--email', email);

      // Assess
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--email ${email} is not an email address`);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      await expect(lstat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    },
  );

  it('takes an ordinary address', async () => {
    const dir = path.join(work, 'email-ok');

    const result = await plugindex('keygen', '--out', dir, '--name', 'Me', '--email', 'me@example.org');

    expect(result.code, result.stderr).toBe(0);
    const key = await readPublicKey(await readFile(path.join(dir, 'public.asc'), 'utf8'));
    expect(key.userIds).toEqual(['Me <me@example.org>']);
  });
});
