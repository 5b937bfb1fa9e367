/** The client's lock files: taken in turn, a dead holder's broken, a live one waited for and then named. */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  lstat,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir, uptime } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AccountFiles,
  privateGroup,
  readIfExists,
  readRegularIfExists,
  withFileLock,
  withLockFile,
  writeFileAtomic,
} from '../../../client/disk/atomic.ts';
import { ClientError } from '../../../client/errors.ts';
import { deadPid } from '../../support/dead-pid.ts';
import { makeFoldersUnder } from '../../support/folders-under.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-atomic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const busy = (holder: string) => Object.assign(new Error(`busy: ${holder}`), { code: 'BUSY' });

/** How many of `holders`, all wanting `lock` at once and each holding it `ms`, ever held it together. */
async function mostAtOnce(lock: string, holders: number, ms: number): Promise<number> {
  let inside = 0;
  let most = 0;
  const hold = () =>
    withLockFile(
      lock,
      async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, ms));
        inside -= 1;
      },
      { busy },
    );
  await Promise.all(Array.from({ length: holders }, hold));
  return most;
}

describe('when two holders want one lock', () => {
  it('runs them one after the other, never together', async () => {
    const lock = path.join(dir, 'turns.lock');
    expect(await mostAtOnce(lock, 3, 20)).toBe(1);
    await expect(stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('takes the lock in its folder made again when the folder was removed while it waited', async () => {
    // Prepare: a holder of `<folder>/state.json.lock` removes the whole folder (as `registry remove`
    // empties a trust folder under the record's lock, then removes it once let go) while a waiter waits.
    const folder = path.join(dir, 'vanishing');
    const lock = path.join(folder, 'state.json.lock');
    const waitFor = () =>
      withLockFile(
        lock,
        async () => {
          await writeFile(path.join(folder, 'state.json'), 'written');
          return 'ran';
        },
        { busy, timeoutMs: 10_000 },
      );
    // The waiter starts once the holder holds the lock: started on a timer, on a loaded machine it could
    // take the lock first, and the holder then removed the folder it had written in.
    let waiter: Promise<string> | undefined;
    const holder = withLockFile(
      lock,
      async () => {
        waiter = waitFor();
        // Long enough for the waiter to have found the lock held, and to wait.
        await new Promise((resolve) => setTimeout(resolve, 60));
        await rm(folder, { recursive: true, force: true });
      },
      { busy },
    );

    // Act and assess: the waiter takes the lock (its folder made again), where it failed with ENOENT.
    await holder;
    await expect(waiter).resolves.toBe('ran');
    expect(await readFile(path.join(folder, 'state.json'), 'utf8')).toBe('written');
    await expect(stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('breaks a lock whose process is gone, and one left empty long ago', async () => {
    const dead = path.join(dir, 'dead.lock');
    await writeFile(dead, String(await deadPid()));
    await expect(withLockFile(dead, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
    const empty = path.join(dir, 'empty.lock');
    await writeFile(empty, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(empty, old, old);
    await expect(withLockFile(empty, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
  });

  it('breaks a lock naming no process (PID 0 or below), which no holder writes', async () => {
    // kill(0) and kill(-1) signal this process's group and every process it may: both answer as if alive,
    // and such a lock was waited for until the deadline, then named as held.
    for (const holder of ['0', '-1']) {
      const lock = path.join(dir, `no-process${holder}.lock`);
      await writeFile(lock, `${holder}\n0123456789abcdef`);
      await expect(withLockFile(lock, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
    }
  });

  it('lets one waiter break a stale lock, never two take it at once', async () => {
    // Waiters that all judge one dead holder's lock stale: one breaks it and takes the lock; none of the
    // others may remove the lock taken since (two then ran together, in 3 of 15 runs of 6 processes).
    const lock = path.join(dir, 'broken.lock');
    const dead = String(await deadPid());
    for (let round = 0; round < 20; round++) {
      await writeFile(lock, dead);
      expect(await mostAtOnce(lock, 8, 2), `round ${round}`).toBe(1);
      await expect(stat(lock)).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await readdir(dir)).filter((name) => name.startsWith('broken.lock.'))).toEqual([]);
    }
  });

  it('breaks a stale lock beside a breaker left by a waiter killed while it broke one', async () => {
    const lock = path.join(dir, 'left-breaking.lock');
    await writeFile(lock, String(await deadPid()));
    await writeFile(`${lock}.breaking`, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${lock}.breaking`, old, old);
    await expect(withLockFile(lock, async () => 'ran', { busy, timeoutMs: 2_000 })).resolves.toBe('ran');
    await expect(stat(`${lock}.breaking`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('waits for a stale lock another waiter is breaking, and takes it once that one has broken it', async () => {
    const lock = path.join(dir, 'being-broken.lock');
    await writeFile(lock, String(await deadPid()));
    await writeFile(`${lock}.breaking`, '');
    const waited = withLockFile(lock, async () => 'ran', { busy, timeoutMs: 30_000 });
    // The other waiter breaks it a moment later, as breakStale does: the lock, then its breaker.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await rm(lock);
    await rm(`${lock}.breaking`);
    await expect(waited).resolves.toBe('ran');
  });

  it('waits for a stale lock another waiter is breaking up to its deadline, as for a held one, then names its holder', async () => {
    const lock = path.join(dir, 'being-broken-long.lock');
    const dead = String(await deadPid());
    await writeFile(lock, dead);
    // Another waiter's breaker, just taken and never let go within the deadline: this one gives up at its
    // deadline, leaving the lock and the breaker as they were. Before, it waited on until the breaker was
    // BREAKING_STALE_MS old (10 s, past any deadline), then broke it and took the lock.
    await writeFile(`${lock}.breaking`, '');
    const waited = withLockFile(lock, async () => 'ran', { busy, timeoutMs: 200 });
    await expect(waited).rejects.toMatchObject({ code: 'BUSY', message: `busy: ${dead}` });
    expect(await readFile(lock, 'utf8')).toBe(dead);
    expect(existsSync(`${lock}.breaking`)).toBe(true);
    await rm(`${lock}.breaking`);
  });

  it('waits for a live holder, then names it', async () => {
    const live = path.join(dir, 'live.lock');
    await writeFile(live, String(process.pid));
    await expect(withLockFile(live, async () => 'ran', { busy, timeoutMs: 100 })).rejects.toMatchObject({
      code: 'BUSY',
      message: `busy: ${process.pid}`,
    });
    expect(await readFile(live, 'utf8')).toBe(String(process.pid));
  });
});

/** This machine's boot id and this process's start (/proc), as a lock this process writes names them. */
const BOOT_ID = '/proc/sys/kernel/random/boot_id';
const ownStart = async () => {
  const stat = await readFile('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
};

describe('when a lock names PID 1 (init, always running), left by no process running here', () => {
  it.skipIf(!existsSync(BOOT_ID))(
    'breaks one written in another boot of this machine, or by another process of that PID, and waits for its own',
    async () => {
      const boot = (await readFile(BOOT_ID, 'utf8')).trim();
      const otherBoot = path.join(dir, 'other-boot.lock');
      await writeFile(
        otherBoot,
        `1\n0123456789abcdef\nhost ${hostname()}\nboot 00000000-0000-0000-0000-000000000000\nstart 1`,
      );
      await expect(withLockFile(otherBoot, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
      const reused = path.join(dir, 'reused-pid.lock');
      await writeFile(reused, `1\n0123456789abcdef\nhost ${hostname()}\nboot ${boot}\nstart 999999999999`);
      await expect(withLockFile(reused, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
      // A holder that is who its lock says (this process, this boot, its start) is waited for.
      const live = path.join(dir, 'live-full.lock');
      await writeFile(
        live,
        `${process.pid}\n0123456789abcdef\nhost ${hostname()}\nboot ${boot}\nstart ${await ownStart()}`,
      );
      await expect(withLockFile(live, async () => 'ran', { busy, timeoutMs: 100 })).rejects.toMatchObject({
        code: 'BUSY',
        message: `busy: ${process.pid}`,
      });
    },
  );

  it('writes who holds it beyond the PID, which an older client still reads first', async () => {
    const lock = path.join(dir, 'written.lock');
    const content = await withLockFile(lock, () => readFile(lock, 'utf8'), { busy });
    const [pid, token, ...rest] = content.split('\n');
    expect(Number.parseInt(content, 10)).toBe(process.pid);
    expect([pid, token?.length]).toEqual([String(process.pid), 16]);
    expect(rest[0]).toBe(`host ${hostname()}`);
    if (existsSync(BOOT_ID))
      expect(rest.slice(1)).toEqual([
        `boot ${(await readFile(BOOT_ID, 'utf8')).trim()}`,
        `start ${await ownStart()}`,
      ]);
  });

  it('breaks a lock of an older client (its PID alone) last written before this machine booted', async () => {
    const lock = path.join(dir, 'before-boot.lock');
    await writeFile(lock, '1\n0123456789abcdef');
    const old = new Date(Date.now() - uptime() * 1000 - 3_600_000);
    await utimes(lock, old, old);
    await expect(withLockFile(lock, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
  });

  it.skipIf(!existsSync('/proc/self/stat') || uptime() < 300)(
    'breaks a lock of an older client (its PID alone) written since boot, before the process of that PID started',
    async () => {
      // Prepare: a lock an older client killed 3 minutes ago left, its PID since taken by a process started
      // now (a sleeping one): that process never wrote it. It waited 30 s, then failed INSTALL_BUSY.
      const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
      await new Promise((resolve) => sleeper.once('spawn', resolve));
      try {
        const lock = path.join(dir, 'pid-reused.lock');
        await writeFile(lock, `${sleeper.pid}\n0123456789abcdef`);
        const written = new Date(Date.now() - 3 * 60_000);
        await utimes(lock, written, written);

        // Act, Assess
        await expect(withLockFile(lock, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
      } finally {
        sleeper.kill('SIGKILL');
      }
    },
  );

  it('names the lock file to delete where it cannot tell: an older client lock written since, or another machine lock', async () => {
    const target = path.join(dir, 'pid-one.json');
    await writeFile(`${target}.lock`, '1\n0123456789abcdef');
    const refused = withFileLock(target, async () => 'ran', { timeoutMs: 100 });
    await expect(refused).rejects.toBeInstanceOf(ClientError);
    await expect(refused).rejects.toMatchObject({
      code: 'INSTALL_BUSY',
      message: expect.stringContaining(`held by process 1; another plugindex is installing here. If none is`),
    });
    await expect(refused).rejects.toMatchObject({
      message: expect.stringContaining(`delete ${target}.lock and run again`),
    });
    const elsewhere = path.join(dir, 'elsewhere.json');
    await writeFile(`${elsewhere}.lock`, '1\n0123456789abcdef\nhost elsewhere.example\nboot 0\nstart 1');
    await expect(withFileLock(elsewhere, async () => 'ran', { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'INSTALL_BUSY',
      message: expect.stringContaining(`held by process 1 on elsewhere.example;`),
    });
  });
});

describe('when a lock names another machine', () => {
  it('breaks one its holder has not touched for a minute (a workspace a container with a new host name took up)', async () => {
    const lock = path.join(dir, 'left-by-another-host.lock');
    await writeFile(lock, '1\n0123456789abcdef\nhost elsewhere.example\nboot 0\nstart 1');
    const old = new Date(Date.now() - 2 * 60_000);
    await utimes(lock, old, old);
    await expect(withLockFile(lock, async () => 'ran', { busy, timeoutMs: 500 })).resolves.toBe('ran');
  });

  it('is touched by its holder while held, so a waiter elsewhere knows it is alive', async () => {
    const lock = path.join(dir, 'touched.lock');
    const old = new Date(Date.now() - 2 * 60_000);
    const mtime = await withLockFile(
      lock,
      async () => {
        await utimes(lock, old, old);
        // Until the heartbeat (every 20 ms) has touched it, bounded: a fixed 200 ms wait was lost on a loaded
        // machine, whose stat could run before the touch the late heartbeat had only just begun.
        for (let tries = 0; tries < 1000; tries += 1) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          const { mtimeMs } = await stat(lock);
          if (mtimeMs > Date.now() - 10_000) return mtimeMs;
        }
        return (await stat(lock)).mtimeMs;
      },
      { busy, heartbeatMs: 20 },
    );
    expect(mtime).toBeGreaterThan(Date.now() - 10_000);
  });
});

describe.skipIf(process.platform === 'win32')('when a held lock is swapped for a symbolic link', () => {
  it('touches the link itself, never the times of the file it leads to', async () => {
    const lock = path.join(dir, 'swapped.lock');
    const victim = path.join(dir, 'swapped-victim');
    await writeFile(victim, 'another file');
    const old = new Date(Date.now() - 2 * 60_000);
    await utimes(victim, old, old);
    const untouched = (await stat(victim)).mtimeMs;
    const touched = await withLockFile(
      lock,
      async () => {
        // Someone who may write the lock's folder swaps the lock for a link to another file.
        await rm(lock);
        await symlink(victim, lock);
        const since = (await lstat(lock)).mtimeMs;
        // Until the heartbeat has touched one of the two (bounded: it runs every 20 ms).
        for (let tries = 0; tries < 250; tries += 1) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          const link = (await lstat(lock)).mtimeMs;
          const target = (await stat(victim)).mtimeMs;
          if (link !== since || target !== untouched) return { link: link !== since, target };
        }
        return { link: false, target: (await stat(victim)).mtimeMs };
      },
      { busy, heartbeatMs: 20 },
    );
    expect(touched).toEqual({ link: true, target: untouched });
    expect(await readFile(victim, 'utf8')).toBe('another file');
  });
});

describe('when a file is written', () => {
  it('replaces it whole, leaving no temporary file beside it', async () => {
    const file = path.join(dir, 'nested', 'file.json');
    await writeFileAtomic(file, 'one');
    await writeFileAtomic(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('two');
    expect(await readdir(path.dirname(file))).toEqual(['file.json']);
  });
});

describe.skipIf(process.platform === 'win32')('when a file others may write is read under a cap', () => {
  it('reads a regular file up to the cap, and nothing of a larger one, a FIFO or a device', async () => {
    const at = (name: string) => path.join(dir, `capped-${name}`);
    await writeFile(at('small'), 'abc');
    await writeFile(at('large'), 'abcd');
    execFileSync('mkfifo', [at('fifo')]);
    await symlink('/dev/zero', at('zero'));

    expect(await readRegularIfExists(at('small'), 3)).toEqual(Buffer.from('abc'));
    expect(await readRegularIfExists(at('missing'), 3)).toBeUndefined();
    expect(await readRegularIfExists(at('large'), 3)).toBeUndefined();
    expect(await readRegularIfExists(at('fifo'), 3)).toBeUndefined();
    expect(await readRegularIfExists(at('zero'), 3)).toBeUndefined();
  });
});

describe.skipIf(process.platform === 'win32')(
  'when a FIFO stands where the client reads a file of its own',
  () => {
    it('refuses it at once (FILE_NOT_REGULAR) rather than wait for a writer: a lock file, installed.json', async () => {
      // A checkout may hold anything at plugins/installed.json.lock or plugins/installed.json.
      const target = path.join(dir, 'fifo-target.json');
      execFileSync('mkfifo', [`${target}.lock`]);
      execFileSync('mkfifo', [path.join(dir, 'fifo-read.json')]);

      await expect(withFileLock(target, async () => 'ran')).rejects.toMatchObject({
        name: 'ClientError',
        code: 'FILE_NOT_REGULAR',
      });
      await expect(readIfExists(path.join(dir, 'fifo-read.json'))).rejects.toMatchObject({
        code: 'FILE_NOT_REGULAR',
      });
      expect(await readIfExists(path.join(dir, 'no-such-file.json'))).toBeUndefined();
    }, 10_000);
  },
);

describe('when a folder to make is on a filesystem that makes no folders (/proc)', () => {
  it.skipIf(process.platform !== 'linux').each(['write', 'lock', 'blob', 'install'] as const)(
    'fails fast (%s) with FOLDER_NOT_MADE naming the folder, where it hung in Node.js recursive mkdir',
    async (kind) => {
      // Node's mkdir(recursive) makes /proc (EEXIST), tries /proc/x again (ENOENT), and loops for ever.
      const dir = `/proc/plugindex-client-${process.pid}/${kind}`;
      const outcome = await makeFoldersUnder(kind, dir);
      expect(outcome, 'killed after 20 s: it hung').not.toBe('hung');
      expect(outcome).toMatchObject({ name: 'ClientError', code: 'FOLDER_NOT_MADE' });
      expect(outcome).toHaveProperty(
        'message',
        expect.stringContaining(`cannot create the folder /proc/plugindex-client-${process.pid}:`),
      );
    },
  );
});

describe('when a folder is writable by the user\u2019s primary group', () => {
  const passwd =
    'root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:100::/home/bob:/bin/bash\n';

  it('takes it for the user\u2019s own where the group has no other member (a user private group)', () => {
    expect(privateGroup(1000, 1000, passwd, 'root:x:0:\nalice:x:1000:\n')).toBe(true);
    expect(privateGroup(1000, 1000, passwd, 'alice:x:1000:alice\n')).toBe(true);
  });

  it('refuses it where another user is in it, by primary group or by its member list', () => {
    // openSUSE: every user's primary group is users (100).
    expect(
      privateGroup(100, 1002, `${passwd}carol:x:1002:100::/home/carol:/bin/bash\n`, 'users:x:100:\n'),
    ).toBe(false);
    // macOS: every user's primary group is staff (20), which /etc/group lists with root in it.
    expect(privateGroup(20, 501, undefined, 'staff:*:20:root\n')).toBe(false);
    expect(privateGroup(1000, 1000, passwd, 'alice:x:1000:alice,bob\n')).toBe(false);
  });

  it('takes a group no account file names for the user\u2019s own only where its id is the user\u2019s', () => {
    expect(privateGroup(5000, 5000, passwd, 'root:x:0:\n')).toBe(true);
    expect(privateGroup(5001, 5000, passwd, 'root:x:0:\n')).toBe(false);
    expect(privateGroup(5000, 5000, undefined, undefined)).toBe(true);
  });

  describe('and the account files are read once and kept while unchanged (AccountFiles)', () => {
    /** Account files of `alice`, whose group 1000 lists no member, under a fresh folder; mtime set to `MTIME`. */
    const MTIME = 1_700_000_000;
    const alone = 'alice:x:1000:   \n';
    // The same size: a key of size and mtime alone (set back below) takes it for the file read before.
    const withBob = 'alice:x:1000:bob\n';
    async function accountFiles(): Promise<{ passwd: string; group: string }> {
      const folder = await mkdtemp(path.join(dir, 'accounts-'));
      const files = { passwd: path.join(folder, 'passwd'), group: path.join(folder, 'group') };
      await writeFile(files.passwd, passwd);
      await writeFile(files.group, alone);
      await utimes(files.group, MTIME, MTIME);
      return files;
    }
    /** Rewrites `file` in place (the same inode) as `text`, its mtime set back, once its ctime has moved on. */
    async function rewriteInPlace(file: string, text: string): Promise<void> {
      const before = (await stat(file, { bigint: true })).ctimeNs;
      // The kernel stamps ctime from a clock of coarse ticks: rewritten until the change is a tick later.
      do {
        await new Promise((next) => setTimeout(next, 5));
        await writeFile(file, text);
        await utimes(file, MTIME, MTIME);
      } while ((await stat(file, { bigint: true })).ctimeNs === before);
    }

    it('sees /etc/group changed in place, same size and mtime set back, after its answer was kept', async () => {
      const files = await accountFiles();
      // An hour on: the files count as settled, so the answer read is kept.
      const accounts = new AccountFiles({ ...files, now: () => Date.now() + 3_600_000 });
      expect(accounts.privateGroup(1000, 1000)).toBe(true);
      expect(accounts.privateGroup(1000, 1000)).toBe(true);
      const { ino, size, mtimeMs } = await stat(files.group);
      await rewriteInPlace(files.group, withBob);
      expect(await stat(files.group)).toMatchObject({ ino, size, mtimeMs });

      expect(accounts.privateGroup(1000, 1000)).toBe(false);
    });

    it('sees /etc/group replaced by rename (as useradd and vipw write it)', async () => {
      const files = await accountFiles();
      const accounts = new AccountFiles({ ...files, now: () => Date.now() + 3_600_000 });
      expect(accounts.privateGroup(1000, 1000)).toBe(true);
      await writeFile(`${files.group}+`, withBob);
      await utimes(`${files.group}+`, MTIME, MTIME);
      await rename(`${files.group}+`, files.group);

      expect(accounts.privateGroup(1000, 1000)).toBe(false);
    });

    it('reads a file missing, then made, as made', async () => {
      const files = await accountFiles();
      await rm(files.group);
      const accounts = new AccountFiles({ ...files, now: () => Date.now() + 3_600_000 });
      // No /etc/group: a group of the user's own id is taken for a private one.
      expect(accounts.privateGroup(1000, 1000)).toBe(true);
      await writeFile(files.group, withBob);

      expect(accounts.privateGroup(1000, 1000)).toBe(false);
    });
  });
});

describe('when a folder to make, or one above it, is a file', () => {
  it.each([
    ['the folder itself', 'a-file'],
    ['a folder above it', 'a-file/below'],
  ])(
    'names the file (%s) with FOLDER_NOT_MADE, where Node said EEXIST or ENOTDIR and gave a stack trace',
    async (_what, under) => {
      // A `--lockfile FILE/x.lock` or `--dir FILE/plugins`: withLockFile and writeFileAtomic make the folder.
      const root = await mkdtemp(path.join(dir, 'file-in-the-way-'));
      await writeFile(path.join(root, 'a-file'), 'not a folder');
      for (const attempt of [
        () => withFileLock(path.join(root, under, 'x.json'), async () => 'ran'),
        () => writeFileAtomic(path.join(root, under, 'x.json'), '{}'),
      ]) {
        const outcome = await attempt().then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(outcome).toBeInstanceOf(ClientError);
        expect(outcome).toMatchObject({ code: 'FOLDER_NOT_MADE' });
        expect((outcome as ClientError).message).toContain(
          `cannot create the folder ${path.join(root, 'a-file')}: a file is there, not a folder`,
        );
      }
      expect(await readFile(path.join(root, 'a-file'), 'utf8')).toBe('not a folder');
    },
  );
});
