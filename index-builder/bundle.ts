/**
 * Submission bundles: one gzipped tar holding the manifest (`manifest.json` or `manifest.yaml`), the
 * publisher's detached signature over it (`<manifest>.asc`), optionally the publisher's public key
 * (`publisher.asc`), and the artifact files the manifest names. Uploads are untrusted: the reader caps
 * sizes and entry counts before it allocates, inflates under a hard output limit (compression bombs), and
 * refuses paths that could escape a folder, links, devices and duplicates. Every problem found is reported.
 */
import { Buffer } from 'node:buffer';
import { gunzipSync, gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { type Problem, problem, SubmissionError } from './errors.ts';
import type { Manifest } from './model.ts';

export interface BundleLimits {
  /** Largest accepted upload (compressed). */
  readonly maxCompressedBytes: number;
  /** Largest inflated tar. */
  readonly maxUncompressedBytes: number;
  readonly maxEntries: number;
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
  readonly manifest: Uint8Array;
  /** The detached signature `<manifestName>.asc`, when present. */
  readonly signature?: Uint8Array;
  /** `publisher.asc`, when present. */
  readonly publisherKey?: Uint8Array;
  /** Every other regular file, by normalized path. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

const MANIFEST_NAMES = ['manifest.json', 'manifest.yaml', 'manifest.yml'];
const MiB = 1024 * 1024;

function fail(problems: readonly Problem[]): never {
  throw new SubmissionError('INVALID_SUBMISSION', problems);
}

/** Why a tar entry name is unsafe, or undefined when it is a plain relative path. */
function unsafePathReason(name: string): string | undefined {
  if (name.length === 0) return 'an empty name';
  if (name.length > 255) return 'a name longer than 255 characters';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a control character';
  if (name.includes('\\')) return 'a backslash';
  if (name.startsWith('/')) return 'an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'a drive letter';
  const segments = name.split('/');
  if (segments.includes('..')) return 'a ".." segment';
  if (segments.includes('.')) return 'a "." segment';
  if (segments.includes('')) return 'an empty segment';
  return undefined;
}

function normalizeName(raw: string, isDirectory: boolean): string {
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  if (isDirectory) name = name.replace(/\/+$/, '');
  return name;
}

function inflate(bytes: Uint8Array, limits: BundleLimits): Buffer {
  const limit = Math.min(limits.maxUncompressedBytes, Math.max(MiB, bytes.byteLength * limits.maxRatio));
  try {
    return gunzipSync(bytes, { maxOutputLength: limit });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      fail([
        problem(
          'BUNDLE_DECOMPRESSION_LIMIT',
          'bundle:',
          'the bundle inflates beyond the allowed size (a compression bomb?)',
          {
            expected: `at most ${limit} bytes once inflated`,
          },
        ),
      ]);
    }
    fail([problem('BUNDLE_CORRUPT', 'bundle:', `the gzip stream is damaged: ${(error as Error).message}`)]);
  }
}

/**
 * Reads a submission bundle. A missing signature is not an error here; the trust check reports it.
 * @throws SubmissionError (INVALID_SUBMISSION) listing every problem found.
 * @example const contents = await readBundle(uploadBytes);
 */
export async function readBundle(
  bytes: Uint8Array,
  overrides: Partial<BundleLimits> = {},
): Promise<BundleContents> {
  const limits: BundleLimits = { ...DEFAULT_BUNDLE_LIMITS, ...overrides };
  if (bytes.byteLength > limits.maxCompressedBytes) {
    fail([
      problem('BUNDLE_TOO_LARGE', 'bundle:', 'the bundle is too large', {
        expected: `at most ${limits.maxCompressedBytes} bytes`,
        found: `${bytes.byteLength} bytes`,
      }),
    ]);
  }
  if (bytes.byteLength < 18 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    fail([
      problem('BUNDLE_NOT_GZIP', 'bundle:', 'the bundle is not a gzip file', {
        expected: 'a gzipped tar (.tgz)',
      }),
    ]);
  }
  const tar = inflate(bytes, limits);

  const problems: Problem[] = [];
  const files = new Map<string, Uint8Array>();
  const seen = new Map<string, string>();
  let entries = 0;
  const extractor = extract();
  extractor.end(tar);
  try {
    for await (const entry of extractor) {
      const header = entry.header;
      entries += 1;
      if (entries > limits.maxEntries) {
        problems.push(
          problem('BUNDLE_TOO_MANY_ENTRIES', 'bundle:', 'the bundle has too many entries', {
            expected: `at most ${limits.maxEntries}`,
          }),
        );
        entry.resume();
        extractor.destroy();
        break;
      }
      const isDirectory = header.type === 'directory';
      const name = normalizeName(header.name, isDirectory);
      const at = `bundle:${name}`;
      const reason = unsafePathReason(name);
      let keep = true;
      if (reason) {
        problems.push(
          problem('BUNDLE_UNSAFE_PATH', at, `unsafe entry name: ${reason}`, {
            expected: 'a relative path without "..", "." or empty segments',
            found: JSON.stringify(header.name),
          }),
        );
        keep = false;
      }
      if (header.type === 'symlink' || header.type === 'link') {
        problems.push(
          problem(
            'BUNDLE_LINK_ENTRY',
            at,
            `links are not allowed (${header.type} to ${JSON.stringify(header.linkname ?? '')})`,
          ),
        );
        keep = false;
      } else if (header.type !== 'file' && header.type !== 'contiguous-file' && !isDirectory) {
        problems.push(
          problem(
            'BUNDLE_SPECIAL_ENTRY',
            at,
            `only regular files and folders are allowed, found ${header.type}`,
          ),
        );
        keep = false;
      }
      if (keep && !isDirectory) {
        const folded = name.toLowerCase();
        const previous = seen.get(folded);
        if (previous !== undefined) {
          problems.push(
            problem(
              'BUNDLE_DUPLICATE_ENTRY',
              at,
              previous === name
                ? 'the entry appears twice'
                : `the entry collides with ${previous} on case-insensitive filesystems`,
            ),
          );
          keep = false;
        } else {
          seen.set(folded, name);
        }
      }
      if (keep && !isDirectory && header.size > limits.maxEntryBytes) {
        problems.push(
          problem('BUNDLE_ENTRY_TOO_LARGE', at, 'the file is too large', {
            expected: `at most ${limits.maxEntryBytes} bytes`,
            found: `${header.size} bytes`,
          }),
        );
        keep = false;
      }
      if (!keep || isDirectory) {
        entry.resume();
        continue;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      files.set(name, new Uint8Array(Buffer.concat(chunks)));
    }
  } catch (error) {
    problems.push(
      problem('BUNDLE_CORRUPT', 'bundle:', `the tar archive is damaged: ${(error as Error).message}`),
    );
  }
  if (problems.length === 0 && entries === 0) {
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
  } else if (
    manifests.length === 0 &&
    !problems.some((p) => p.code === 'BUNDLE_CORRUPT' || p.code === 'BUNDLE_TOO_MANY_ENTRIES')
  ) {
    problems.push(
      problem('BUNDLE_MISSING_MANIFEST', 'bundle:', 'the bundle has no manifest', {
        expected: 'manifest.json or manifest.yaml at the top level',
      }),
    );
  }
  if (problems.length > 0) fail(problems);

  const manifestName = manifests[0] as string;
  const manifest = files.get(manifestName) as Uint8Array;
  const signature = files.get(`${manifestName}.asc`);
  const publisherKey = files.get('publisher.asc');
  const rest = new Map(files);
  for (const name of [manifestName, `${manifestName}.asc`, 'publisher.asc']) rest.delete(name);
  return {
    manifestName,
    manifest,
    ...(signature ? { signature } : {}),
    ...(publisherKey ? { publisherKey } : {}),
    files: rest,
  };
}

/**
 * Every file in the bundle must be named by the manifest, and every artifact the manifest names must be in
 * the bundle.
 */
export function checkBundleFiles(contents: BundleContents, manifest: Manifest): Problem[] {
  const problems: Problem[] = [];
  const artifacts = manifest.installation?.artifacts ?? [];
  const named = new Set(artifacts.map((a) => a.file).filter((f): f is string => f !== undefined));
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
    if (artifact.file !== undefined && !contents.files.has(artifact.file)) {
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
 * Writes a bundle deterministically (sorted entries, zero times and owners), so the same inputs always give
 * the same bytes.
 */
export async function writeBundle(
  entries: readonly { path: string; body: Uint8Array }[],
): Promise<Uint8Array> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    tar.on('end', () => resolve());
    tar.on('error', reject);
  });
  for (const entry of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
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
      Buffer.from(entry.body),
    );
  }
  tar.finalize();
  await done;
  return new Uint8Array(gzipSync(Buffer.concat(chunks), { level: 9 }));
}
