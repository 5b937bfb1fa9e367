/**
 * Opening a local registry again in one process (what a server does for every publish handed to it): the
 * signer made from the key file is reused while the file holds the same key, and made anew as soon as it
 * holds another (a rotate-key between two publishes) or once the passphrase that opens it is given. And
 * initRegistry, which never writes its new key over a key or through a link already at the key file.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKED_KEYS_FILE,
  initRegistry,
  openRegistry,
  SECRET_KEY_FILE,
  withRegistryLock,
} from '../../../cli/local/registry.ts';
import { KeyError } from '../../../index-builder/errors.ts';
import { generateKeyPair, readPublicKey, verifyDetachedSignature } from '../../../index-builder/signing.ts';
import { configuredKeyDigest } from '../../../index-builder/trust.ts';
import { plugindex } from '../../support/cli.ts';
import { KEYS_CREATED, makeBundle, testKey, validManifest } from '../../support/fixtures.ts';
import { putKilled } from '../../support/put-killed.ts';
import { SMALL_ORDER_POINTS, smallOrderKey } from '../../support/small-order-key.ts';
import { treeOf } from '../../support/tree.ts';
import { UNTRUSTED_KEYS } from '../../support/untrusted-keys.ts';

let work: string;
let dir: string;
const saved = process.env.PLUGINDEX_KEY_PASSPHRASE;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'pdx-open-'));
  dir = path.join(work, 'reg');
  await initRegistry(dir, { name: 'open-demo', url: 'http://127.0.0.1:9/' });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

afterEach(() => {
  if (saved === undefined) delete process.env.PLUGINDEX_KEY_PASSPHRASE;
  else process.env.PLUGINDEX_KEY_PASSPHRASE = saved;
});

describe('openRegistry, again and again in one process', () => {
  it('reuses the signer while the key file holds the same key', async () => {
    const first = await openRegistry(dir);
    const second = await openRegistry(dir);
    expect(second.context.signer).toBe(first.context.signer);
  });

  it('signs with the key the file holds now once it holds another', async () => {
    const before = await openRegistry(dir);
    const next = await generateKeyPair({ name: 'open-demo (next key)' });
    await writeFile(path.join(dir, SECRET_KEY_FILE), next.secretKey, { mode: 0o600 });
    const after = await openRegistry(dir);
    expect(after.context.signer).not.toBe(before.context.signer);
    expect(after.context.signer.fingerprint).toBe(next.fingerprint);
    expect(before.context.signer.fingerprint).not.toBe(next.fingerprint);
    // And what it signs verifies by the new key, not the old one.
    const data = new TextEncoder().encode('signed after the key changed');
    const signature = await after.context.signer.sign(data);
    const key = (await readPublicKey(next.publicKey)).key;
    await expect(verifyDetachedSignature(data, signature, [key])).resolves.toMatchObject({
      ok: true,
      fingerprint: next.fingerprint,
    });
  });

  it('reads an encrypted key again once its passphrase is given, after a refusal without it', async () => {
    const locked = await generateKeyPair({ name: 'open-demo (locked key)', passphrase: 'open sesame' });
    await writeFile(path.join(dir, SECRET_KEY_FILE), locked.secretKey, { mode: 0o600 });
    delete process.env.PLUGINDEX_KEY_PASSPHRASE;
    const refused = await openRegistry(dir).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(KeyError);
    expect((refused as KeyError).code).toBe('KEY_PASSPHRASE');
    process.env.PLUGINDEX_KEY_PASSPHRASE = 'open sesame';
    const opened = await openRegistry(dir);
    expect(opened.context.signer.fingerprint).toBe(locked.fingerprint);
  });
});

describe('withRegistryLock, taken from a holder that was killed', () => {
  it("removes the temp files the killed holder's puts left, then runs the work", async () => {
    const before = await filesUnder(dir);

    const pid = await putKilled(dir, 'status/killed.json', true);

    expect(await readFile(path.join(dir, '.lock'), 'utf8')).toMatch(new RegExp(`^${pid}\\n`));
    const left = (await filesUnder(dir)).filter((f) => !before.includes(f) && f !== '.lock');
    expect(left.length).toBeGreaterThan(0);
    for (const file of left) expect(path.basename(file)).toMatch(new RegExp(`^\\.${pid}\\..*\\.tmp$`));

    await expect(withRegistryLock(dir, async () => 'ran')).resolves.toBe('ran');

    expect(await filesUnder(dir)).toEqual(before);
  }, 30_000);
});

/** Every file under `folder`, dot-files and the sidecar trees too, relative and sorted. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)))
    .sort();
}

describe('initRegistry, in a folder where a signing key is already', () => {
  it('refuses with FILE_EXISTS, the key there kept (a registry whose config was lost, its key put back)', async () => {
    // Prepare: the key of a registry clients pinned, put back into a folder without its plugindex.json.
    const folder = path.join(work, 'key-kept');
    const pinned = await generateKeyPair({ name: 'pinned registry key' });
    await mkdir(path.join(folder, 'keys'), { recursive: true });
    await writeFile(path.join(folder, SECRET_KEY_FILE), pinned.secretKey, { mode: 0o600 });

    // Act
    const init = initRegistry(folder, { name: 'again', url: 'http://127.0.0.1:9/' });

    // Assess: the key no client would follow a rotation to was not written over the pinned one.
    await expect(init).rejects.toMatchObject({ code: 'FILE_EXISTS' });
    expect(await readFile(path.join(folder, SECRET_KEY_FILE), 'utf8')).toBe(pinned.secretKey);
  });

  it('refuses with FILE_EXISTS a link put at the key file, writing nothing through it', async () => {
    // Prepare: a registry folder shared with another user, who links the key file to one they can read.
    const folder = path.join(work, 'key-linked');
    const theirs = path.join(work, 'collected');
    await writeFile(theirs, '', { mode: 0o644 });
    await mkdir(path.join(folder, 'keys'), { recursive: true });
    await symlink(theirs, path.join(folder, SECRET_KEY_FILE));

    // Act
    const init = initRegistry(folder, { name: 'linked', url: 'http://127.0.0.1:9/' });

    // Assess
    await expect(init).rejects.toMatchObject({ code: 'FILE_EXISTS' });
    expect(await readFile(theirs, 'utf8')).toBe('');
    expect((await stat(theirs)).mode & 0o777).toBe(0o644);
  });

  it('writes a new key readable by its owner only', async () => {
    const folder = path.join(work, 'key-new');
    await initRegistry(folder, { name: 'new', url: 'http://127.0.0.1:9/' });
    expect((await lstat(path.join(folder, SECRET_KEY_FILE))).mode & 0o777).toBe(0o600);
  });
});

describe('when plugindex.json, edited by hand, trusts a key no signature by which is taken', () => {
  // Every one, the v6 key too: a config names a v6 key by its 64 hex digits (fingerprint.ts).
  const listable = UNTRUSTED_KEYS;

  /** A registry with one upload waiting, its config then given `key` as the operator's, or a publisher's. */
  async function registryTrusting(key: (typeof listable)[number], as: 'operators' | 'publishers') {
    const at = await mkdtemp(path.join(work, 'weak-'));
    await initRegistry(at, { name: 'weak', url: 'http://127.0.0.1:9/' });
    await writeFile(path.join(at, 'incoming', 'waits.tgz'), await makeBundle({ manifest: validManifest() }));
    const file = path.join(at, 'plugindex.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const entry = { fingerprint: key.fingerprint, key: key.publicKey };
    const edited =
      as === 'operators'
        ? { ...config, operators: [entry] }
        : { ...config, policy: 'restricted', publishers: [{ ...entry, names: ['*'] }] };
    await writeFile(file, JSON.stringify(edited, null, 2));
    return { at, file };
  }

  it.each(listable.flatMap((key) => (['operators', 'publishers'] as const).map((as) => ({ ...key, as }))))(
    'plugindex process refuses $label among the $as with CONFIG_INVALID at its entry, and changes nothing',
    async (key) => {
      const { at, file } = await registryTrusting(key, key.as);
      const before = await treeOf(at);

      const { code, stderr } = await plugindex('process', '--registry', at);

      expect(code).toBe(1);
      expect(stderr).toContain(`CONFIG_INVALID: registry config ${file} /${key.as}/0/key: `);
      expect(stderr).toContain(`${key.fingerprint} cannot be trusted`);
      expect(stderr).toContain(key.reason);
      // The upload waits in incoming/, nothing published or recorded.
      expect(await treeOf(at)).toEqual(before);
    },
  );

  it('plugindex serve refuses to start, naming the entry, and plugindex publishers list still reads it', async () => {
    const key = listable[0] as (typeof listable)[number];
    const { at, file } = await registryTrusting(key, 'operators');

    const served = await plugindex('serve', '--registry', at, '--port', '0');
    const listed = await plugindex('publishers', 'list', '--registry', at);

    expect(served.code).toBe(1);
    expect(served.stderr).toContain(`CONFIG_INVALID: registry config ${file} /operators/0/key: `);
    expect(served.stderr).toContain(key.reason);
    expect(listed.code).toBe(0);
  });
});

