/**
 * The install tree's one path check (nothing a document or installed.json says can lead outside the
 * folder), what a placement does with the temp files a killed one left, and what the trust records of one
 * registry kept under several names share.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import {
  chmod,
  chown,
  lchown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ClientState,
  foldedName,
  InstallTree,
  REMOVED_DEPARTURES_FILE,
  readLockfile,
  setTrustName,
  type TrustRecord,
  writeLockfile,
} from '../../../client/disk/state.ts';
import { ClientError } from '../../../client/errors.ts';
import type { Lockfile } from '../../../client/lockfile.ts';
import { sha256Hex } from '../../../index-builder/digest.ts';
import { deadPid } from '../../support/dead-pid.ts';

/**
 * A seam on `rm` (a mock of node:fs/promises that removes as the real one does, then runs `afterRm`): a test
 * runs a concurrent writer at the very moment a file is gone, with no sleep to time it.
 */
const fsSeam = vi.hoisted(() => ({
  afterRm: undefined as ((path: string) => Promise<void>) | undefined,
  /** Run just before the client's `mkdir` of a folder: another user planting a link where it checked none. */
  beforeMkdir: undefined as ((path: string) => Promise<void>) | undefined,
  /** Run just after the client's `mkdir` made a folder: another user swapping it for a link. */
  afterMkdir: undefined as ((path: string) => Promise<void>) | undefined,
  /** Run just after the client's `lstat` of a path: another user making a folder the check found none of. */
  afterLstat: undefined as ((path: string) => Promise<void>) | undefined,
}));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const rm: typeof actual.rm = async (path, options) => {
    await actual.rm(path, options);
    const hook = fsSeam.afterRm;
    if (hook) await hook(String(path));
  };
  const mkdir = (async (path: string, options?: Parameters<typeof actual.mkdir>[1]) => {
    await fsSeam.beforeMkdir?.(String(path));
    const made = await actual.mkdir(path, options);
    await fsSeam.afterMkdir?.(String(path));
    return made;
  }) as typeof actual.mkdir;
  const lstat = (async (path: Parameters<typeof actual.lstat>[0], options?: { bigint?: false }) => {
    try {
      return await actual.lstat(path, options);
    } finally {
      await fsSeam.afterLstat?.(String(path));
    }
  }) as typeof actual.lstat;
  return { ...actual, rm, mkdir, lstat, default: { ...actual, rm, mkdir, lstat } };
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-tree-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('when a path in the install folder is asked for', () => {
  it('gives the path of a relative path of safe segments inside the folder', () => {
    const tree = new InstallTree(dir);
    expect(tree.path('demo/1.0.0/linux-amd64/demo')).toBe(
      path.join(dir, 'demo', '1.0.0', 'linux-amd64', 'demo'),
    );
  });

  it.each([
    ['a parent folder', 'demo/../../etc/passwd'],
    ['an absolute path', '/etc/passwd'],
    ['an empty segment', 'demo//x'],
    ['a segment starting with a dot', 'demo/.hidden'],
  ])('refuses %s with DOCUMENT_MALFORMED, before anything is written or removed', async (_what, relative) => {
    const tree = new InstallTree(dir);
    expect(() => tree.path(relative)).toThrow(
      expect.objectContaining({ name: 'TrustError', code: 'DOCUMENT_MALFORMED' }),
    );
    await expect(tree.placeFile(relative, 'x')).rejects.toMatchObject({ code: 'DOCUMENT_MALFORMED' });
  });
});

describe('when a plugin\u2019s folder holds names that are one folder where case, or a trailing dot, is ignored', () => {
  it('lists those a version\u2019s folder would be, on disk whatever installed.json says, and no others', async () => {
    // Prepare: case-demo/ with the version's own folder, variants macOS or Windows read as it, and others.
    const tree = new InstallTree(path.join(dir, 'folded'));
    for (const name of ['1.0.0-rc.1', '1.0.0-RC.1', '1.0.0-Rc.1.', '1.0.0-rc.1 ', '1.0.0-rc.10', '2.0.0'])
      await mkdir(path.join(tree.dir, 'case-demo', name), { recursive: true });

    // Act and assert.
    expect(await tree.foldedAs('case-demo', '1.0.0-rc.1')).toEqual([
      '1.0.0-RC.1',
      '1.0.0-Rc.1.',
      '1.0.0-rc.1 ',
    ]);
    expect(await tree.foldedAs('case-demo', '2.0.0')).toEqual([]);
    expect(await tree.foldedAs('other-demo', '1.0.0')).toEqual([]);
    expect(foldedName('Plugins.LOCK.')).toBe(foldedName('plugins.lock'));
  });

  it('lists nothing through a plugin folder that is a link', async () => {
    const tree = new InstallTree(path.join(dir, 'folded-link'));
    await mkdir(path.join(dir, 'folded-elsewhere', '1.0.0-RC.1'), { recursive: true });
    await mkdir(tree.dir, { recursive: true });
    await symlink(path.join(dir, 'folded-elsewhere'), path.join(tree.dir, 'case-demo'));
    expect(await tree.foldedAs('case-demo', '1.0.0-rc.1')).toEqual([]);
  });
});

describe('when a file is placed where a killed placement left its temp file', () => {
  it('removes the temp files of that file whose writer is gone, leaving a live writer’s and another file’s', async () => {
    const tree = new InstallTree(dir);
    const folder = path.join(dir, 'demo/1.0.0/linux-amd64');
    await mkdir(folder, { recursive: true });
    const dead = await deadPid();
    const killed = `.demo.${dead}.0a1b2c3d.tmp`;
    const live = `.demo.${process.pid}.deadbeef.tmp`;
    const another = `.demo.sh.${dead}.01234567.tmp`;
    for (const name of [killed, live, another]) await writeFile(path.join(folder, name), 'half');
    const body = new TextEncoder().encode('#!/bin/sh\necho demo\n');

    const source = (async function* () {
      yield body;
    })();
    await tree.placeExecutable('demo/1.0.0/linux-amd64/demo', source, {
      sha256: sha256Hex(body),
      size: body.byteLength,
    });

    expect((await readdir(folder)).sort()).toEqual([another, live, 'demo'].sort());
    expect(await readFile(path.join(folder, 'demo'))).toEqual(Buffer.from(body));
    // demo.sh's own, once demo.sh is placed (written by rename as any file is).
    await tree.placeFile('demo/1.0.0/linux-amd64/demo.sh', 'placed');
    expect((await readdir(folder)).sort()).toEqual([live, 'demo', 'demo.sh'].sort());
  });
});

describe('when a folder inside the install folder is a symbolic link', () => {
  /** An install folder whose plugin folder `demo` is a link to `outside`, a folder beside it. */
  async function linkedTree(): Promise<{ tree: InstallTree; outside: string; linked: string }> {
    const root = await mkdtemp(path.join(dir, 'linked-'));
    const outside = path.join(root, 'outside');
    const linked = path.join(root, 'tree');
    await mkdir(outside, { recursive: true });
    await mkdir(linked, { recursive: true });
    await symlink(outside, path.join(linked, 'demo'));
    return { tree: new InstallTree(linked), outside, linked };
  }

  it('refuses to place a file through it with INSTALL_PATH_LINKED, writing nothing outside', async () => {
    const { tree, outside } = await linkedTree();
    const body = new TextEncoder().encode('#!/bin/sh\necho demo\n');
    const source = (async function* () {
      yield body;
    })();

    const placing = tree.placeExecutable('demo/1.0.0/linux-amd64/demo', source, {
      sha256: sha256Hex(body),
      size: body.byteLength,
    });

    await expect(placing).rejects.toMatchObject({ name: 'ClientError', code: 'INSTALL_PATH_LINKED' });
    await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
      code: 'INSTALL_PATH_LINKED',
    });
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses to remove a version or an artifact through it, leaving what is outside', async () => {
    const { tree, outside } = await linkedTree();
    // What the link leads to: a folder of the user's, named as a version and a file an installed.json could name.
    await mkdir(path.join(outside, '1.0.0', 'keys'), { recursive: true });
    await writeFile(path.join(outside, '1.0.0', 'keys', 'id_ed25519'), 'secret');

    await expect(tree.removeArtifact('demo/1.0.0/keys/id_ed25519')).rejects.toMatchObject({
      code: 'INSTALL_PATH_LINKED',
    });
    await expect(tree.removeVersion('demo', '1.0.0')).rejects.toMatchObject({ code: 'INSTALL_PATH_LINKED' });
    expect(await readFile(path.join(outside, '1.0.0', 'keys', 'id_ed25519'), 'utf8')).toBe('secret');
  });

  it('still places and removes where the install folder itself is a link (the user chose it)', async () => {
    const root = await mkdtemp(path.join(dir, 'rootlink-'));
    await mkdir(path.join(root, 'real'));
    await symlink(path.join(root, 'real'), path.join(root, 'plugins'));
    const tree = new InstallTree(path.join(root, 'plugins'));

    await tree.placeFile('demo/1.0.0/manifest.json', '{}');
    expect(await readFile(path.join(root, 'real', 'demo', '1.0.0', 'manifest.json'), 'utf8')).toBe('{}');
    await tree.removeVersion('demo', '1.0.0');
    expect(await readdir(path.join(root, 'real'))).toEqual([]);
  });
});

