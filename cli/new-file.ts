/**
 * A file created whole or not at all, and only where no name is: how the commands write a key (`keygen`,
 * `init`, the demo publisher's of `npm start`). A key written over another, or through a link someone else
 * put at its name, is lost to its owner or read by others; a key written in place and cut short (a full disk,
 * a killed process) is a file every later reader takes for the key and fails on, or, read while it is
 * written, half a key.
 */
import { link, open, rm } from 'node:fs/promises';
import { removeStaleTemps, tempPathFor } from '../client/disk/atomic.ts';

/** Filesystems with no hard links (FAT, some network mounts) refuse link(2) with one of these. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Creates `file` holding `data` with `mode`. The bytes go to a temp file beside it (O_EXCL), flushed, then
 * linked to `file`: link(2) refuses any name already there (a file, a link, a dangling link: nothing is
 * opened through it), so of two writers one creates the file and the other is refused, and no reader ever
 * sees part of it. A killed writer's temp file is removed by the next call (`removeStaleTemps`: its PID is
 * in the name). Where the filesystem has no hard links, the file is created in place, O_EXCL, and removed if
 * its write fails.
 * @throws the error `exists(cause)` gives when something is at `file` (the caller's FILE_EXISTS).
 */
export async function createNewFile(
  file: string,
  data: string,
  options: {
    readonly mode: number;
    readonly exists: (cause: unknown) => Error;
    /** link(2), unless a test stands in for a filesystem that has none (its error's `syscall` is `link`). */
    readonly link?: (existing: string, name: string) => Promise<void>;
  },
): Promise<void> {
  await removeStaleTemps(file);
  const temp = tempPathFor(file);
  try {
    await writeNew(temp, data, options.mode);
    await (options.link ?? link)(temp, file);
  } catch (error) {
    const { code, syscall } = error as NodeJS.ErrnoException;
    if (code === 'EEXIST') throw options.exists(error);
    if (syscall !== 'link' || !NO_HARD_LINKS.has(code ?? '')) throw error;
    await writeNew(file, data, options.mode).catch((inPlace: unknown) => {
      throw (inPlace as NodeJS.ErrnoException).code === 'EEXIST' ? options.exists(inPlace) : inPlace;
    });
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * `data` into a file this call creates (O_EXCL, never opened through a link), flushed, so a link made to it
 * before a power cut is not left empty; removed if its write fails, so no part of it stays.
 */
async function writeNew(file: string, data: string, mode: number): Promise<void> {
  const handle = await open(file, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(file, { force: true });
    throw error;
  }
  await handle.close();
}