describe('when the registry keeps the configured entries it checked (state/checked-keys.json)', () => {
  /** A registry whose config lists `publishers` (restricted), and the file its checked entries go to. */
  async function registryListing(publishers: readonly { fingerprint: string; key: string }[]) {
    const at = await mkdtemp(path.join(work, 'checked-'));
    await initRegistry(at, { name: 'checked', url: 'http://127.0.0.1:9/' });
    const file = path.join(at, 'plugindex.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const listed = publishers.map((p) => ({ ...p, names: ['*'] }));
    await writeFile(file, JSON.stringify({ ...config, policy: 'restricted', publishers: listed }, null, 2));
    return { at, file, checkedFile: path.join(at, CHECKED_KEYS_FILE) };
  }
  const checkedIn = async (file: string): Promise<unknown> =>
    (JSON.parse(await readFile(file, 'utf8')) as { checked: unknown }).checked;

  it('lists each entry once checked, and a later process reads none of them again', async () => {
    const publisher = await generateKeyPair({ name: 'checked publisher' });
    const entry = { fingerprint: publisher.fingerprint, key: publisher.publicKey };
    const { at, file, checkedFile } = await registryListing([entry]);

    const first = await plugindex('process', '--registry', at);

    expect(first.code).toBe(0);
    const ids = (await readPublicKey(publisher.publicKey)).key
      .getKeyIDs()
      .map((id) => id.toHex().toUpperCase());
    expect(JSON.parse(await readFile(checkedFile, 'utf8'))).toEqual({
      checked: [configuredKeyDigest(entry)],
      keyIds: [ids],
    });
    // Listed as checked with its key's IDs, an entry is not read at load: one that reads as no key at all passes.
    const unread = { fingerprint: publisher.fingerprint, key: 'not a key' };
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...config, publishers: [{ ...unread, names: ['*'] }] }));
    await writeFile(checkedFile, JSON.stringify({ checked: [configuredKeyDigest(unread)], keyIds: [ids] }));
    expect((await plugindex('process', '--registry', at)).code).toBe(0);
  });

  it('checks an entry again whose key text changed, refuses it at its pointer, and lists it not', async () => {
    const publisher = await generateKeyPair({ name: 'changed publisher' });
    const { at, file, checkedFile } = await registryListing([
      { fingerprint: publisher.fingerprint, key: publisher.publicKey },
    ]);
    expect((await plugindex('process', '--registry', at)).code).toBe(0);
    const listed = await checkedIn(checkedFile);
    const weak = UNTRUSTED_KEYS[0] as (typeof UNTRUSTED_KEYS)[number];
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const edited = [{ fingerprint: weak.fingerprint, key: weak.publicKey, names: ['*'] }];
    await writeFile(file, JSON.stringify({ ...config, publishers: edited }));

    const { code, stderr } = await plugindex('process', '--registry', at);

    expect(code).toBe(1);
    expect(stderr).toContain(`CONFIG_INVALID: registry config ${file} /publishers/0/key: `);
    expect(stderr).toContain(weak.reason);
    expect(await checkedIn(checkedFile)).toEqual(listed);
  });

  it("refuses a stranger's bundle as untrusted by the listed key IDs, reading no configured key", async () => {
    // Entries listed as checked, with their keys' IDs, whose text reads as no key at all: read, the judgement
    // fails unexpectedly (SUBMISSION_UNREADABLE), as it did when a stranger's signature read every
    // configured key to look for its ID.
    const unread = Array.from({ length: 3 }, (_, i) => ({
      fingerprint: String(i + 1).repeat(40),
      key: `not a key ${i}`,
    }));
    const { at, checkedFile } = await registryListing(unread);
    const keyIds = unread.map((e) => [e.fingerprint.slice(-16)]);
    await writeFile(checkedFile, JSON.stringify({ checked: unread.map(configuredKeyDigest), keyIds }));
    const stranger = await testKey('cli-stranger');
    const bundle = path.join(at, 'stranger.tgz');
    await writeFile(
      bundle,
      await makeBundle({ manifest: validManifest({ name: 'stranger-plugin' }), signer: stranger }),
    );

    const { code, stdout, stderr } = await plugindex('publish', bundle, '--registry', at);

    expect(code).toBe(1);
    expect(`${stdout}${stderr}`).toContain('PUBLISHER_UNTRUSTED');
    expect(`${stdout}${stderr}`).not.toContain('SUBMISSION_UNREADABLE');
  });

  it('checks every entry again when the file is not as written', async () => {
    const weak = UNTRUSTED_KEYS[0] as (typeof UNTRUSTED_KEYS)[number];
    const { at, file, checkedFile } = await registryListing([
      { fingerprint: weak.fingerprint, key: weak.publicKey },
    ]);
    await writeFile(checkedFile, '{"checked": "every key"');

    const { code, stderr } = await plugindex('process', '--registry', at);

    expect(code).toBe(1);
    expect(stderr).toContain(`CONFIG_INVALID: registry config ${file} /publishers/0/key: `);
  });
});