describe.skipIf(process.platform === 'win32')(
  'when a link is swapped in while a placement makes its folders',
  () => {
    /** An install folder and, beside it, `outside`, a folder of the user's that a link could lead to. */
    async function treeBeside(): Promise<{ tree: InstallTree; outside: string }> {
      const root = await mkdtemp(path.join(dir, 'swapped-'));
      const outside = path.join(root, 'outside');
      await mkdir(outside);
      const tree = new InstallTree(path.join(root, 'tree'));
      await tree.placeFile('other/1.0.0/manifest.json', '{}');
      return { tree, outside };
    }
    const body = new TextEncoder().encode('#!/bin/sh\necho demo\n');
    const place = (tree: InstallTree) =>
      tree.placeExecutable(
        'demo/1.0.0/linux-amd64/demo',
        (async function* () {
          yield body;
        })(),
        { sha256: sha256Hex(body), size: body.byteLength },
      );

    it('refuses a link planted after the check, where the plugin\u2019s folder is made, writing nothing outside', async () => {
      const { tree, outside } = await treeBeside();
      const plugin = path.join(tree.dir, 'demo');
      // Prepare: the check found no `demo`; another user plants a link there before the client's mkdir.
      fsSeam.beforeMkdir = async (at) => {
        if (at !== plugin) return;
        fsSeam.beforeMkdir = undefined;
        await symlink(outside, plugin);
      };
      try {
        // Act, Assess: mkdir failed EEXIST and a stat that follows the link took it for the folder made.
        await expect(place(tree)).rejects.toMatchObject({ name: 'ClientError', code: 'INSTALL_PATH_LINKED' });
      } finally {
        fsSeam.beforeMkdir = undefined;
      }
      expect(await readdir(outside)).toEqual([]);
    });

    it('refuses a link swapped in for a folder just made, changing no mode outside (its owner\u2019s bits given back)', async () => {
      const { tree, outside } = await treeBeside();
      const plugin = path.join(tree.dir, 'demo');
      // A folder of the user's kept 0600 (its bits unlike a placed folder's, so giving the owner's back chmods it).
      await chmod(outside, 0o600);
      fsSeam.afterMkdir = async (at) => {
        if (at !== plugin) return;
        fsSeam.afterMkdir = undefined;
        await rm(plugin, { recursive: true });
        await symlink(outside, plugin);
      };
      try {
        await expect(place(tree)).rejects.toMatchObject({ name: 'ClientError', code: 'INSTALL_PATH_LINKED' });
      } finally {
        fsSeam.afterMkdir = undefined;
      }
      expect((await stat(outside)).mode & 0o7777).toBe(0o600);
      await chmod(outside, 0o700);
      expect(await readdir(outside)).toEqual([]);
    });
  },
);

