/**
 * Submission bundles: one gzipped tar holding the manifest (`manifest.json` or `manifest.yaml`), the
 * publisher's detached signature over it (`<manifest>.asc`), optionally the publisher's public key
 * (`publisher.asc`), and the artifact files the manifest names. Uploads are untrusted: the reader caps the
 * upload before it inflates, inflates under a hard output limit (compression bombs), caps entries before it
 * reads them, and refuses paths that could escape a folder, links, devices and duplicates. Every problem
 * found is reported, not just the first.
 */
import { Buffer, constants as bufferConstants } from 'node:buffer';
import { gunzipSync, gzipSync, type ZlibOptions } from 'node:zlib';
import { normalizeDigest, sha256Hex } from './digest.ts';
import { type Problem, problem, SubmissionError } from './errors.ts';
import { MAX_MANIFEST_BYTES } from './manifest/parse.ts';
import type { Manifest } from './model.ts';
import { readTar, type TarEntry, TarFormatError } from './tar.ts';

export interface BundleLimits {
  /** Largest accepted upload (compressed). */
  readonly maxCompressedBytes: number;
  /** Largest inflated tar. */
  readonly maxUncompressedBytes: number;
  /** Most tar entries, folders included. */
  readonly maxEntries: number;
  /** Largest single file. */
  readonly maxEntryBytes: number;
  /** Inflated/compressed ratio allowed beyond the first MiB; above it the upload is a compression bomb. */
  readonly maxRatio: number;
}

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = {
  maxCompressedBytes: 256 * 1024 * 1024,
  maxUncompressedBytes: 1024 * 1024 * 1024,
  maxEntries: 256,
  maxEntryBytes: 512 * 1024 * 1024,
  maxRatio: 200,
};

export interface BundleContents {
  /** `manifest.json`, `manifest.yaml` or `manifest.yml`. */
  readonly manifestName: string;
  /** The manifest bytes exactly as uploaded (the bytes the publisher signed). */
  readonly manifest: Uint8Array;
  /** The detached signature `<manifestName>.asc`, when present. */
  readonly signature?: Uint8Array;
  /** `publisher.asc`, when present. */
  readonly publisherKey?: Uint8Array;
  /** Every other regular file, by normalized path (no `./` prefix). */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

const MANIFEST_NAMES = ['manifest.json', 'manifest.yaml', 'manifest.yml'] as const;
const PUBLISHER_KEY_NAME = 'publisher.asc';
/** Largest detached signature: one armored signature packet is well under 2 KiB, even by an RSA-4096 key. */
export const MAX_SIGNATURE_BYTES = 16 * 1024;
/** Largest publisher key: a minimal export is a few KiB; a key past this is mostly third-party signatures. */
export const MAX_PUBLISHER_KEY_BYTES = 64 * 1024;

/**
 * Files the registry parses get the cap their role needs, before they are read: the work a submission can
 * cost (parsing a key, checking its signatures) is bounded by what it may carry, not by the bundle limit.
 * (The manifest's own cap, MAX_MANIFEST_BYTES, is checked where it is parsed, as MANIFEST_TOO_LARGE.)
 */
const ROLE_LIMITS: ReadonlyMap<string, number> = new Map([
  ...MANIFEST_NAMES.map((name): [string, number] => [`${name}.asc`, MAX_SIGNATURE_BYTES]),
  [PUBLISHER_KEY_NAME, MAX_PUBLISHER_KEY_BYTES],
]);
const MiB = 1024 * 1024;
const MAX_NAME_LENGTH = 255;
/** Control, format (bidi overrides, zero-width), surrogate, private-use and unassigned code points, line and
 * paragraph separators, and U+FFFD (what invalid UTF-8 in a tar header decodes to). */
const NON_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}\uFFFD]/u;
const NON_PRINTABLE_GLOBAL = /[\p{C}\p{Zl}\p{Zp}\uFFFD]/gu;

function fail(problems: readonly Problem[]): never {
  throw new SubmissionError('INVALID_SUBMISSION', problems);
}

