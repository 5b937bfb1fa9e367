/**
 * A strict reader of tar archives held in memory: the entries exactly as GNU tar and Python's tarfile read
 * them, or a refusal. A bundle is signed by its manifest, not as a whole, so every tool that opens it (the
 * registry, a publisher's `tar -tzf`, an auditor's script) must see the same files; where tar readers
 * disagree, the archive is refused rather than read one way.
 *
 * Why not tar-stream's extract (used before, and still used to write bundles): it reads on past a zero block
 * (GNU tar and tarfile stop there), applies a pax global header only to entries with a local one (tarfile
 * applies it to all), takes the last of two GNU long names (tarfile the first), reads a folder's data as
 * further headers, and accepts a ustar prefix without the "00" version. Each of those lets one upload hold
 * two different sets of files. This reader takes the common ground and refuses the rest:
 *
 * - formats: POSIX ustar (`ustar\0` `00`, prefix applied) and GNU (`ustar  \0`, its prefix area empty);
 *   no v7 headers;
 * - every numeric field strictly octal (spaces around, NUL after, none before) or positive base-256; the
 *   checksum octal and unsigned;
 * - the first zero block ends the archive, and only zero bytes may follow it;
 * - pax extended headers (`x`) with well-formed records of known keywords (path, size, times, ids, names,
 *   comment, and the SCHILY/LIBARCHIVE extended attributes that macOS tar writes), each once, sizes, times
 *   and ids decimal (GNU tar fails on a time or id it cannot read, tarfile takes it as 0); no global pax
 *   headers (`g`), no sparse files, no `hdrcharset`;
 * - extended headers (`x`, `L`) padded with zeros (readers read on past `size` in their last block, or not);
 * - GNU long names (`L`) applied to the next entry; no long link names (`K`: links are refused anyway); one
 *   extended header per entry (an `x` and an `L`, or two of either, are refused);
 * - no data in a folder or link entry, and no regular file whose name ends in `/`.
 *
 * Names are decoded as UTF-8 with U+FFFD for what does not decode; the bundle reader refuses those.
 */

import { Buffer } from 'node:buffer';

export type TarEntryType =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'link'
  | 'character-device'
  | 'block-device'
  | 'fifo'
  | 'unknown';

export interface TarEntry {
  readonly name: string;
  readonly type: TarEntryType;
  /** The raw typeflag, for messages (`0`, `5`, `S`...). */
  readonly typeflag: string;
  readonly size: number;
  readonly linkname: string;
  /** The entry's data: a view into the archive, not a copy. */
  readonly body: Uint8Array;
}

/** Why an archive cannot be read as every tar reader reads it. */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
  /** `ambiguous`: well-formed to some reader, read otherwise by another; `corrupt`: damaged. */
  readonly kind: 'ambiguous' | 'corrupt';

  constructor(kind: 'ambiguous' | 'corrupt', message: string) {
    super(message);
    this.kind = kind;
  }
}

const BLOCK = 512;
/** Largest pax or long-name header read: far more than any real path needs. */
const MAX_EXTENDED_HEADER = 64 * 1024;
const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};
/** Pax keywords every reader applies alike (or all ignore). */
const PAX_KEYWORDS = new Set([
  'path',
  'linkpath',
  'size',
  'mtime',
  'atime',
  'ctime',
  'uid',
  'gid',
  'uname',
  'gname',
  'comment',
]);
const PAX_PREFIXES = ['SCHILY.xattr.', 'LIBARCHIVE.xattr.', 'LIBARCHIVE.creationtime'];

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

function ambiguous(message: string): never {
  throw new TarFormatError('ambiguous', message);
}

function corrupt(message: string): never {
  throw new TarFormatError('corrupt', message);
}

/** The bytes of a field up to its first NUL. */
function field(block: Uint8Array, offset: number, length: number): Uint8Array {
  const bytes = block.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return end === -1 ? bytes : bytes.subarray(0, end);
}

/**
 * A numeric field, read as strictly as every reader agrees: positive base-256 (a 0x80 first byte), or octal
 * digits with spaces around them and a NUL after. tarfile would also take a sign, underscores or tabs, and
 * tar-stream stops at a space where tarfile fails: those are refused.
 */