describe.skipIf(process.platform === 'win32')(
  'when the config or data folder, or a folder above it, is one others may write',
  () => {
    const KEY = 'A'.repeat(40);
    /** Config, data and cache folders under `shared`, a parent of `mode`. */
    async function stateUnder(mode: number): Promise<{ state: ClientState; shared: string }> {
      const shared = await mkdtemp(path.join(dir, 'unsafe-home-'));
      const state = new ClientState({
        config: path.join(shared, 'config'),
        data: path.join(shared, 'data'),
        cache: path.join(shared, 'cache'),
      });
      await chmod(shared, mode);
      return { state, shared };
    }
    const pinned = { fingerprint: KEY, armoredKey: `key ${KEY}`, highestGeneration: 3 };

    it('refuses to read or write trust records another user could have planted (DATA_PATH_UNSAFE), naming the folder', async () => {
      const { state, shared } = await stateUnder(0o755);
      await state.writeTrust('main', pinned);
      // Another user, who may write the data folder now, could have written this record.
      await chmod(path.join(shared, 'data'), 0o777);

      await expect(state.trust('main')).rejects.toMatchObject({
        name: 'ClientError',
        code: 'DATA_PATH_UNSAFE',
        message: expect.stringContaining(`${path.join(shared, 'data')} is writable by every user`),
      });
      // A refusal, as the install folder's and the cache's: the command exits 3.
      expect((await state.trust('main').catch((error: unknown) => error)) as ClientError).toHaveProperty(
        'refusal',
        true,
      );
      await expect(state.writeTrust('main', { ...pinned, highestGeneration: 4 })).rejects.toMatchObject({
        code: 'DATA_PATH_UNSAFE',
      });
      await expect(state.sharedTrust('https://plugins.example', { fingerprint: KEY })).rejects.toMatchObject({
        code: 'DATA_PATH_UNSAFE',
      });
      await expect(state.removeTrust('main')).rejects.toMatchObject({ code: 'DATA_PATH_UNSAFE' });
      expect(await readdir(path.join(shared, 'data', 'trust'))).toContain('main');
    });

    it('refuses the shared check, naming the folder, when one name\u2019s trust folder every user may write bears on it', async () => {
      const { state, shared } = await stateUnder(0o755);
      const registry = 'https://plugins.example';
      await state.writeTrust('main', { ...pinned, registry });
      // Another user, who may write `planted`'s folder, may have put a floor there far above any snapshot
      // served, or taken away the mark of a key retired as stolen: neither read nor passed over in silence.
      await state.writeTrust('planted', { ...pinned, highestGeneration: 999_999, registry });
      const planted = path.join(shared, 'data', 'trust', 'planted');
      await chmod(planted, 0o777);

      await expect(state.sharedTrust(registry, { fingerprint: KEY })).rejects.toMatchObject({
        name: 'ClientError',
        code: 'DATA_PATH_UNSAFE',
        message: expect.stringContaining(planted),
      });
      await expect(state.trust('planted')).rejects.toMatchObject({ code: 'DATA_PATH_UNSAFE' });
      // Made safe again, it is read as any other name's.
      await chmod(planted, 0o700);
      expect((await state.sharedTrust(registry, { fingerprint: KEY })).highestGeneration).toEqual({
        generation: 999_999,
        name: 'planted',
      });
    });

    it('refuses to remove a trust folder holding a folder every user may write (its entries go by a recursive rm)', async () => {
      const { state, shared } = await stateUnder(0o755);
      await state.writeTrust('main', pinned);
      const planted = path.join(shared, 'data', 'trust', 'main', 'shared');
      await mkdir(planted);
      await chmod(planted, 0o777);
      await writeFile(path.join(planted, 'kept'), 'kept');

      await expect(state.removeTrust('main')).rejects.toMatchObject({
        code: 'DATA_PATH_UNSAFE',
        message: expect.stringContaining(planted),
      });
      expect(await readFile(path.join(planted, 'kept'), 'utf8')).toBe('kept');
      expect((await state.trust('main'))?.highestGeneration).toBe(3);
    });

    it('refuses to read or write a config.json another user could have written (CONFIG_PATH_UNSAFE)', async () => {
      const { state, shared } = await stateUnder(0o777);

      await expect(state.readConfig()).rejects.toMatchObject({ code: 'CONFIG_PATH_UNSAFE' });
      await expect(state.editConfig(async (config) => ({ config, result: undefined }))).rejects.toMatchObject(
        { code: 'CONFIG_PATH_UNSAFE' },
      );
      await expect(state.writeTrust('main', pinned)).rejects.toMatchObject({ code: 'DATA_PATH_UNSAFE' });
      // Refused before anything is made there.
      expect(await readdir(shared)).toEqual([]);
    });

    it('reads and writes under a parent with the sticky bit (as /tmp), and where PLUGINDEX_SAFE_FOLDERS lists it', async () => {
      const sticky = await stateUnder(0o1777);
      await sticky.state.writeTrust('main', pinned);
      expect((await sticky.state.trust('main'))?.highestGeneration).toBe(3);

      const { state, shared } = await stateUnder(0o777);
      await expect(state.readConfig()).rejects.toThrow(`PLUGINDEX_SAFE_FOLDERS=${shared}`);
      try {
        vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', shared);
        await state.writeTrust('main', pinned);
        expect((await state.trust('main'))?.highestGeneration).toBe(3);
        expect((await state.readConfig()).registries).toEqual([]);
      } finally {
        vi.unstubAllEnvs();
      }
    });

    it.skipIf(process.getuid?.() !== 0)(
      'refuses a trust record written where another user made the data folder first, between the check and the client\u2019s mkdir (under /tmp)',
      async () => {
        const { state, shared } = await stateUnder(0o1777);
        const data = path.join(shared, 'data');
        // The check found no data folder; another user (nobody) makes it, theirs, before the client's mkdir.
        fsSeam.beforeMkdir = async () => {
          fsSeam.beforeMkdir = undefined;
          await mkdir(data, { mode: 0o777 });
          await chown(data, 65_534, 65_534);
          await chmod(data, 0o777);
        };
        try {
          await expect(state.writeTrust('main', pinned)).rejects.toMatchObject({
            code: 'DATA_PATH_UNSAFE',
            message: expect.stringContaining(`${data} is owned by user 65534`),
          });
        } finally {
          fsSeam.beforeMkdir = undefined;
        }
        expect(await readdir(path.join(data, 'trust', 'main'))).toEqual([]);
      },
    );

    it.skipIf(process.getuid?.() !== 0)(
      'reads no config.json or trust record from a folder another user made after the check found none (under /tmp)',
      async () => {
        const { state, shared } = await stateUnder(0o1777);
        const config = path.join(shared, 'config');
        const data = path.join(shared, 'data');
        // A record as the client writes one, its floor far above any snapshot served.
        const made = await stateUnder(0o755);
        await made.state.writeTrust('main', { ...pinned, highestGeneration: 999_999 });
        const from = path.join(made.shared, 'data', 'trust', 'main');
        /** Another user (nobody) makes `top` (a folder the check found none of), theirs, `files` at `within`. */
        const plantOnce = (top: string, within: string, files: Record<string, string>) => {
          fsSeam.afterLstat = async (at) => {
            if (at !== top) return;
            fsSeam.afterLstat = undefined;
            await mkdir(path.join(top, within), { recursive: true });
            for (const [name, text] of Object.entries(files))
              await writeFile(path.join(top, within, name), text);
            await chown(top, 65_534, 65_534);
          };
        };
        try {
          plantOnce(config, '', {
            'config.json': JSON.stringify({
              schema: 'plugindex/client-config/v1',
              registries: [
                { name: 'main', url: 'https://planted.example', priority: 0, key_fingerprint: KEY },
              ],
            }),
          });
          expect((await state.readConfig()).registries).toEqual([]);
          plantOnce(data, path.join('trust', 'main'), {
            'registry.asc': await readFile(path.join(from, 'registry.asc'), 'utf8'),
            'state.json': await readFile(path.join(from, 'state.json'), 'utf8'),
          });
          expect(await state.trust('main')).toBeUndefined();
        } finally {
          fsSeam.afterLstat = undefined;
        }
        // Judged now, both are refused.
        await expect(state.readConfig()).rejects.toMatchObject({ code: 'CONFIG_PATH_UNSAFE' });
        await expect(state.trust('main')).rejects.toMatchObject({ code: 'DATA_PATH_UNSAFE' });
      },
    );

    it.skipIf(process.getuid?.() !== 0)(
      'lends no floor from a trust root another user made after the check found none, and removed again (sharedTrust)',
      async () => {
        const { state, shared } = await stateUnder(0o1777);
        const data = path.join(shared, 'data');
        const made = await stateUnder(0o755);
        const registry = 'https://plugins.example';
        await made.state.writeTrust('main', { ...pinned, highestGeneration: 999_999, registry });
        const from = path.join(made.shared, 'data', 'trust', 'main');
        const files = {
          'registry.asc': await readFile(path.join(from, 'registry.asc'), 'utf8'),
          'state.json': await readFile(path.join(from, 'state.json'), 'utf8'),
        };
        // Another user (nobody) makes the data folder, theirs, with a record in it, just after the check of
        // the trust root found none; and removes it again at the next judgment, which so finds none either.
        let judged = 0;
        fsSeam.afterLstat = async (at) => {
          if (at === data && judged++ === 0) {
            await mkdir(path.join(data, 'trust', 'main'), { recursive: true });
            for (const [name, text] of Object.entries(files))
              await writeFile(path.join(data, 'trust', 'main', name), text);
            await chown(data, 65_534, 65_534);
          } else if (at === shared && judged > 0) await rm(data, { recursive: true, force: true });
        };
        try {
          const found = await state.sharedTrust(registry, { fingerprint: KEY });
          expect(found.highestGeneration).toBeUndefined();
        } finally {
          fsSeam.afterLstat = undefined;
        }
      },
    );

    /**
     * The config folder made writable by its group (umask 002) as user `uid` of primary group `gid` (this
     * process taken for that user, the folder chowned to them: root alone may), and what reading it does.
     */
    async function readAsUser(uid: number, gid: number): Promise<unknown> {
      const { state, shared } = await stateUnder(0o755);
      const config = path.join(shared, 'config');
      await mkdir(config);
      await chmod(config, 0o775);
      await chown(shared, uid, gid);
      await chown(config, uid, gid);
      vi.spyOn(process, 'getuid').mockReturnValue(uid);
      vi.spyOn(process, 'getgid').mockReturnValue(gid);
      try {
        return await state.readConfig().catch((error: unknown) => error);
      } finally {
        vi.restoreAllMocks();
      }
    }
    const asRoot = process.getuid?.() === 0;
    /** A primary group two accounts of /etc/passwd share (Debian's nogroup: nobody, _apt), and one of them. */
    const shared = (() => {
      const seen = new Map<string, number>();
      for (const line of (existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8') : '').split('\n')) {
        const [, , uid, gid] = line.split(':');
        if (uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue;
        if (seen.has(gid)) return { uid: Number(uid), gid: Number(gid) };
        seen.set(gid, Number(uid));
      }
      return undefined;
    })();

    it.skipIf(!asRoot)(
      'reads a folder writable by the user\u2019s own private group (umask 002)',
      async () => {
        // An id no account file names, the group's the user's own (as useradd and SSSD make a private group).
        expect(await readAsUser(424_242, 424_242)).toEqual(expect.objectContaining({ registries: [] }));
      },
    );

    it.skipIf(!asRoot || shared === undefined)(
      'refuses a folder writable by the user\u2019s primary group where other users share it (macOS staff, openSUSE users)',
      async () => {
        const { uid, gid } = shared ?? { uid: 0, gid: 0 };
        expect(await readAsUser(uid, gid)).toMatchObject({
          code: 'CONFIG_PATH_UNSAFE',
          message: expect.stringContaining(
            `writable by its group (${gid}), which users other than you are in`,
          ),
        });
        // A group no account file names, not the user's own id: none can tell who else is in it.
        expect(await readAsUser(424_242, 424_243)).toMatchObject({ code: 'CONFIG_PATH_UNSAFE' });
      },
    );
  },
);

describe.skipIf(process.platform === 'win32')(
  'when a folder on the way to the install folder is one others may write',
  () => {
    /** A parent folder `shared` of `mode` (and, given, owned by `owner`) holding the install folder `plugins`. */
    async function treeUnder(mode: number, owner?: number): Promise<{ tree: InstallTree; shared: string }> {
      const root = await mkdtemp(path.join(dir, 'unsafe-'));
      const shared = path.join(root, 'shared');
      await mkdir(shared);
      await chmod(shared, mode);
      if (owner !== undefined) await chown(shared, owner, owner);
      return { tree: new InstallTree(path.join(shared, 'plugins')), shared };
    }
    const nobody = 65534;
    const asRoot = process.getuid?.() === 0;

    it.each([
      ['writable by every user, without the sticky bit', 0o777],
      ['writable by a group not its own, without the sticky bit', 0o775],
    ])('refuses to write or remove under a parent %s (INSTALL_PATH_UNSAFE)', async (_what, mode) => {
      const { tree, shared } = await treeUnder(mode);
      if (mode === 0o775) await chown(shared, process.getuid?.() ?? 0, nobody);

      await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
        name: 'ClientError',
        code: 'INSTALL_PATH_UNSAFE',
      });
      await expect(
        tree.update(async (installed) => ({ installed, result: undefined })),
      ).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
      await expect(tree.removeVersion('demo', '1.0.0')).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
      // Refused before anything is made: not even the install folder.
      expect(await readdir(shared)).toEqual([]);
    });

    it.skipIf(!asRoot)('refuses a parent folder owned by another user (INSTALL_PATH_UNSAFE)', async () => {
      const { tree } = await treeUnder(0o755, nobody);

      await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
    });

    it.skipIf(!asRoot)('refuses an install folder reached through a link another user owns', async () => {
      const root = await mkdtemp(path.join(dir, 'foreign-link-'));
      await mkdir(path.join(root, 'real'));
      await symlink(path.join(root, 'real'), path.join(root, 'plugins'));
      await lchown(path.join(root, 'plugins'), nobody, nobody);
      const tree = new InstallTree(path.join(root, 'plugins'));

      await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
      expect(await readdir(path.join(root, 'real'))).toEqual([]);
    });

    it('refuses a folder inside the install folder that every user may write', async () => {
      const { tree } = await treeUnder(0o755);
      await tree.placeFile('demo/1.0.0/manifest.json', '{}');
      await chmod(path.join(tree.dir, 'demo'), 0o777);

      await expect(tree.placeFile('demo/1.0.0/manifest.json', '[]')).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
      await expect(tree.removeVersion('demo', '1.0.0')).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
      expect(await readFile(path.join(tree.dir, 'demo/1.0.0/manifest.json'), 'utf8')).toBe('{}');
    });

    it('refuses to remove a version whose folder holds one every user may write (a recursive rm follows a link swapped in there)', async () => {
      const { tree } = await treeUnder(0o755);
      await tree.placeFile('demo/1.0.0/linux-amd64/demo.sh', 'placed');
      await chmod(path.join(tree.dir, 'demo/1.0.0/linux-amd64'), 0o777);

      await expect(tree.removeVersion('demo', '1.0.0')).rejects.toMatchObject({
        code: 'INSTALL_PATH_UNSAFE',
      });
      expect(await readFile(path.join(tree.dir, 'demo/1.0.0/linux-amd64/demo.sh'), 'utf8')).toBe('placed');
    });

    it('places under a parent every user may write that has the sticky bit (as /tmp)', async () => {
      const { tree } = await treeUnder(0o1777);

      await tree.placeFile('demo/1.0.0/manifest.json', '{}');
      expect(await readFile(path.join(tree.dir, 'demo/1.0.0/manifest.json'), 'utf8')).toBe('{}');
    });

    it.skipIf(!asRoot)(
      'refuses, under a sticky parent, an install folder another user made there first',
      async () => {
        const { tree } = await treeUnder(0o1777);
        await mkdir(tree.dir);
        await chown(tree.dir, nobody, nobody);

        await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
          code: 'INSTALL_PATH_UNSAFE',
        });
      },
    );

    describe("and the user vouches for it (PLUGINDEX_SAFE_FOLDERS, as git's safe.directory)", () => {
      afterEach(() => {
        vi.unstubAllEnvs();
      });

      /**
       * A parent another user may change, as common setups have it: root's container on a workspace owned
       * by the host user (another user owns it; as root only, who may chown), or a setgid project folder
       * writable by a group not the user's own.
       */
      const setups = [
        ...(asRoot ? [['owned by another user (a bind-mounted workspace)', 0o755, nobody] as const] : []),
        ['a setgid folder writable by a group not its own', 0o2775, undefined] as const,
      ];
      async function vouchable(mode: number, owner: number | undefined) {
        const made = await treeUnder(mode, owner);
        if (owner === undefined) await chown(made.shared, process.getuid?.() ?? 0, nobody);
        await chmod(made.shared, mode);
        return made;
      }

      it.each(setups)(
        'names the variable and the folder to add when refusing one %s',
        async (_what, mode, owner) => {
          const { tree, shared } = await vouchable(mode, owner);

          const refused = tree.placeFile('demo/1.0.0/manifest.json', '{}');
          await expect(refused).rejects.toMatchObject({ name: 'ClientError', code: 'INSTALL_PATH_UNSAFE' });
          await expect(refused).rejects.toThrow(`PLUGINDEX_SAFE_FOLDERS=${shared}`);
        },
      );

      it.each(setups)(
        'places, updates and removes under one %s once it is listed',
        async (_what, mode, owner) => {
          const { tree, shared } = await vouchable(mode, owner);
          vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', `/nowhere/else${path.delimiter}${shared}`);

          await tree.placeFile('demo/1.0.0/manifest.json', '{}');
          await tree.update(async (installed) => ({ installed, result: undefined }));
          expect(await readFile(path.join(tree.dir, 'demo/1.0.0/manifest.json'), 'utf8')).toBe('{}');
          await tree.removeVersion('demo', '1.0.0');
          await expect(stat(path.join(tree.dir, 'demo/1.0.0'))).rejects.toMatchObject({ code: 'ENOENT' });
        },
      );

      it('places under it once a folder above it is listed, or `*`', async () => {
        for (const entry of ['parent', '*'] as const) {
          const { tree, shared } = await vouchable(setups[0]?.[1] ?? 0o2775, setups[0]?.[2]);
          vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', entry === '*' ? '*' : path.dirname(shared));

          await tree.placeFile('demo/1.0.0/manifest.json', '{}');
          expect(await readFile(path.join(tree.dir, 'demo/1.0.0/manifest.json'), 'utf8')).toBe('{}');
        }
      });

      it('ignores a relative or empty entry, and a folder beside it of a longer name', async () => {
        const { tree, shared } = await vouchable(setups[0]?.[1] ?? 0o2775, setups[0]?.[2]);
        const beside = `${shared}-not`;
        vi.stubEnv(
          'PLUGINDEX_SAFE_FOLDERS',
          ['', path.relative(process.cwd(), shared), path.basename(shared), '.', beside].join(path.delimiter),
        );

        await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
          code: 'INSTALL_PATH_UNSAFE',
        });
        expect(await readdir(shared)).toEqual([]);
      });

      it('still refuses a link inside the install folder (INSTALL_PATH_LINKED)', async () => {
        const { tree, shared } = await vouchable(setups[0]?.[1] ?? 0o2775, setups[0]?.[2]);
        vi.stubEnv('PLUGINDEX_SAFE_FOLDERS', shared);
        const outside = await mkdtemp(path.join(dir, 'vouched-outside-'));
        await mkdir(tree.dir);
        await symlink(outside, path.join(tree.dir, 'demo'));

        await expect(tree.placeFile('demo/1.0.0/manifest.json', '{}')).rejects.toMatchObject({
          code: 'INSTALL_PATH_LINKED',
        });
        expect(await readdir(outside)).toEqual([]);
      });
    });
  },
);