/** Limits with the caller's overrides; an override left `undefined` keeps the default rather than no limit. */
function resolveLimits(overrides: Partial<BundleLimits>): BundleLimits {
  const pick = (key: keyof BundleLimits): number => overrides[key] ?? DEFAULT_BUNDLE_LIMITS[key];
  return {
    maxCompressedBytes: pick('maxCompressedBytes'),
    maxUncompressedBytes: pick('maxUncompressedBytes'),
    maxEntries: pick('maxEntries'),
    maxEntryBytes: pick('maxEntryBytes'),
    maxRatio: pick('maxRatio'),
  };
}

/** A hostile name made safe to put in a message or a log line: escaped, and cut short. */
function displayName(name: string): string {
  const escaped = name.replace(
    NON_PRINTABLE_GLOBAL,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16).toUpperCase()}}`,
  );
  return escaped.length > 300 ? `${escaped.slice(0, 300)}…` : escaped;
}

/** Why a tar entry name is unsafe, or undefined when it is a plain relative path. */
function unsafePathReason(name: string): string | undefined {
  if (name.length === 0) return 'an empty name';
  if (name.length > MAX_NAME_LENGTH) return `a name longer than ${MAX_NAME_LENGTH} characters`;
  if (name.includes('\0')) return 'a NUL character';
  if (NON_PRINTABLE.test(name)) return 'a non-printable character';
  if (name.includes('\\')) return 'a backslash';
  if (name.startsWith('/')) return 'an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter';
  const segments = name.split('/');
  if (segments.includes('..')) return 'a ".." segment';
  if (segments.includes('.')) return 'a "." segment';
  if (segments.includes('')) return 'an empty segment';
  return undefined;
}

/** Drops leading `./` (as `tar -C dir .` writes) and, for folders, trailing slashes. */
function normalizeName(raw: string, isDirectory: boolean): string {
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  if (isDirectory) name = name.replace(/\/+$/, '');
  return name;
}

/** The form two names share when a case-insensitive, normalization-insensitive filesystem (Windows, macOS)
 * would store them as one file. */
function foldName(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/** Bounds of the output chunk `inflate` asks zlib for (zlib's own default is 16 KiB). */
const MIN_CHUNK = 1024;
const MAX_CHUNK = MiB;

/**
 * The output chunk to inflate `bytes` in: the size the gzip trailer states (ISIZE, the last member's size
 * modulo 2^32), and one byte more, so a bundle inflates into one buffer of its own size where zlib's 16 KiB
 * default gave most bundles (a few KiB) a buffer of 16 KiB, held by every file read from it until the
 * batch ends: 160 MB at 10,000 bundles. Only a hint: a trailer that lies costs more, smaller chunks
 * (never under 1 KiB), or one up to 1 MiB and the output limit, never a wrong result.
 */
function outputChunkSize(bytes: Uint8Array, limit: number): number {
  const at = bytes.byteLength - 4;
  const stated =
    at >= 0
      ? ((bytes[at] as number) |
          ((bytes[at + 1] as number) << 8) |
          ((bytes[at + 2] as number) << 16) |
          ((bytes[at + 3] as number) << 24)) >>>
        0
      : 0;
  return Math.max(MIN_CHUNK, Math.min(stated + 1, MAX_CHUNK, limit + 1));
}

/** Zeros to compare with, a chunk at a time (memcmp): an upload may pad its gzip stream with megabytes. */
const ZEROS = Buffer.alloc(64 * 1024);

function isZero(bytes: Uint8Array): boolean {
  for (let at = 0; at < bytes.length; at += ZEROS.length) {
    const part = bytes.subarray(at, at + ZEROS.length);
    if (Buffer.compare(part, ZEROS.subarray(0, part.length)) !== 0) return false;
  }
  return true;
}

/**
 * Gunzips under a hard output limit: zlib stops as soon as the output passes it, so a bomb is never inflated
 * in full. The limit is the smaller of the absolute cap and the ratio cap (which starts after the first MiB).
 */
function inflate(bytes: Uint8Array, limits: BundleLimits): Buffer {
  const byRatio = Math.max(MiB, bytes.byteLength * limits.maxRatio);
  const limit = Math.floor(Math.min(limits.maxUncompressedBytes, byRatio, bufferConstants.MAX_LENGTH));
  let inflated: { readonly buffer: Buffer; readonly engine: { readonly bytesWritten: number } };
  try {
    // `info`: the engine too, which says how much of the input the gzip members took.
    inflated = gunzipSync(bytes, {
      maxOutputLength: Math.max(1, limit),
      chunkSize: outputChunkSize(bytes, limit),
      info: true,
    } as ZlibOptions) as unknown as typeof inflated;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      const why =
        byRatio < limits.maxUncompressedBytes
          ? `more than ${limits.maxRatio} times its compressed size (a compression bomb?)`
          : `more than ${limits.maxUncompressedBytes} bytes`;
      fail([
        problem('BUNDLE_DECOMPRESSION_LIMIT', 'bundle:', `the bundle inflates to ${why}`, {
          expected: `at most ${limit} bytes once inflated`,
        }),
      ]);
    }
    fail([problem('BUNDLE_CORRUPT', 'bundle:', `the gzip stream is damaged: ${(error as Error).message}`)]);
  }
  // zlib reads member after member, and stops at a zero byte after one, ignoring whatever follows (other
  // bytes there it refuses: BUNDLE_CORRUPT); GNU gzip stops there too, but Python's gzip skips zero padding
  // and reads on, a member there adding files only tarfile sees. Zero padding alone every reader skips.
  const rest = bytes.subarray(inflated.engine.bytesWritten);
  if (!isZero(rest))
    fail([
      problem(
        'BUNDLE_AMBIGUOUS_ARCHIVE',
        'bundle:',
        `tar readers would read this archive differently: ${rest.byteLength} bytes follow the gzip stream after a zero byte (Python's gzip reads them as another member, zlib and GNU gzip stop)`,
        { expected: 'a plain tar archive, as `tar czf` or `plugindex pack` writes it' },
      ),
    ]);
  return inflated.buffer;
}