describe("when the registry's own key file holds a key anyone can sign as (an Ed25519 point of small order)", () => {
  /** A registry with one upload waiting, its key file then given such a key. */
  async function registryWithWeakKey() {
    const at = await mkdtemp(path.join(work, 'weak-signer-'));
    await initRegistry(at, { name: 'weak-signer', url: 'http://127.0.0.1:9/' });
    await writeFile(path.join(at, 'incoming', 'waits.tgz'), await makeBundle({ manifest: validManifest() }));
    const weak = smallOrderKey(SMALL_ORDER_POINTS.identity, KEYS_CREATED);
    await writeFile(path.join(at, SECRET_KEY_FILE), weak.secretKey, { mode: 0o600 });
    return { at, weak };
  }

  it('plugindex process and serve refuse it with KEY_UNTRUSTED naming it, and change nothing', async () => {
    // Taken, every snapshot and document it signed could be forged by anyone (its signatures verify over
    // any data), and every client refuses them.
    const { at, weak } = await registryWithWeakKey();
    const before = await treeOf(at);

    const processed = await plugindex('process', '--registry', at);
    const served = await plugindex('serve', '--registry', at, '--port', '0');

    for (const { code, stderr } of [processed, served]) {
      expect(code).toBe(1);
      expect(stderr).toContain(`KEY_UNTRUSTED: the signing key ${weak.fingerprint} cannot be trusted`);
      expect(stderr).toContain('is an Ed25519 point of small order');
    }
    // The upload waits in incoming/, nothing published or recorded.
    expect(await treeOf(at)).toEqual(before);
  });

  it('openRegistry refuses it with KeyError KEY_UNTRUSTED', async () => {
    const { at } = await registryWithWeakKey();

    await expect(openRegistry(at)).rejects.toThrow(KeyError);
    await expect(openRegistry(at)).rejects.toMatchObject({ code: 'KEY_UNTRUSTED' });
  });
});