describe('when the install folder\u2019s installed.json is a folder', () => {
  it('names it as no record (INSTALLED_INVALID) for a read and an edit, where Node said only EISDIR', async () => {
    const tree = new InstallTree(await mkdtemp(path.join(dir, 'installed-folder-')));
    await mkdir(path.join(tree.dir, 'installed.json'));
    for (const attempt of [
      () => tree.read(),
      () => tree.update(async (installed) => ({ installed, result: undefined })),
    ]) {
      const error = await attempt().then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'INSTALLED_INVALID' });
      expect((error as ClientError).message).toContain(
        `${path.join(tree.dir, 'installed.json')} is a folder, not the install folder's record`,
      );
    }
  });
});

describe('when config.json is a folder', () => {
  it('names it as no configuration (CLIENT_CONFIG_INVALID) for a read and an edit, where Node said only EISDIR', async () => {
    const home = await mkdtemp(path.join(dir, 'config-folder-'));
    const config = path.join(home, 'config');
    await mkdir(path.join(config, 'config.json'), { recursive: true });
    await chmod(config, 0o700);
    const state = new ClientState({ config, data: path.join(home, 'data'), cache: path.join(home, 'cache') });
    for (const attempt of [
      () => state.readConfig(),
      () => state.editConfig(async (before) => ({ config: before, result: undefined })),
    ]) {
      const error = await attempt().then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'CLIENT_CONFIG_INVALID' });
      expect((error as ClientError).message).toContain(
        `${path.join(config, 'config.json')} is a folder, not the configuration`,
      );
    }
  });
});

describe('when the path of a lock file is a folder', () => {
  it('names the path as no lock file (LOCKFILE_INVALID), for a read and for a write, where Node said only EISDIR', async () => {
    // Node's bare "EISDIR: illegal operation on a directory, read" reached the command as a stack trace.
    const EMPTY_LOCK: Lockfile = { lockfile_version: 1, registries: {}, plugins: {} };
    const folder = path.join(await mkdtemp(path.join(dir, 'lock-folder-')), 'plugindex.lock');
    await mkdir(folder);
    for (const attempt of [() => readLockfile(folder), () => writeLockfile(folder, EMPTY_LOCK)]) {
      const error = await attempt().then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({ code: 'LOCKFILE_INVALID' });
      expect((error as ClientError).message).toContain(`${folder} is a folder, not a lock file`);
    }
    // Left as it was: nothing written into it or in its place.
    expect((await stat(folder)).isDirectory()).toBe(true);
    expect(await readdir(folder)).toEqual([]);
  });
});