/**
 * The problem with an upload of `size` bytes (compressed), if it is over the limit: the pipeline asks before
 * it reads an upload, so an oversized one is refused without ever being held in memory.
 */
export function bundleSizeProblem(size: number, overrides: Partial<BundleLimits> = {}): Problem | undefined {
  const limit = resolveLimits(overrides).maxCompressedBytes;
  if (size <= limit) return undefined;
  return problem('BUNDLE_TOO_LARGE', 'bundle:', 'the bundle is too large', {
    expected: `at most ${limit} bytes`,
    found: `${size} bytes`,
  });
}

/** A field only a plugin manifest has at its top, besides `name` and `version` (the spec's required ones). */
const MANIFEST_MARKS = ['api_version', 'plugin_type', 'capabilities'];
/** A line of block YAML at the top level: `key: value`, the value as written (quotes kept). */
const TOP_LEVEL_YAML = /^([a-z_]+):[ \t]*(.*?)[ \t]*$/gm;

/**
 * The one problem of an upload that is a plugin manifest, JSON or YAML, rather than a bundle or a signed
 * action (`plugindex publish manifest.json`, a manifest dropped into `incoming/`), else undefined.
 * JSON was read as a signed action, one ACTION_MALFORMED per manifest field ("name" is not a field of a
 * signed action), and YAML as a bundle that is not gzip: neither said to pack it. Judged by its top-level
 * fields only (`name`, `version` and one of `MANIFEST_MARKS`, none of an envelope's), never as a manifest.
 */