function number(block: Uint8Array, offset: number, length: number, what: string): number {
  const raw = block.subarray(offset, offset + length);
  if (raw[0] === 0x80) {
    let value = 0;
    for (let i = 1; i < raw.length; i++) value = value * 256 + (raw[i] as number);
    if (!Number.isSafeInteger(value)) corrupt(`the ${what} field is out of range`);
    return value;
  }
  if (raw[0] === 0xff) corrupt(`the ${what} field is negative`);
  // GNU tar skips one leading NUL (left by old tars whose previous field overflowed) and reads the digits
  // after it; tarfile stops at it and reads 0. A size written so is two different archives.
  if (raw[0] === 0 && !isZero(raw))
    ambiguous(`the ${what} field starts with a NUL (GNU tar reads the digits after it, tarfile reads 0)`);
  const text = latin1.decode(field(block, offset, length));
  if (!/^ *[0-7]* *$/.test(text)) ambiguous(`the ${what} field is not a plain octal number`);
  const digits = text.trim();
  return digits === '' ? 0 : Number.parseInt(digits, 8);
}

/** Zeros to compare with: a tar's end is padded to 10 KiB (20 blocks) of them by default. */
const ZEROS = Buffer.alloc(20 * BLOCK);

/**
 * Whether every byte is zero, compared a record at a time (memcmp): byte by byte, the padding at the end of
 * a small bundle (about 7 KB) took 15 µs, and an import of 10,000 bundles checks each one.
 */
function isZero(bytes: Uint8Array): boolean {
  for (let at = 0; at < bytes.length; at += ZEROS.length) {
    const part = bytes.subarray(at, at + ZEROS.length);
    if (Buffer.compare(part, ZEROS.subarray(0, part.length)) !== 0) return false;
  }
  return true;
}

interface Extended {
  readonly kind: 'pax' | 'longname';
  readonly path?: string;
  readonly linkpath?: string;
  readonly size?: number;
}

/** The records of a pax extended header (`<length> <keyword>=<value>\n`), strictly. */
function parsePax(data: Uint8Array): Extended {
  const seen = new Set<string>();
  let path: string | undefined;
  let linkpath: string | undefined;
  let size: number | undefined;
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const lengthText = space === -1 ? '' : latin1.decode(data.subarray(at, space));
    if (!/^[1-9][0-9]{0,6}$/.test(lengthText)) ambiguous('a pax record without a valid length');
    const end = at + Number(lengthText);
    if (end > data.length || data[end - 1] !== 0x0a) ambiguous('a pax record whose length does not match it');
    const record = data.subarray(space + 1, end - 1);
    const equals = record.indexOf(0x3d);
    if (equals <= 0) ambiguous('a pax record without a keyword');
    const keyword = latin1.decode(record.subarray(0, equals));
    const valueBytes = record.subarray(equals + 1);
    if (seen.has(keyword)) ambiguous(`the pax keyword ${JSON.stringify(keyword)} appears twice`);
    seen.add(keyword);
    if (!PAX_KEYWORDS.has(keyword) && !PAX_PREFIXES.some((p) => keyword.startsWith(p)))
      ambiguous(`the pax keyword ${JSON.stringify(keyword)} is not one every tar reader applies alike`);
    const value = utf8.decode(valueBytes);
    if (keyword === 'path') {
      if (value === '') ambiguous('an empty pax path');
      path = value;
    } else if (keyword === 'linkpath') {
      linkpath = value;
    } else if (keyword === 'size') {
      if (!/^(0|[1-9][0-9]{0,15})$/.test(value)) ambiguous('a pax size that is not a plain decimal number');
      size = Number(value);
    } else if (keyword === 'mtime' || keyword === 'atime' || keyword === 'ctime') {
      // GNU tar fails on a time that does not start with digits or is out of its range (exit status 2, the
      // files still listed); tarfile reads it as 0. At most 18 digits: always within GNU tar's range.
      if (!/^-?[0-9]{1,18}(\.[0-9]+)?$/.test(value))
        ambiguous(`a pax ${keyword} that is not a decimal number`);
    } else if (keyword === 'uid' || keyword === 'gid') {
      // GNU tar fails on an id that is not all digits or above 2^32 - 1; tarfile reads it as 0.
      if (!/^[0-9]{1,10}$/.test(value) || Number(value) > 0xffff_ffff)
        ambiguous(`a pax ${keyword} that is not a decimal number below 2^32`);
    }
    at = end;
  }
  return {
    kind: 'pax',
    ...(path !== undefined ? { path } : {}),
    ...(linkpath !== undefined ? { linkpath } : {}),
    ...(size !== undefined ? { size } : {}),
  };
}

/**
 * Reads every entry of an uncompressed tar archive, at most `maxEntries` of them (folders included; further
 * entries are not parsed).
 * @throws TarFormatError when readers would disagree on the archive, or it is damaged.
 * @example const { entries, truncated } = readTar(inflated, 256);
 */