describe.skipIf(process.platform === 'win32')('when an installed file is a FIFO', () => {
  it('hashes it as no file, at once, rather than wait for a writer', async () => {
    const tree = new InstallTree(await mkdtemp(path.join(dir, 'fifo-')));
    await mkdir(path.join(tree.dir, 'demo/1.0.0/linux-amd64'), { recursive: true });
    execFileSync('mkfifo', [path.join(tree.dir, 'demo/1.0.0/linux-amd64/demo')]);

    expect(await tree.hashFile('demo/1.0.0/linux-amd64/demo')).toBeUndefined();
  }, 10_000);
});

describe.skipIf(process.platform === 'win32')('when files are placed under the user\u2019s umask', () => {
  /** What place-under-umask.ts placed into a fresh folder, run under `umask`. */
  const placeUnder = (umask: string) => {
    const script = fileURLToPath(new URL('../../support/place-under-umask.ts', import.meta.url));
    const target = path.join(dir, `umask-${umask}`, 'plugins');
    const stdout = execFileSync(
      'sh',
      ['-c', `umask ${umask} && exec "$0" --import tsx "$1" "$2"`, process.execPath, script, target],
      { cwd: fileURLToPath(new URL('../../..', import.meta.url)), encoding: 'utf8' },
    );
    return JSON.parse(stdout) as unknown;
  };

  it('keeps them from other users under umask 077, each still a file an install placed', () => {
    expect(placeUnder('077')).toEqual({
      artifact: '700',
      artifactPlaced: true,
      manifest: '600',
      manifestPlaced: true,
      folders: ['700', '700', '700'],
      installFolder: ['700', '700'],
    });
  });

  it('makes none writable by its group under umask 002, so each is as placed, not placed again', () => {
    expect(placeUnder('002')).toEqual({
      artifact: '755',
      artifactPlaced: true,
      manifest: '644',
      manifestPlaced: true,
      // Nor the folders it makes: a group-writable version folder let its group put their own file in place
      // of a checked one.
      folders: ['755', '755', '755'],
      // Nor the install folder it makes, and its parent: made as `mkdir -p` makes them, 0775.
      installFolder: ['755', '755'],
    });
  });

  it('gives an artifact its owner\u2019s bits back under a umask that takes them (0177), no one else\u2019s', () => {
    expect(placeUnder('177')).toEqual({
      artifact: '700',
      artifactPlaced: true,
      manifest: '600',
      manifestPlaced: true,
      // And each folder it makes: 0600, none could be entered but by root, and a user's install failed EACCES.
      folders: ['700', '700', '700'],
      // The install folder and its parent too, made 0600: the first install into a new folder failed EACCES.
      installFolder: ['700', '700'],
    });
  });
});

describe('when an installed file is far larger than the file it stands for', () => {
  it('gives its size without reading it (a sparse terabyte), and hashes one of at most that size', async () => {
    const tree = new InstallTree(await mkdtemp(path.join(dir, 'sparse-')));
    await mkdir(path.join(tree.dir, 'demo/1.0.0/linux-amd64'), { recursive: true });
    const file = path.join(tree.dir, 'demo/1.0.0/linux-amd64/demo');
    await writeFile(file, '');
    await truncate(file, 2 ** 40);

    expect(await tree.hashFile('demo/1.0.0/linux-amd64/demo', { maxBytes: 92 })).toEqual({
      sha256: '',
      size: 2 ** 40,
    });
    await truncate(file, 92);
    expect(await tree.hashFile('demo/1.0.0/linux-amd64/demo', { maxBytes: 92 })).toEqual({
      sha256: sha256Hex(new Uint8Array(92)),
      size: 92,
    });
  }, 10_000);
});