export function manifestUploadProblem(bytes: Uint8Array): Problem | undefined {
  // Past a manifest's own cap it is none, and a bundle's size of text (not gzip) is not decoded to say so.
  if (bytes.byteLength > MAX_MANIFEST_BYTES) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  // Neither JSON nor YAML holds a NUL, and a tar (`tar cf` without z) is mostly NULs: valid UTF-8 whose
  // manifest.yaml lines read as a bare manifest's top level, and it was told to pack what it had packed.
  if (text.includes('\u0000')) return undefined;
  const fields = new Map<string, unknown>();
  if (text.trimStart().startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    for (const [key, field] of Object.entries(value)) fields.set(key, field);
  } else
    for (const [, key = '', written = ''] of text.matchAll(TOP_LEVEL_YAML))
      if (!fields.has(key)) fields.set(key, written.replace(/^(["'])(.*)\1$/, '$2'));
  const name = fields.get('name');
  const version = fields.get('version');
  if (typeof name !== 'string' || typeof version !== 'string') return undefined;
  if (!MANIFEST_MARKS.some((mark) => fields.has(mark))) return undefined;
  if (['signature', 'action', 'key'].some((field) => fields.has(field))) return undefined;
  // Shown only in a form a plugin name and version take: the upload is anyone's text.
  const shown = /^[a-z0-9-]{1,64}$/.test(name) && /^[0-9A-Za-z.+-]{1,64}$/.test(version);
  return problem(
    'SUBMISSION_IS_MANIFEST',
    '',
    `the upload is a plugin manifest${shown ? ` (${name} ${version})` : ''}, not a bundle or a signed action`,
    {
      expected:
        'a bundle the publisher signs: plugindex pack MANIFEST --artifact OS/ARCH=FILE --key SECRET_KEY --output FILE.tgz, then publish FILE.tgz',
    },
  );
}

/**
 * Reads a submission bundle. A missing signature is not an error here; the trust check reports it.
 * Directory entries are ignored; every other regular file is returned by its normalized path.
 * @throws SubmissionError (INVALID_SUBMISSION) listing every problem found, at `bundle:<entry>` or `bundle:`.
 * @example
 * const contents = await readBundle(uploadBytes, { maxEntries: 64 });
 * const problems = checkBundleFiles(contents, manifest);
 */
export async function readBundle(
  bytes: Uint8Array,
  overrides: Partial<BundleLimits> = {},
): Promise<BundleContents> {
  const limits = resolveLimits(overrides);
  const tooLarge = bundleSizeProblem(bytes.byteLength, limits);
  if (tooLarge) fail([tooLarge]);
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    const manifest = manifestUploadProblem(bytes);
    if (manifest) fail([manifest]);
    fail([
      problem('BUNDLE_NOT_GZIP', 'bundle:', 'the bundle is not a gzip file', {
        expected: 'a gzipped tar (.tgz)',
      }),
    ]);
  }
  const tar = inflate(bytes, limits);

  const problems: Problem[] = [];
  const files = new Map<string, Uint8Array>();
  /** Folded name -> name, of every file kept so far. */
  const seen = new Map<string, string>();
  /** Folded names of folders, explicit or implied by a file's path. */
  const folders = new Set<string>();
  let entries = 0;
  let listed: TarEntry[] = [];
  try {
    const read = readTar(tar, limits.maxEntries);
    listed = read.entries;
    if (read.truncated) {
      problems.push(
        problem('BUNDLE_TOO_MANY_ENTRIES', 'bundle:', 'the bundle has too many entries', {
          expected: `at most ${limits.maxEntries}`,
        }),
      );
    }
  } catch (error) {
    if (!(error instanceof TarFormatError)) throw error;
    problems.push(
      error.kind === 'ambiguous'
        ? problem(
            'BUNDLE_AMBIGUOUS_ARCHIVE',
            'bundle:',
            `tar readers would read this archive differently: ${error.message}`,
            {
              expected: 'a plain tar archive, as `tar czf` or `plugindex pack` writes it',
            },
          )
        : problem('BUNDLE_CORRUPT', 'bundle:', `the tar archive is damaged: ${error.message}`),
    );
  }
  for (const entry of listed) {
    entries += 1;
    const isDirectory = entry.type === 'directory';
    const name = normalizeName(entry.name, isDirectory);
    // The archive's own root (`./` or `.`), as `tar -C dir .` writes it.
    if (isDirectory && (name === '' || name === '.')) continue;
    const at = `bundle:${displayName(name)}`;
    let keep = true;
    const reason = unsafePathReason(name);
    if (reason) {
      problems.push(
        problem('BUNDLE_UNSAFE_PATH', at, `unsafe entry name: ${reason}`, {
          expected: 'a relative path of at most 255 printable characters without "..", "." or empty segments',
          found: `"${displayName(entry.name)}"`,
        }),
      );
      keep = false;
    }
    if (entry.type === 'symlink' || entry.type === 'link') {
      const target = displayName(entry.linkname);
      problems.push(
        problem(
          'BUNDLE_LINK_ENTRY',
          at,
          `links are not allowed (${entry.type} to ${JSON.stringify(target)})`,
        ),
      );
      keep = false;
    } else if (entry.type !== 'file' && !isDirectory) {
      problems.push(
        problem(
          'BUNDLE_SPECIAL_ENTRY',
          at,
          `only regular files and folders are allowed, found ${entry.type === 'unknown' ? `an entry of type ${JSON.stringify(entry.typeflag)}` : entry.type}`,
        ),
      );
      keep = false;
    }
    if (keep && isDirectory) {
      folders.add(foldName(name));
      continue;
    }
    if (keep) {
      const folded = foldName(name);
      const previous = seen.get(folded);
      if (previous !== undefined) {
        problems.push(
          problem(
            'BUNDLE_DUPLICATE_ENTRY',
            at,
            previous === name
              ? 'the entry appears twice'
              : `the entry collides with ${displayName(previous)} on case-insensitive filesystems`,
          ),
        );
        keep = false;
      } else {
        seen.set(folded, name);
      }
    }
    const cap = Math.min(ROLE_LIMITS.get(name) ?? limits.maxEntryBytes, limits.maxEntryBytes);
    if (keep && entry.size > cap) {
      problems.push(
        problem('BUNDLE_ENTRY_TOO_LARGE', at, 'the file is too large', {
          expected: `at most ${cap} bytes`,
          found: `${entry.size} bytes`,
        }),
      );
      keep = false;
    }
    if (keep) files.set(name, entry.body);
  }

  // A path that is a file and also a folder (`a` and `a/b`) cannot be extracted anywhere.
  for (const name of files.keys()) {
    const segments = foldName(name).split('/');
    for (let i = 1; i < segments.length; i += 1) folders.add(segments.slice(0, i).join('/'));
  }
  for (const name of [...files.keys()]) {
    if (folders.has(foldName(name))) {
      problems.push(
        problem(
          'BUNDLE_DUPLICATE_ENTRY',
          `bundle:${displayName(name)}`,
          'the path is both a file and a folder',
        ),
      );
      files.delete(name);
    }
  }

  const stoppedEarly = problems.some(
    (p) =>
      p.code === 'BUNDLE_CORRUPT' ||
      p.code === 'BUNDLE_TOO_MANY_ENTRIES' ||
      p.code === 'BUNDLE_AMBIGUOUS_ARCHIVE',
  );
  if (entries === 0 && !stoppedEarly) {
    problems.push(problem('BUNDLE_CORRUPT', 'bundle:', 'the archive holds no entries'));
  }
  const manifests = MANIFEST_NAMES.filter((n) => files.has(n));
  if (manifests.length > 1) {
    problems.push(
      problem(
        'BUNDLE_MULTIPLE_MANIFESTS',
        'bundle:',
        `the bundle holds ${manifests.join(' and ')}; exactly one manifest is allowed`,
      ),
    );
  } else if (manifests.length === 0 && entries > 0 && !stoppedEarly) {
    problems.push(
      problem('BUNDLE_MISSING_MANIFEST', 'bundle:', 'the bundle has no manifest', {
        expected: `one of ${MANIFEST_NAMES.join(', ')} at the top level`,
      }),
    );
  }
  if (problems.length > 0) fail(problems);

  const manifestName = manifests[0] as string;
  const signatureName = `${manifestName}.asc`;
  const manifest = files.get(manifestName) as Uint8Array;
  const signature = files.get(signatureName);
  const publisherKey = files.get(PUBLISHER_KEY_NAME);
  const rest = new Map(files);
  for (const name of [manifestName, signatureName, PUBLISHER_KEY_NAME]) rest.delete(name);
  return {
    manifestName,
    manifest,
    ...(signature ? { signature } : {}),
    ...(publisherKey ? { publisherKey } : {}),
    files: rest,
  };
}

/**
 * Every file in the bundle must be named by an artifact of the manifest, and every artifact `file` the
 * manifest names must be in the bundle. Returns the problems (empty when they match); does not throw.
 * @example
 * const problems = checkBundleFiles(await readBundle(bytes), manifest);
 * if (problems.length > 0) throw new SubmissionError('INVALID_SUBMISSION', problems);
 */
export function checkBundleFiles(contents: BundleContents, manifest: Manifest): Problem[] {
  const problems: Problem[] = [];
  const artifacts = manifest.installation?.artifacts ?? [];
  const named = new Set(artifacts.map((a) => a.file).filter((f): f is string => typeof f === 'string'));
  for (const name of contents.files.keys()) {
    if (!named.has(name)) {
      problems.push(
        problem('BUNDLE_UNEXPECTED_FILE', `bundle:${name}`, 'the manifest does not name this file', {
          expected: 'only files listed in installation.artifacts[].file',
        }),
      );
    }
  }
  artifacts.forEach((artifact, i) => {
    if (typeof artifact.file === 'string' && !contents.files.has(artifact.file)) {
      problems.push(
        problem(
          'BUNDLE_MISSING_ARTIFACT',
          `/installation/artifacts/${i}/file`,
          `the bundle does not contain ${artifact.file}`,
        ),
      );
    }
  });
  return problems;
}

/**
 * Hosted artifacts must be exactly the bytes the manifest describes: the digest and size the publisher
 * signed. Returns the problems; a missing file is checkBundleFiles' to report.
 */
export function checkArtifactDigests(contents: BundleContents, manifest: Manifest): Problem[] {
  const problems: Problem[] = [];
  (manifest.installation?.artifacts ?? []).forEach((artifact, i) => {
    const body = artifact.file === undefined ? undefined : contents.files.get(artifact.file);
    if (!body) return; // a missing file is reported by checkBundleFiles
    const actual = sha256Hex(body);
    if (actual !== normalizeDigest(artifact.sha256)) {
      problems.push(
        problem(
          'ARTIFACT_DIGEST_MISMATCH',
          `/installation/artifacts/${i}/sha256`,
          `the sha256 of ${artifact.file} does not match`,
          {
            expected: normalizeDigest(artifact.sha256),
            found: actual,
          },
        ),
      );
    }
    if (body.byteLength !== artifact.size_bytes) {
      problems.push(
        problem(
          'ARTIFACT_SIZE_MISMATCH',
          `/installation/artifacts/${i}/size_bytes`,
          `the size of ${artifact.file} does not match`,
          {
            expected: String(artifact.size_bytes),
            found: String(body.byteLength),
          },
        ),
      );
    }
  });
  return problems;
}

/** Byte 9 of a gzip header: the OS zlib was built for. 255 ("unknown") on every platform, as node-tar's
 * portable mode writes it, so the bytes do not depend on where they were made. */
const GZIP_OS_BYTE = 9;
const GZIP_OS_UNKNOWN = 0xff;

/**
 * Writes a bundle deterministically: entries sorted by path, mtime 0, mode 0644, owner 0 with no names, so
 * the same inputs give the same bytes (for a given zlib).
 * @example
 * const tgz = await writeBundle([{ path: 'manifest.json', body }, { path: 'manifest.json.asc', body: sig }]);
 */
export async function writeBundle(
  entries: readonly { readonly path: string; readonly body: Uint8Array }[],
): Promise<Uint8Array> {
  // Loaded only to write one: tar-stream and what it stands on (streamx, fast-fifo, b4a, text-decoder)
  // are the one use of a tar writer, and a publish, which only reads a bundle (tar.ts), never needs them.
  // Its default export: a CommonJS package imported lazily has nothing else in the built command (ARCHITECTURE.md).
  const { default: tarStream } = await import('tar-stream');
  const tar = tarStream.pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    tar.on('end', () => resolve());
    tar.on('error', reject);
  });
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const entry of sorted) {
    tar.entry(
      {
        name: entry.path,
        type: 'file',
        mode: 0o644,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
        uname: '',
        gname: '',
      },
      Buffer.from(entry.body.buffer, entry.body.byteOffset, entry.body.byteLength),
    );
  }
  tar.finalize();
  await done;
  const gz = gzipSync(Buffer.concat(chunks), { level: 9 });
  gz[GZIP_OS_BYTE] = GZIP_OS_UNKNOWN;
  return new Uint8Array(gz.buffer, gz.byteOffset, gz.byteLength);
}