export function readTar(tar: Uint8Array, maxEntries: number): { entries: TarEntry[]; truncated: boolean } {
  const entries: TarEntry[] = [];
  let extended: Extended | undefined;
  let at = 0;
  for (;;) {
    if (at + BLOCK > tar.length) {
      if (isZero(tar.subarray(at))) break; // no end-of-archive blocks: every reader stops here too
      corrupt('the archive ends in the middle of a header');
    }
    const header = tar.subarray(at, at + BLOCK);
    if (isZero(header)) {
      // GNU tar and tarfile stop at the first zero block; a reader that skips it would find what follows.
      if (!isZero(tar.subarray(at))) ambiguous('data follows the end-of-archive marker');
      break;
    }
    let sum = 8 * 0x20;
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += header[i] as number;
    // GNU tar reads a checksum in octal only: it skips a header whose checksum is base-256 and reads the
    // entry's data as the next header, where tarfile (and `number`) take the header.
    if (header[148] === 0x80 || header[148] === 0xff)
      ambiguous('a header checksum in base-256 (GNU tar skips the header, tarfile reads it)');
    let stored: number;
    try {
      stored = number(header, 148, 8, 'checksum');
    } catch {
      corrupt('a header has no valid checksum (not a tar archive?)');
    }
    if (stored !== sum) corrupt('a header checksum does not match');
    const magic = latin1.decode(header.subarray(257, 265));
    const posix = magic === 'ustar\u000000';
    if (!posix && magic !== 'ustar  \u0000')
      ambiguous('a header in a format other than ustar, pax or GNU tar (v7, or an unknown magic)');
    const typeflag = String.fromCharCode(header[156] as number);
    let size = number(header, 124, 12, 'size');
    for (const [offset, length, what] of [
      [100, 8, 'mode'],
      [108, 8, 'uid'],
      [116, 8, 'gid'],
      [136, 12, 'mtime'],
      [329, 8, 'devmajor'],
      [337, 8, 'devminor'],
    ] as const)
      number(header, offset, length, what);
    const dataAt = at + BLOCK;

    if (typeflag === 'x' || typeflag === 'L') {
      if (extended) ambiguous('two extended headers for one entry (readers keep different ones)');
      if (size > MAX_EXTENDED_HEADER) corrupt('an extended header is too large');
      if (dataAt + size > tar.length) corrupt('the archive ends in the middle of an extended header');
      const data = tar.subarray(dataAt, dataAt + size);
      // Readers read past `size` to the end of the header's last block, or not: tarfile takes pax records
      // up to there (GNU tar stops at `size`), both take a long name up to a NUL there (this reader took
      // `size` bytes of it). The rest of the block must say nothing.
      if (!isZero(tar.subarray(dataAt + size, dataAt + Math.ceil(size / BLOCK) * BLOCK)))
        ambiguous('an extended header with more after its stated size (some readers read it, some not)');
      extended =
        typeflag === 'x'
          ? parsePax(data)
          : { kind: 'longname', path: utf8.decode(field(data, 0, data.length)) };
      at = dataAt + Math.ceil(size / BLOCK) * BLOCK;
      continue;
    }
    if (typeflag === 'g') ambiguous('a pax global header (readers apply it to different entries)');
    if (typeflag === 'S') ambiguous('a GNU sparse file (readers fill its holes differently, or not at all)');
    if (typeflag === 'K') ambiguous('a GNU long link name (links are not allowed)');

    let name = utf8.decode(field(header, 0, 100));
    const prefix = field(header, 345, 155);
    if (posix) {
      if (prefix.length > 0) name = `${utf8.decode(prefix)}/${name}`;
    } else if (prefix.length > 0) {
      // A GNU header keeps times there (`--incremental`), and GNU tar reads no prefix; tarfile reads the
      // field as a ustar prefix whatever the magic, and names the file within a folder of that name.
      ambiguous('a GNU header with text where ustar keeps a prefix (tarfile reads it as one, GNU tar not)');
    }
    let linkname = utf8.decode(field(header, 157, 100));
    if (extended?.path !== undefined) name = extended.path;
    if (extended?.linkpath !== undefined) linkname = extended.linkpath;
    if (extended?.size !== undefined) size = extended.size;
    extended = undefined;

    const type = TYPES[typeflag] ?? 'unknown';
    if (type === 'file' && name.endsWith('/'))
      ambiguous(
        `a file named ${JSON.stringify(name)} (readers take a name ending in "/" for a folder, or not)`,
      );
    if (type !== 'file' && type !== 'unknown' && size !== 0)
      ambiguous(`a ${type} entry with data (readers skip it, or read it as headers)`);
    if (dataAt + size > tar.length) corrupt('Unexpected end of data');
    if (entries.length >= maxEntries) return { entries, truncated: true };
    entries.push({ name, type, typeflag, size, linkname, body: tar.subarray(dataAt, dataAt + size) });
    at = dataAt + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (extended) ambiguous('an extended header with no entry after it');
  return { entries, truncated: false };
}