describe('when the trust records of one registry are kept under several names', () => {
  const KEY = 'A'.repeat(40);
  const ROTATED = 'B'.repeat(40);
  const OTHER = 'C'.repeat(40);
  const head = (length: number, digit: string) => ({ length, head: digit.repeat(64) });

  /** A data folder holding `records`, each written as `registry add` or a session keeps one. */
  async function stateWith(records: Record<string, TrustRecord>): Promise<ClientState> {
    const home = await mkdtemp(path.join(dir, 'shared-'));
    const state = new ClientState({
      config: path.join(home, 'config'),
      data: path.join(home, 'data'),
      cache: path.join(home, 'cache'),
    });
    for (const [name, record] of Object.entries(records)) await state.writeTrust(name, record);
    return state;
  }

  const record = (fingerprint: string, extra: Partial<TrustRecord> = {}): TrustRecord => ({
    fingerprint,
    armoredKey: `key ${fingerprint}`,
    ...extra,
  });

  /**
   * A data folder where `main` followed a rotation away from KEY (to ROTATED) as stolen at
   * https://plugins.example; the chain it holds, KEY's departure marked compromised.
   */
  async function followedStolenRotation() {
    const chain = [{ fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const }];
    const state = await stateWith({
      main: record(ROTATED, {
        highestGeneration: 12,
        chain,
        rotations: 1,
        registry: 'https://plugins.example',
      }),
    });
    return { state, chain };
  }

  /**
   * `followedStolenRotation`, then `main` added again with an unrelated key (OTHER) of
   * https://other.example; the chain `main` held.
   */
  async function leftStolenLineage() {
    const { state, chain } = await followedStolenRotation();
    await state.writeTrust(
      'main',
      record(OTHER, { highestGeneration: 2, registry: 'https://other.example' }),
      { replacing: true },
    );
    return { state, chain };
  }

  it('gives the highest generation and each log head of every name of the registry and key, however spelled', async () => {
    const state = await stateWith({
      configured: record(KEY, {
        highestGeneration: 7,
        log: head(3, 'a'),
        registry: 'https://plugins.example',
      }),
      'set-0123456789abcdef': record(KEY, {
        highestGeneration: 9,
        log: head(4, 'b'),
        registry: 'HTTPS://Plugins.Example:443/',
      }),
      again: record(KEY, { highestGeneration: 2, log: head(3, 'a'), registry: 'https://plugins.example/' }),
    });
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toEqual({
      highestGeneration: { generation: 9, name: 'set-0123456789abcdef' },
      logs: [head(3, 'a'), head(4, 'b')],
    });
  });

  it('keeps the heads a log was checked to extend with that log, and the newer ones when a run saves last', async () => {
    const state = await stateWith({
      test: record(KEY, { highestGeneration: 5, log: head(6, 'b'), logsExtended: [head(3, 'a')] }),
    });
    expect(await state.trust('test')).toMatchObject({ log: head(6, 'b'), logsExtended: [head(3, 'a')] });
    // A run that accepted an older snapshot saves last: the newer record's head stands, and with it the
    // heads it was checked to extend, never the older run's.
    await state.writeTrust(
      'test',
      record(KEY, { highestGeneration: 4, log: head(5, 'c'), logsExtended: [head(2, 'd')] }),
    );
    expect(await state.trust('test')).toMatchObject({ log: head(6, 'b'), logsExtended: [head(3, 'a')] });
  });

  it('keeps apart a name pinning another key, and another registry signed by the same key', async () => {
    const state = await stateWith({
      forged: record(OTHER, {
        highestGeneration: 1_000_000,
        log: head(9, 'f'),
        registry: 'https://plugins.example',
      }),
      elsewhere: record(KEY, { highestGeneration: 50, log: head(9, 'e'), registry: 'https://other.example' }),
      path: record(KEY, { highestGeneration: 60, registry: 'https://plugins.example/Registry' }),
    });
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toEqual({ logs: [] });
  });

  it('binds a name to the key it rotated to, and to a key another name rotated from', async () => {
    const chain = [{ fingerprint: KEY, armoredKey: `key ${KEY}` }];
    const state = await stateWith({
      followed: record(ROTATED, { highestGeneration: 12, chain, registry: 'https://plugins.example' }),
    });
    // Still at the key the registry rotated from: the generations under its successor bind it, and the
    // key is one the registry left (a snapshot by it from then on is its former holder's).
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toEqual({
      highestGeneration: { generation: 12, name: 'followed' },
      logs: [],
      departures: [{ ...chain[0], retiredTo: ROTATED }],
      retired: [{ fingerprint: KEY, name: 'followed', generation: 12 }],
    });
    // Followed the same rotation here: the name holding the rotated-from key binds it as well.
    const behind = await stateWith({
      behind: record(KEY, { highestGeneration: 10, registry: 'https://plugins.example' }),
    });
    expect(
      await behind.sharedTrust('https://plugins.example', { fingerprint: ROTATED, chain }),
    ).toMatchObject({ highestGeneration: { generation: 10, name: 'behind' } });
  });

  it('keeps a record that rotated away from the key a run saving last began under, and what its links learnt', async () => {
    const learnt = [{ fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const }];
    const followed = record(ROTATED, {
      highestGeneration: 12,
      chain: learnt,
      rotations: 1,
      log: head(6, 'b'),
      registry: 'https://plugins.example',
    });
    const state = await stateWith({ test: followed });
    // A run that began under the key rotated from saves last: the record stays the one that followed.
    await state.writeTrust('test', record(KEY, { highestGeneration: 10, log: head(5, 'a'), rotations: 0 }));
    expect(await state.trust('test')).toEqual(followed);
    // A run under the same key saving a chain whose link has not learnt its rotation yet keeps the mark.
    await state.writeTrust(
      'test',
      record(ROTATED, {
        highestGeneration: 12,
        chain: [{ fingerprint: KEY, armoredKey: `key ${KEY}` }],
        rotations: 1,
        log: head(6, 'b'),
        registry: 'https://plugins.example',
      }),
    );
    expect(await state.trust('test')).toEqual(followed);
    // A registry added again afresh (another URL, say) takes the record given, but for what the record it
    // replaces knew of its keys: the key it left, its mark, and the registry it was of, kept beside it.
    await state.writeTrust('test', record(KEY), { replacing: true });
    const kept = [{ ...learnt[0], retiredTo: ROTATED, registry: 'https://plugins.example' }];
    expect(await state.trust('test')).toEqual({ ...record(KEY), formerDepartures: kept });
    // Replaced again, and written again as a check saves it, they stay.
    await state.writeTrust('test', record(ROTATED), { replacing: true });
    await state.writeTrust('test', record(ROTATED, { highestGeneration: 3 }));
    expect(await state.trust('test')).toEqual({
      ...record(ROTATED, { highestGeneration: 3 }),
      formerDepartures: kept,
    });
  });

  it("gives the marks a name kept from a lineage it left for an unrelated key, not that lineage's floor", async () => {
    // Prepare: `main` followed a rotation away from KEY as stolen, then was added again with an unrelated
    // key (OTHER) of another registry; a set pins KEY at the first registry.
    const { state, chain } = await leftStolenLineage();

    // Act
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));

    // Assess: the mark and the departure count for the key pinned; no floor of either registry does.
    expect(shared.revoked).toEqual([{ ...chain[0], retiredTo: ROTATED, compromised: true }]);
    expect(shared.departures).toEqual([{ ...chain[0], retiredTo: ROTATED }]);
    expect(shared.highestGeneration).toBeUndefined();
    expect(shared.retired).toBeUndefined();
    // The registry `main` is of now holds nothing of the old one's keys against its own key.
    expect(await state.sharedTrust('https://other.example', record(OTHER))).toMatchObject({
      highestGeneration: { generation: 2, name: 'main' },
    });
    expect((await state.sharedTrust('https://other.example', record(OTHER))).revoked).toBeUndefined();
  });

  it('keeps the marks a name kept from a lineage it left through a write by a client before them (a downgrade)', async () => {
    // Prepare: as above, `main` left a lineage whose first key was stolen for an unrelated key.
    const { state, chain } = await leftStolenLineage();

    // Act: a client before former departures (run again after a downgrade) saves the record as its next check
    // does: state.json written whole from the fields it knows, and nothing else in the folder touched.
    // And its trust index (v1), listing the name under the registry its record names alone.
    const file = path.join(state.dirs.data, 'trust', 'main', 'state.json');
    const { former_departures: _dropped, ...known } = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, `${JSON.stringify({ ...known, highest_generation: 3 }, null, 2)}\n`);
    const index = path.join(state.dirs.data, 'trust', '.index.json');
    const { names } = JSON.parse(await readFile(index, 'utf8'));
    expect(names.main).toContain('https://plugins.example');
    const olderIndex = {
      schema: 'plugindex/trust-index/v1',
      names: { ...names, main: names.main.filter((r: string) => r !== 'https://plugins.example') },
    };
    await writeFile(index, `${JSON.stringify(olderIndex, null, 2)}\n`);

    // Assess: the stolen key's mark still counts for the registry it was of, once this client runs again.
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));
    expect(shared.revoked).toEqual([{ ...chain[0], retiredTo: ROTATED, compromised: true }]);
    expect((await state.trust('main'))?.formerDepartures).toEqual([
      { ...chain[0], retiredTo: ROTATED, registry: 'https://plugins.example' },
    ]);
  });

  it('keeps the marks of a record kept before records named their registry, replaced, as of the registry its name was of', async () => {
    // Prepare: `main` as a client before `registry` was kept wrote it: it left KEY, marked stolen, for ROTATED.
    const state = await stateWith({});
    const folder = path.join(state.dirs.data, 'trust', 'main');
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'registry.asc'), `key ${ROTATED}`);
    const marked = { fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const };
    await writeFile(
      path.join(folder, 'state.json'),
      JSON.stringify({
        fingerprint: ROTATED,
        highest_generation: 12,
        rotations: 1,
        chain: [{ fingerprint: KEY, key: `key ${KEY}`, retired_by: 1, compromised: true }],
      }),
    );

    // Act: added again with an unrelated key of another registry, told the registry `main` was of.
    await state.writeTrust(
      'main',
      record(OTHER, { highestGeneration: 2, registry: 'https://other.example' }),
      {
        replacing: true,
        formerRegistry: 'https://plugins.example',
      },
    );

    // Assess: the mark is kept as of that registry, and counts for a name of it pinning KEY.
    expect((await state.trust('main'))?.formerDepartures).toEqual([
      { ...marked, retiredTo: ROTATED, registry: 'https://plugins.example' },
    ]);
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));
    expect(shared.revoked).toEqual([{ ...marked, retiredTo: ROTATED }]);
    expect(shared.highestGeneration).toBeUndefined();
    expect((await state.sharedTrust('https://other.example', record(KEY))).revoked).toBeUndefined();
  });

  it('refuses the checks of the registry a damaged former departure names (TRUST_STATE_INVALID, naming it), no other, and keeps it through a write', async () => {
    // Prepare: as above, `main` left a lineage whose first key was stolen for an unrelated key (OTHER); a
    // second former departure, of a third registry, is then damaged by hand (and the index rebuilt).
    const { state, chain } = await leftStolenLineage();
    const file = path.join(state.dirs.data, 'trust', 'main', 'state.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    const damaged = { fingerprint: ROTATED, compromised: 'yes', registry: 'https://third.example' };
    await writeFile(
      file,
      JSON.stringify({ ...json, former_departures: [...json.former_departures, damaged] }),
    );
    await rm(path.join(state.dirs.data, 'trust', '.index.json'));

    // Act and assess: the record reads, its good mark with it, and counts for its registry.
    expect(await state.trust('main')).toMatchObject({
      fingerprint: OTHER,
      formerDepartures: [{ fingerprint: KEY, compromised: true, registry: 'https://plugins.example' }],
      damagedDepartures: [{ at: `${file}#/former_departures/1`, scope: 'registry', raw: damaged }],
    });
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));
    expect(shared.revoked).toEqual([{ ...chain[0], retiredTo: ROTATED, compromised: true }]);
    expect(await state.sharedTrust('https://other.example', record(OTHER))).toMatchObject({
      highestGeneration: { generation: 2, name: 'main' },
    });
    // The registry the damaged entry names refuses, saying where it is and how to mend it.
    await expect(state.sharedTrust('https://third.example/', record(ROTATED))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringMatching(
        new RegExp(
          `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}#/former_departures/1/compromised: expected true.*mend`,
        ),
      ),
    });

    // Act: the name's next check saves; then `registry remove` is asked for.
    await state.writeTrust(
      'main',
      record(OTHER, { highestGeneration: 3, registry: 'https://other.example' }),
    );

    // Assess: the damaged entry is written back as found, in state.json and its copy; removing the name
    // is refused (the entry would go with the folder), the folder left.
    expect(JSON.parse(await readFile(file, 'utf8')).former_departures).toContainEqual(damaged);
    expect(JSON.parse(await readFile(path.join(path.dirname(file), 'former.json'), 'utf8'))).toContainEqual(
      damaged,
    );
    await expect(state.removeTrust('main')).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
    });
    expect(await state.trust('main')).toMatchObject({ highestGeneration: 3 });
  });

  it('refuses the checks of the record\u2019s own registry for a damaged former departure naming none, rather than read it as none', async () => {
    const state = await stateWith({ main: record(ROTATED, { registry: 'https://plugins.example' }) });
    const file = path.join(state.dirs.data, 'trust', 'main', 'state.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(
      file,
      JSON.stringify({ ...json, former_departures: [{ fingerprint: KEY, compromised: 'yes' }] }),
    );
    await expect(state.sharedTrust('https://plugins.example', record(ROTATED))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining(`${file}#/former_departures/0/key: missing`),
    });
    expect(await state.sharedTrust('https://other.example', record(ROTATED))).toEqual({ logs: [] });
  });

  it('refuses the checks of every registry for a damaged former departure whose registry does not read, those of registries the record is not listed under too', async () => {
    // Prepare: `main` (of https://plugins.example) kept a mark of KEY whose `registry` was damaged by hand
    // (a number): it may be any registry's, https://elsewhere.example's (whose name `set` pins KEY) say.
    const marked = {
      fingerprint: KEY,
      key: `key ${KEY}`,
      retired_to: ROTATED,
      retired_by: 1,
      compromised: true,
      registry: 7,
    };
    const state = await stateWith({
      main: record(ROTATED, { registry: 'https://plugins.example' }),
      set: record(KEY, { registry: 'https://elsewhere.example' }),
    });
    const file = path.join(state.dirs.data, 'trust', 'main', 'state.json');
    const json = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...json, former_departures: [marked] }));
    const refused = {
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining(`${file}#/former_departures/0/registry: expected`),
    };

    // Act and assess: the record's own registry's check refuses; so, after it, does a check of the other
    // registry, where the record is listed under its own alone (it went on, blind to the mark).
    await expect(state.sharedTrust('https://plugins.example', record(ROTATED))).rejects.toMatchObject(
      refused,
    );
    await expect(state.sharedTrust('https://elsewhere.example', record(KEY))).rejects.toMatchObject(refused);
    // And with the index rebuilt from the folders (a missing index), before any other check.
    await rm(path.join(state.dirs.data, 'trust', '.index.json'));
    await expect(state.sharedTrust('https://elsewhere.example', record(KEY))).rejects.toMatchObject(refused);
  });

  it('keeps the marks and departures of a name removed (registry remove), each once, and gives them for their registry alone, never a floor', async () => {
    // Prepare: `main` followed a rotation away from KEY as stolen; `old` (kept before records named their
    // registry) left OTHER routinely, and is of the URL its configuration gave.
    const marked = { fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const };
    const routine = { fingerprint: OTHER, armoredKey: `key ${OTHER}`, retiredBy: 1 };
    const state = await stateWith({
      main: record(ROTATED, { highestGeneration: 12, chain: [marked], registry: 'https://plugins.example' }),
      again: record(ROTATED, { highestGeneration: 3, chain: [marked], registry: 'https://plugins.example' }),
      old: record(ROTATED, { highestGeneration: 7, chain: [routine] }),
    });

    // Act: each removed, as `registry remove` does.
    await state.removeTrust('main', { url: 'https://plugins.example' });
    await state.removeTrust('again', { url: 'https://plugins.example' });
    await state.removeTrust('old', { url: 'https://old.example' });

    // Assess: the folders are gone, the facts kept once each, by the registry they are of.
    expect(await state.trust('main')).toBeUndefined();
    const kept = await state.removedDepartures();
    expect(kept).toEqual([
      { ...marked, retiredTo: ROTATED, registry: 'https://plugins.example' },
      { ...routine, retiredTo: ROTATED, registry: 'https://old.example' },
    ]);
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));
    expect(shared.revoked).toEqual([{ ...marked, retiredTo: ROTATED }]);
    expect(shared.highestGeneration).toBeUndefined();
    expect(shared.retired).toBeUndefined();
    expect((await state.sharedTrust('https://old.example', record(OTHER))).departures).toEqual([
      { ...routine, retiredTo: ROTATED },
    ]);
    expect(await state.sharedTrust('https://other.example', record(KEY))).toEqual({ logs: [] });
  });

  it('refuses to remove a record that does not read at all (TRUST_STATE_INVALID naming it and --force), and forced keeps the marks that still read', async () => {
    // Prepare: `main` keeps KEY's stolen mark as a former departure (state.json, and its copy in former.json);
    // then its state.json is damaged (cut short), so nothing of it reads.
    const { state, chain } = await leftStolenLineage();
    const file = path.join(state.dirs.data, 'trust', 'main', 'state.json');
    await writeFile(file, '{"fingerprint": ');

    // Act and assess: removing it is refused, naming the file and how to force it; nothing is removed.
    await expect(state.removeTrust('main', { url: 'https://other.example' })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringMatching(
        new RegExp(
          `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not JSON.*registry remove main --force`,
        ),
      ),
    });
    expect(await readFile(file, 'utf8')).toBe('{"fingerprint": ');
    expect(existsSync(path.join(path.dirname(file), 'former.json'))).toBe(true);

    // Forced: the folder goes, but the mark former.json still reads is kept, read by the stolen key's registry.
    await state.removeTrust('main', { url: 'https://other.example', force: true });
    expect(existsSync(path.dirname(file))).toBe(false);
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));
    expect(shared.revoked).toEqual([{ ...chain[0], retiredTo: ROTATED, compromised: true }]);
  });

  it('refuses to remove a record whose pinned key is gone (TRUST_STATE_INVALID naming it and --force), where it was taken for no record and its marks forgotten', async () => {
    // Prepare: `main` followed a rotation away from KEY, stolen (its chain, in state.json alone); then its
    // registry.asc is deleted, so the record does not read as one.
    const { state } = await followedStolenRotation();
    const dir = path.join(state.dirs.data, 'trust', 'main');
    await unlink(path.join(dir, 'registry.asc'));

    // Act and assess: refused, naming the file and how to force it; nothing is removed.
    await expect(state.removeTrust('main', { url: 'https://plugins.example' })).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringMatching(/registry\.asc.*registry remove main --force/),
    });
    expect(existsSync(path.join(dir, 'state.json'))).toBe(true);
    // Forced, it goes.
    await state.removeTrust('main', { url: 'https://plugins.example', force: true });
    expect(existsSync(dir)).toBe(false);
  });

  it('gives the marks kept as of the URL a record kept before records named their registry was reached at (a mirror\u2019s) to a check reaching the registry there', async () => {
    // Prepare: `old` and `gone`, kept before records named their registry, each left KEY marked stolen;
    // nothing told the registry they were of but the URL configured, a mirror's (`Client`'s fallback).
    const marked = { fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const };
    const mirror = 'https://mirror.example';
    const state = await stateWith({
      old: record(ROTATED, { chain: [marked] }),
      gone: record(ROTATED, { chain: [marked] }),
    });

    // Act: `old` added again with an unrelated key of another registry, `gone` removed.
    await state.writeTrust('old', record(OTHER, { registry: 'https://other.example' }), {
      replacing: true,
      formerRegistry: mirror,
    });
    await state.removeTrust('gone', { url: mirror });

    // Assess: a check of the registry reached at that mirror again (its snapshots naming the registry's
    // own URL) refuses KEY, by either mark; a check reached elsewhere does not know them.
    const shared = await state.sharedTrust('https://plugins.example', record(KEY), `${mirror}/`);
    expect(shared.revoked).toEqual([{ ...marked, retiredTo: ROTATED }]);
    // The record `old` keeps its mark too, read alone.
    await rm(path.join(state.dirs.data, 'trust', REMOVED_DEPARTURES_FILE));
    expect((await state.sharedTrust('https://plugins.example', record(KEY), mirror)).revoked).toEqual([
      { ...marked, retiredTo: ROTATED },
    ]);
    expect(
      (await state.sharedTrust('https://plugins.example', record(KEY), 'https://plugins.example')).revoked,
    ).toBeUndefined();
  });

  it('keeps a mark a check learnt while the name was being removed (registry remove), in the window after its lock', async () => {
    // Prepare: `main` left KEY for ROTATED, not yet knowing the rotation marked KEY stolen.
    const unlearnt = { fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1 };
    const state = await stateWith({
      main: record(ROTATED, {
        highestGeneration: 12,
        chain: [unlearnt],
        registry: 'https://plugins.example',
      }),
    });
    // Act: `registry remove main`; the moment it lets go of the record's lock, a check of `main` running
    // beside it saves the mark it just learnt (the seam on rm runs it then, to completion).
    const lock = path.join(state.dirs.data, 'trust', 'main', 'state.json.lock');
    fsSeam.afterRm = async (removed) => {
      if (removed !== lock) return;
      fsSeam.afterRm = undefined;
      await state.writeTrust(
        'main',
        record(ROTATED, {
          highestGeneration: 12,
          chain: [{ ...unlearnt, compromised: true }],
          registry: 'https://plugins.example',
        }),
      );
    };
    try {
      await state.removeTrust('main', { url: 'https://plugins.example' });
    } finally {
      fsSeam.afterRm = undefined;
    }
    // Assess: the mark counts for the registry: a name pinning KEY refuses it. Deleted after the lock,
    // the folder took the mark with it, and KEY's snapshots were taken again.
    const shared = await state.sharedTrust('https://plugins.example', record(KEY));
    expect(shared.revoked).toEqual([{ ...unlearnt, compromised: true, retiredTo: ROTATED }]);
  });

  it('removes a name whose trust folder is a link by the link alone, leaving the folder it leads to', async () => {
    const state = await stateWith({});
    const kept = await stateWith({ main: record(ROTATED, { registry: 'https://plugins.example' }) });
    await mkdir(path.join(state.dirs.data, 'trust'), { recursive: true });
    await symlink(path.join(kept.dirs.data, 'trust', 'main'), path.join(state.dirs.data, 'trust', 'linked'));
    await state.removeTrust('linked');
    expect(await readdir(path.join(state.dirs.data, 'trust'))).not.toContain('linked');
    expect(await kept.trust('main')).toMatchObject({ fingerprint: ROTATED });
  });

  it('refuses damaged marks kept of names removed (TRUST_STATE_INVALID) rather than read them as none', async () => {
    const state = await stateWith({ main: record(ROTATED, { registry: 'https://plugins.example' }) });
    await writeFile(
      path.join(state.dirs.data, 'trust', REMOVED_DEPARTURES_FILE),
      '{"former_departures": [{}]',
    );
    await expect(state.sharedTrust('https://plugins.example', record(KEY))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining(REMOVED_DEPARTURES_FILE),
    });
  });

  it('refuses only the checks of the registry a damaged mark of a name removed names, and keeps it as found', async () => {
    // Prepare: `main` removed kept KEY's mark for https://plugins.example; an entry for another registry
    // is then damaged by hand.
    const marked = { fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const };
    const state = await stateWith({
      main: record(ROTATED, { chain: [marked], registry: 'https://plugins.example' }),
      other: record(OTHER, {
        chain: [{ fingerprint: ROTATED, armoredKey: `key ${ROTATED}`, retiredBy: 1 }],
        registry: 'https://elsewhere.example',
      }),
    });
    await state.removeTrust('main');
    const file = path.join(state.dirs.data, 'trust', REMOVED_DEPARTURES_FILE);
    const json = JSON.parse(await readFile(file, 'utf8'));
    const damaged = { fingerprint: OTHER, key: 7, retired_to: KEY, registry: 'https://third.example' };
    await writeFile(file, JSON.stringify({ former_departures: [...json.former_departures, damaged] }));

    // Act and assess: the registry's mark still counts; the third registry's checks refuse, naming it.
    expect((await state.sharedTrust('https://plugins.example', record(KEY))).revoked).toEqual([
      { ...marked, retiredTo: ROTATED },
    ]);
    await expect(state.sharedTrust('https://third.example', record(OTHER))).rejects.toMatchObject({
      name: 'ClientError',
      code: 'TRUST_STATE_INVALID',
      message: expect.stringContaining(`${file}#/former_departures/1/key: expected a string`),
    });
    // Another name removed adds its facts and keeps the damaged entry as found.
    await state.removeTrust('other');
    const after = JSON.parse(await readFile(file, 'utf8')).former_departures;
    expect(after).toContainEqual(damaged);
    expect(after).toContainEqual(
      expect.objectContaining({ fingerprint: ROTATED, registry: 'https://elsewhere.example' }),
    );
  });

  it('gives the marks of a name that left a key for another than the one this name went to, and not its floor', async () => {
    const marked = { fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1, compromised: true as const };
    const state = await stateWith({
      followed: record(ROTATED, {
        highestGeneration: 12,
        chain: [marked],
        registry: 'https://plugins.example',
      }),
    });
    expect(
      await state.sharedTrust('https://plugins.example', {
        fingerprint: OTHER,
        chain: [{ fingerprint: KEY, armoredKey: `key ${KEY}`, retiredBy: 1 }],
      }),
    ).toEqual({
      logs: [],
      revoked: [{ ...marked, retiredTo: ROTATED }],
      departures: [{ ...marked, retiredTo: ROTATED }],
    });
  });

  it('keeps what the links of a run saving last under a key rotated away from since learnt of their rotations', async () => {
    // Prepare: a record kept by an older client (its link to the first key knows not which rotation retired
    // it) has followed a second rotation in one run, while another, still under the second key, learnt that
    // the first rotation marked the first key as stolen.
    const unlearnt = { fingerprint: KEY, armoredKey: `key ${KEY}` };
    const marked = { ...unlearnt, retiredBy: 1, compromised: true as const };
    const second = { fingerprint: ROTATED, armoredKey: `key ${ROTATED}`, retiredBy: 2 };
    const followed = record(OTHER, { highestGeneration: 14, chain: [unlearnt, second], rotations: 2 });
    const state = await stateWith({ test: followed });
    // Act: the run under the second key saves last.
    await state.writeTrust('test', record(ROTATED, { highestGeneration: 12, chain: [marked], rotations: 1 }));
    // Assess: the key followed stands, and so does the mark (dropped, what the stolen key signed was
    // trusted until a check learnt it again).
    expect(await state.trust('test')).toEqual({ ...followed, chain: [marked, second] });
  });

  /** Writes a record as a client before `registry` was kept wrote one: no `registry` in its state.json. */
  async function writeOldRecord(state: ClientState, name: string, generation: number): Promise<void> {
    const folder = path.join(state.dirs.data, 'trust', name);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'registry.asc'), `key ${KEY}`);
    await writeFile(
      path.join(folder, 'state.json'),
      JSON.stringify({ fingerprint: KEY, highest_generation: generation }),
    );
  }

  it('tells a record kept before it named its registry by its name: a configured URL, or a set’s URL and key', async () => {
    const state = await stateWith({});
    await state.editConfig(async (config) => ({
      config: {
        ...config,
        registries: [
          {
            name: 'configured',
            url: 'https://plugins.example',
            priority: 1,
            key_fingerprint: KEY,
            mirrors: [],
          },
          { name: 'staging', url: 'https://staging.example', priority: 2, key_fingerprint: KEY, mirrors: [] },
        ],
      },
      result: undefined,
    }));
    await writeOldRecord(state, 'configured', 5);
    await writeOldRecord(state, setTrustName('https://plugins.example', KEY), 6);
    // Of another registry by its configured URL, by its set's URL, or of none (a manifest URL's pin).
    await writeOldRecord(state, 'staging', 40);
    await writeOldRecord(state, setTrustName('https://staging.example', KEY), 41);
    await writeOldRecord(state, 'url-plugins.example-0123456789abcdef', 42);
    expect(await state.trust('configured')).toEqual(record(KEY, { highestGeneration: 5 }));
    expect(await state.sharedTrust('https://plugins.example/', { fingerprint: KEY })).toEqual({
      highestGeneration: { generation: 6, name: setTrustName('https://plugins.example', KEY) },
      logs: [],
    });
    await writeOldRecord(state, 'configured', 7);
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toMatchObject({
      highestGeneration: { generation: 7, name: 'configured' },
    });
  });

  it('tells such a record configured at a mirror by the URL the snapshot was reached at', async () => {
    const state = await stateWith({});
    await state.editConfig(async (config) => ({
      config: {
        ...config,
        registries: [
          { name: 'mirror', url: 'https://mirror.example', priority: 1, key_fingerprint: KEY, mirrors: [] },
        ],
      },
      result: undefined,
    }));
    await writeOldRecord(state, 'mirror', 8);
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toEqual({ logs: [] });
    expect(
      await state.sharedTrust('https://plugins.example', { fingerprint: KEY }, 'HTTPS://Mirror.Example/'),
    ).toEqual({ highestGeneration: { generation: 8, name: 'mirror' }, logs: [] });
  });

  it('lets a damaged record bind no other name, while its own still refuses to load', async () => {
    const state = await stateWith({});
    const damaged = path.join(state.dirs.data, 'trust', 'damaged');
    await mkdir(damaged, { recursive: true });
    await writeFile(path.join(damaged, 'registry.asc'), `key ${KEY}`);
    await writeFile(path.join(damaged, 'state.json'), '{');
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toEqual({ logs: [] });
    await expect(state.trust('damaged')).rejects.toMatchObject({ code: 'TRUST_STATE_INVALID' });
  });

  it('finds nothing in a data folder that keeps no trust state yet', async () => {
    const state = await stateWith({});
    expect(await state.sharedTrust('https://plugins.example', { fingerprint: KEY })).toEqual({ logs: [] });
  });
});
