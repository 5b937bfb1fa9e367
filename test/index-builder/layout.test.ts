/**
 * One definition of a safe path: whatever manifest validation accepts as an artifact path and a version,
 * every store writes. Checked over hand-picked names and over thousands of generated ones, against the
 * filesystem store on a real disk (the stricter of the two: NAME_MAX, dot-files, sidecars) and the key
 * check the S3 store and the in-memory store apply.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../adapters/fs-store.ts';
import { shownUrl } from '../../client/config.ts';
import { sha256Hex } from '../../index-builder/digest.ts';
import {
  artifactKey,
  artifactPathProblem,
  binKey,
  binOf,
  binOfKey,
  hostedArtifactKey,
  impliedMetadata,
  isHostedArtifactKey,
  isManifestSignatureKey,
  isPluginDocumentKey,
  isSafeKey,
  keyProblem,
  MAX_SEGMENT_LENGTH,
  manifestKey,
  pluginDocumentKey,
  pluginNameProblem,
  SHOWN_URL_END_CHARACTERS,
  SHOWN_URL_PATH_CHARACTERS,
  shownUnparsedUrl,
  shownUrlText,
  signatureKey,
  statusKey,
  submissionIdFromBytes,
  submissionIdFromDigest,
  versionBase,
  versionIdentity,
  versionKeys,
} from '../../index-builder/layout.ts';
import { validateManifest } from '../../index-builder/manifest/index.ts';
import { CACHE_IMMUTABLE, CACHE_MUTABLE, CACHE_PRIVATE } from '../../index-builder/store.ts';
import { validManifest } from '../support/fixtures.ts';
import { seededRandom } from '../support/random.ts';

let root: string;
let store: FsStore;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'plugindex-layout-'));
  store = new FsStore(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function manifestWith(file: string, version = '1.0.0'): Record<string, unknown> {
  return validManifest({
    version,
    installation: {
      artifacts: [{ os: 'linux', arch: 'amd64', file, sha256: 'a'.repeat(64), size_bytes: 1 }],
    },
  });
}

const opts = { contentType: 'application/octet-stream', cacheControl: 'no-store' };

/** Accepted by validation implies written by the store, for every key of the version. */
let folders = 0;

async function assertWritableIfValid(file: string, version = '1.0.0'): Promise<boolean> {
  const problems = validateManifest(manifestWith(file, version));
  if (problems.length > 0) return false;
  folders += 1; // a plugin folder of its own, so paths of earlier cases cannot be in the way
  for (const key of versionKeys(`p${folders}`, version, [file])) {
    expect(isSafeKey(key), key).toBe(true);
    await store.put(key, new Uint8Array([1]), opts);
    expect((await store.head(key))?.size, key).toBe(1);
  }
  return true;
}

describe('when validation and the stores judge a path', () => {
  it.each([
    ['.hidden', 'MANIFEST_PATTERN_MISMATCH'],
    ['bin/.config', 'MANIFEST_PATTERN_MISMATCH'],
    ['a/../b', 'MANIFEST_PATTERN_MISMATCH'],
    ['a//b', 'MANIFEST_PATTERN_MISMATCH'],
    ['tool+x', 'MANIFEST_PATTERN_MISMATCH'],
    ['tool.', 'MANIFEST_UNSAFE_PATH'],
    ['bin/nul', 'MANIFEST_UNSAFE_PATH'],
    ['COM1.exe', 'MANIFEST_UNSAFE_PATH'],
    ['x'.repeat(MAX_SEGMENT_LENGTH + 1), 'MANIFEST_PATTERN_MISMATCH'],
    ['manifest.json', 'MANIFEST_RESERVED_PATH'],
    ['Manifest.JSON', 'MANIFEST_RESERVED_PATH'],
    ['manifest.json.asc', 'MANIFEST_RESERVED_PATH'],
    ['manifest', 'MANIFEST_RESERVED_PATH'],
    ['index.html', 'MANIFEST_RESERVED_PATH'],
    ['docs/INDEX.HTML', 'MANIFEST_RESERVED_PATH'],
    ['tool.asc', 'MANIFEST_RESERVED_PATH'],
  ])('refuses the artifact path %j with %s', async (file, code) => {
    const problems = validateManifest(manifestWith(file));
    expect(problems.map((p) => [p.code, p.path])).toContainEqual([code, '/installation/artifacts/0/file']);
    expect(await assertWritableIfValid(file)).toBe(false);
  });

  it.each([
    'tool',
    'artifacts/linux-amd64/tool',
    'x'.repeat(MAX_SEGMENT_LENGTH),
    `a/${'y'.repeat(MAX_SEGMENT_LENGTH)}/b`,
    'tool.exe',
    'bin/manifest.json',
    'nul-tool',
    '_x-y.z',
  ])('accepts %j, and every store writes it', async (file) => {
    expect(await assertWritableIfValid(file)).toBe(true);
  });

  it('writes whatever it accepts, over 3,000 generated paths and versions', async () => {
    // Pieces with the characters that matter: dots, separators, case, device names.
    const random = seededRandom(7);
    const pieces = ['a', 'Z', '0', '.', '..', '-', '_', '/', 'nul', 'con', 'index.html', '.asc', '+', ' '];
    const versions = ['1.0.0', '1.0.0-RC.1', '2.0.0+build.7', '0.0.1-a.b-c.d+x.y'];
    let accepted = 0;
    const cases = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const length = 1 + random(8);
      const file = Array.from({ length }, () => pieces[random(pieces.length)]).join('');
      const version = versions[random(versions.length)] as string;
      cases.add(`${file} ${version}`);
      if (await assertWritableIfValid(file, version)) accepted += 1;
    }
    // The generator reaches both sides of the line.
    expect(accepted).toBeGreaterThan(300);
    expect(accepted).toBeLessThan(2700);
    // With many cases, not a few repeated (a generator that lost its low bits gave 30 in all).
    expect(cases.size, 'distinct paths and versions').toBeGreaterThan(2_000);
  });
});

describe('when a store checks a key', () => {
  it('judges 20,000 generated keys as their segments, one by one, are judged', () => {
    // The rule segment by segment, written out: what the one-pattern check must agree with.
    const safeSegment = (segment: string): boolean =>
      new RegExp(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,${MAX_SEGMENT_LENGTH - 1}}$`).test(segment) &&
      !segment.endsWith('.') &&
      !/^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i.test(segment.split('.')[0] ?? '');
    const safe = (key: string): boolean =>
      key.length > 0 && key.length <= 1024 && key.split('/').every(safeSegment);
    const random = seededRandom(11);
    const long = 'x'.repeat(MAX_SEGMENT_LENGTH - 1);
    const pieces = [
      'a',
      'Z',
      '0',
      '.',
      '-',
      '_',
      '/',
      'nul',
      'NUL',
      'com1',
      'Lpt9',
      'com10',
      'aux.',
      long,
      '+',
      '~',
    ];
    const wrong: string[] = [];
    let safeOnes = 0;
    const keys = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const key = Array.from({ length: random(7) }, () => pieces[random(pieces.length)]).join('');
      keys.add(key);
      const expected = safe(key);
      if (expected) safeOnes += 1;
      if (isSafeKey(key) !== expected || (!expected && typeof keyProblem(key) !== 'string')) wrong.push(key);
    }
    expect(wrong).toEqual([]);
    // The generator reaches both sides of the line.
    expect(safeOnes).toBeGreaterThan(2_000);
    expect(safeOnes).toBeLessThan(18_000);
    // With many keys, not a few repeated (a generator that lost its low bits gave 58 in all).
    expect(keys.size, 'distinct keys').toBeGreaterThan(8_000);
    expect(isSafeKey(`${'a/'.repeat(511)}ab`)).toBe(true); // 1,024 characters
    expect(isSafeKey(`${'a/'.repeat(512)}a`)).toBe(false);
  });
});

describe('when a version becomes a folder', () => {
  it('drops build metadata, which S3 would read as a space and SemVer ignores', () => {
    expect(versionBase('x', '1.2.0-rc.1+b7')).toBe('plugins/x/1.2.0-rc.1');
    expect(artifactKey('x', '1.0.0+a', 'tool')).toBe('plugins/x/1.0.0/tool');
  });

  it('treats versions that differ only in build metadata or letter case as one', () => {
    expect(versionIdentity('1.0.0+a')).toBe(versionIdentity('1.0.0+b'));
    expect(versionIdentity('1.0.0-RC.1')).toBe(versionIdentity('1.0.0-rc.1'));
    expect(versionIdentity('1.0.0-rc.1')).not.toBe(versionIdentity('1.0.0-rc.2'));
  });
});

describe('when a name or a path has a meaning of its own', () => {
  it('reserves the registry words and Windows device names as plugin names', () => {
    for (const name of ['index', 'search', 'snapshot', 'keys', 'plugins', 'con', 'nul', 'com1', 'lpt9'])
      expect(pluginNameProblem(name), name).toBeDefined();
    for (const name of ['indexer', 'search-tools', 'console', 'nul-cost'])
      expect(pluginNameProblem(name)).toBeUndefined();
  });

  it('refuses artifact paths the registry writes or routes answer, case-insensitively', () => {
    expect(artifactPathProblem('MANIFEST.json')).toBeDefined();
    expect(artifactPathProblem('a/b/index.htm')).toBeDefined();
    expect(artifactPathProblem('sig/tool.ASC')).toBeDefined();
    expect(artifactPathProblem('bin/manifest.json')).toBeUndefined();
  });

  it('tells hosted artifacts from the files the registry writes', () => {
    expect(isHostedArtifactKey('plugins/x/1.0.0/tool')).toBe(true);
    expect(isHostedArtifactKey('plugins/x/1.0.0/bin/tool.html')).toBe(true);
    expect(isHostedArtifactKey('plugins/x/1.0.0/manifest.json')).toBe(false);
    expect(isHostedArtifactKey('plugins/x/1.0.0/manifest.json.asc')).toBe(false);
    expect(isHostedArtifactKey('plugins/x/index.html')).toBe(false);
    expect(isHostedArtifactKey('index.html')).toBe(false);
    expect(isHostedArtifactKey('plugins/x/1.0.0')).toBe(false);
  });

  it('reads the plugins folder in any letter case, as a filesystem that finds names so opens it', () => {
    expect(isHostedArtifactKey('Plugins/x/1.0.0/page.html')).toBe(true);
    expect(isHostedArtifactKey('PLUGINS/x/1.0.0/bin/logo.svg')).toBe(true);
    expect(isHostedArtifactKey('PLUGINS/x/1.0.0/manifest.json')).toBe(false);
    expect(isHostedArtifactKey('plugin/x/1.0.0/page.html')).toBe(false);
    expect(impliedMetadata('Plugins/x/1.0.0/page.html')).toEqual({
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
  });

  it('serves each file as its place says: a version immutable, its artifacts opaque, the rest mutable', () => {
    expect(impliedMetadata('plugins/x/1.0.0/bin/tool.html')).toEqual({
      contentType: 'application/octet-stream',
      cacheControl: CACHE_IMMUTABLE,
    });
    expect(impliedMetadata('plugins/x/1.0.0/manifest.json')).toEqual({
      contentType: 'application/json',
      cacheControl: CACHE_IMMUTABLE,
    });
    expect(impliedMetadata('plugins/x/index.json')).toEqual({
      contentType: 'application/json',
      cacheControl: CACHE_MUTABLE,
    });
    expect(impliedMetadata('status/a.json')).toMatchObject({ cacheControl: CACHE_PRIVATE });
  });

  it('serves a manifest signature as mutable: a key rotation signs every manifest again', () => {
    // Cached as immutable (a year, whatever the query), a CDN kept the retired key's signature after a
    // rotation whose invalidation failed, and every client holding the new key refused it.
    expect(impliedMetadata('plugins/x/1.0.0/manifest.json.asc')).toEqual({
      contentType: impliedMetadata('plugins/x/index.json.asc').contentType,
      cacheControl: CACHE_MUTABLE,
    });
    expect(isManifestSignatureKey(signatureKey(manifestKey('x', '1.0.0+b7')))).toBe(true);
    // Only the registry's own file of a version folder: an artifact cannot be named `.asc` at all.
    expect(isManifestSignatureKey('plugins/x/1.0.0/bin/manifest.json.asc')).toBe(false);
    expect(isManifestSignatureKey('plugins/x/manifest.json.asc')).toBe(false);
    expect(isManifestSignatureKey('plugins/x/1.0.0/manifest.json')).toBe(false);
  });
});

describe('when a submission is named', () => {
  const bytes = new TextEncoder().encode('an upload');
  const digest = 'ab12cd34ef56'.padEnd(64, '0');

  it('gives the same id from the bytes as from their digest', () => {
    expect(submissionIdFromBytes('incoming/my-plugin.tgz', bytes)).toBe(
      submissionIdFromDigest('incoming/my-plugin.tgz', sha256Hex(bytes)),
    );
  });

  it('keeps the file name and the start of the digest', () => {
    expect(submissionIdFromDigest('incoming/my-plugin-1.0.0.tgz', digest)).toBe(
      'my-plugin-1.0.0-ab12cd34ef56',
    );
    expect(submissionIdFromDigest('incoming/demo.json', digest)).toBe('demo.json-ab12cd34ef56');
    expect(submissionIdFromDigest('incoming/my-plugin-1.0.0.tar.gz', digest)).toMatch(
      /^my-plugin-1\.0\.0-ab12cd34ef56-[0-9a-f]{8}$/,
    );
  });

  it('makes a safe key segment of any name', () => {
    for (const key of [
      'incoming/a b.tgz',
      'incoming/.hidden.tgz',
      'incoming/con.x.tgz',
      'incoming/é\n.tgz',
      'incoming/',
    ]) {
      const id = submissionIdFromDigest(key, digest);
      expect(isSafeKey(statusKey(id)), id).toBe(true);
      expect(id).toContain(`-${digest.slice(0, 12)}`);
    }
  });

  it('tells apart the same bytes under two keys that would read the same, each with its outcome', () => {
    for (const [a, b] of [
      ['incoming/team-a/x.tgz', 'incoming/team-b/x.tgz'],
      ['incoming/a b.tgz', 'incoming/a_b.tgz'],
      [`incoming/${'n'.repeat(90)}1.tgz`, `incoming/${'n'.repeat(90)}2.tgz`],
      ['incoming/con.tgz', 'incoming/sub/con.tgz'],
      // One plain name an id: the others of the same base add their key's digest.
      ['incoming/x.tgz', 'incoming/x.tar.gz'],
      ['incoming/x.tgz', 'incoming/x.TGZ'],
      ['incoming/x.tgz', 'incoming/x'],
      ['incoming/x.tar.gz', 'incoming/x'],
      ['incoming/x.json', 'incoming/x.json.tgz'],
      // Names the stores refuse share one stand-in, told apart by their keys.
      ['incoming/con.x.tgz', 'incoming/nul.y.tgz'],
      ['incoming/con.x.tgz', 'incoming/submission.tgz'],
    ] as const) {
      expect(submissionIdFromDigest(a, digest), a).not.toBe(submissionIdFromDigest(b, digest));
      // And each stays its own: a redelivered upload maps to itself.
      expect(submissionIdFromDigest(a, digest)).toBe(submissionIdFromDigest(a, digest));
    }
    // A plain name right under incoming/ keeps the id it always had.
    expect(submissionIdFromDigest('incoming/x.tgz', digest)).toBe('x-ab12cd34ef56');
  });
});

describe('when the published tree is listed', () => {
  it('tells plugin documents from the files of their versions', () => {
    expect(isPluginDocumentKey(pluginDocumentKey('demo'))).toBe(true);
    expect(isPluginDocumentKey('plugins/demo/1.0.0/manifest.json')).toBe(false);
    expect(isPluginDocumentKey('plugins/demo/index.html')).toBe(false);
  });
});

describe('when a key names a snapshot bin', () => {
  it('gives the bin back for the bin documents, and nothing for any other key', () => {
    for (const name of ['demo-plugin', 'kubecost-lens', 'a'])
      expect(binOfKey(binKey(binOf(name)))).toBe(binOf(name));
    for (const key of [
      'snapshot.json',
      'snapshot/bins/0g.json',
      'snapshot/bins/abc.json',
      'snapshot/bins/ab.json.asc',
      'x/snapshot/bins/ab.json',
    ])
      expect(binOfKey(key), key).toBeUndefined();
  });
});

describe('when a client reads a published artifact URL', () => {
  it('finds the key under the version folder, wherever the registry says it publishes', () => {
    expect(
      hostedArtifactKey(
        'demo',
        '1.0.0+b7',
        'https://cdn.example/sub/plugins/demo/1.0.0/artifacts/linux-amd64/demo',
      ),
    ).toBe('plugins/demo/1.0.0/artifacts/linux-amd64/demo');
  });

  it('gives nothing for a URL outside the version folder, or text that is not a URL', () => {
    expect(hostedArtifactKey('demo', '1.0.0', 'https://cdn.example/elsewhere/demo')).toBeUndefined();
    expect(hostedArtifactKey('demo', '1.0.0', 'not a url')).toBeUndefined();
  });
});

describe('when a URL shown in a message is very long', () => {
  const longPath = `/${'a'.repeat(5000)}`;

  /** The rule: the head, the start of the rest and its last SHOWN_URL_END_CHARACTERS, the middle counted. */
  const cut = (head: string, rest: string) => {
    const start = SHOWN_URL_PATH_CHARACTERS - SHOWN_URL_END_CHARACTERS;
    return `${head}${rest.slice(0, start)}… (${rest.length - SHOWN_URL_PATH_CHARACTERS} more characters) …${rest.slice(-SHOWN_URL_END_CHARACTERS)}`;
  };

  it('keeps the scheme, the host, the start and the end of the rest, counting what it leaves out between them', () => {
    // A URL of megabytes was echoed whole into every refusal and --json.
    const shown = shownUnparsedUrl(`https://r.example:99999${longPath}?token=s3cret`);
    expect(shown).toBe(cut('https://r.example:99999', `${longPath}?token=…`));
    expect(shown).not.toContain('s3cret');
  });

  it("keeps a long file: URL's file name and the folders above it, which a cut after the start lost", () => {
    // A local registry or manifest deep in a checkout: the end of the path is the file a user must find.
    const folder = `/home/dev/${'nested-folder/'.repeat(30)}registry/plugins/cost-lens/1.2.0`;
    const url = `file://${folder}/manifest.json`;
    const shown = shownUrlText(url);
    expect(shown).toBe(cut('file://', `${folder}/manifest.json`));
    expect(shown.startsWith('file:///home/dev/nested-folder/')).toBe(true);
    expect(shown.endsWith('/registry/plugins/cost-lens/1.2.0/manifest.json')).toBe(true);
  });

  it("keeps an OCI blob URL's digest under a long repository, the part the message is about", () => {
    const digest = `sha256:${'c'.repeat(64)}`;
    const url = `https://oci.example/v2/acme/${'team/'.repeat(60)}lens/blobs/${digest}`;
    expect(shownUrlText(url).endsWith(`/lens/blobs/${digest}`)).toBe(true);
    expect(shownUrlText(url)).toBe(cut('https://oci.example', url.slice('https://oci.example'.length)));
  });

  it('shows a URL at or under the bound as it is', () => {
    const atBound = `https://r.example:99999/${'b'.repeat(SHOWN_URL_PATH_CHARACTERS - 1)}`;
    expect(shownUnparsedUrl(atBound)).toBe(atBound);
  });

  it('bounds a host no parser takes, and text with no scheme, as well', () => {
    const shown = shownUnparsedUrl('h'.repeat(10_000));
    expect(shown.length).toBeLessThan(600);
    expect(shown).toMatch(/… \(\d+ more characters\) …h+$/);
  });

  it('never cuts a character in two', () => {
    const shown = shownUnparsedUrl(`https://r.example:99999/${'😀'.repeat(400)}`);
    expect(shown).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(shown).toContain(`(${400 - (SHOWN_URL_PATH_CHARACTERS - 1)} more characters)`);
    expect(shown.endsWith('😀'.repeat(SHOWN_URL_END_CHARACTERS))).toBe(true);
  });
});

describe('when a URL shown in a message holds a token in its path', () => {
  it('masks a GitHub token (its documented prefix, then its fixed alphabet and length) as ***', () => {
    const token = `ghp_${'A1b2C3d4E5'.repeat(3)}123456`;
    const pat = `github_pat_${'A'.repeat(22)}_${'b'.repeat(59)}`;
    expect(shownUnparsedUrl(`https://r.example:99999/x/${token}/manifest.json`)).toBe(
      'https://r.example:99999/x/***/manifest.json',
    );
    expect(shownUnparsedUrl(`https://r.example:99999/${pat}/m.json`)).toBe(
      'https://r.example:99999/***/m.json',
    );
  });

  it('masks a token followed by an extension or other punctuation, and one percent-encoded', () => {
    const token = `ghp_${'A1b2C3d4E5'.repeat(3)}123456`;
    const pat = `github_pat_${'A'.repeat(22)}_${'b'.repeat(59)}`;
    for (const [text, shown] of <[string, string][]>[
      [`https://r.example:99999/x/${token}.json`, 'https://r.example:99999/x/***.json'],
      [`https://r.example:99999/x/${token}-old/m.json`, 'https://r.example:99999/x/***-old/m.json'],
      [`https://r.example:99999/x/${pat}.tar.gz`, 'https://r.example:99999/x/***.tar.gz'],
      [`https://r.example:99999/x/token=${token};v=1`, 'https://r.example:99999/x/token=***;v=1'],
      // `_` as %5F, a letter as %67 (g), every `_` encoded: the bytes a server decodes to the token.
      [
        `https://r.example:99999/x/${token.replace('_', '%5F')}/m.json`,
        'https://r.example:99999/x/***/m.json',
      ],
      [`https://r.example:99999/x/%67${token.slice(1)}.json`, 'https://r.example:99999/x/***.json'],
      [`https://r.example:99999/x/${pat.replaceAll('_', '%5f')}`, 'https://r.example:99999/x/***'],
      // An underscore beside it is no letter or digit: `ghp_…_old` and `…%5Fold` hold the token all the same.
      [`https://r.example:99999/x/${token}_old.json`, 'https://r.example:99999/x/***_old.json'],
      [`https://r.example:99999/x/${pat}_2/m.json`, 'https://r.example:99999/x/***_2/m.json'],
      [`https://r.example:99999/x/${token}%5Fold.json`, 'https://r.example:99999/x/***.json'],
    ])
      expect(shownUnparsedUrl(text)).toBe(shown);
    // Through the client's shownUrl too (a parsed URL keeps its percent-encoding).
    expect(shownUrl(new URL(`https://r.example/x/${token.replace('_', '%5F')}.json`))).toBe(
      'https://r.example/x/***.json',
    );
  });

  it('masks in time linear in the URL: a long run of letters, with or without an escape after it', () => {
    // A lock is untrusted input and names URLs of any length: a run found by backtracking took 86 s for
    // 100,000 letters, on every message showing such a URL.
    for (const body of ['a'.repeat(100_000), `${'a'.repeat(100_000)}%`, `${'a'.repeat(100_000)}%41`]) {
      const started = performance.now();
      const shown = shownUnparsedUrl(`https://r.example/${body}/m.json`);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(shown).toMatch(/^https:\/\/r\.example\/a+… \(\d+ more characters\) …a+(?:%(?:41)?)?\/m\.json$/);
    }
  });

  it('leaves a token-like run that is longer, or an encoded run that decodes to no token, as it is', () => {
    const token = `ghp_${'A1b2C3d4E5'.repeat(3)}123456`;
    for (const text of [
      `https://r.example:99999/x/${token}7.json`,
      `https://r.example:99999/x/a${token}`,
      `https://r.example:99999/x/${token.replace('_', '%5F')}%41`,
      'https://r.example:99999/x/my%20tool/1.0.0',
    ])
      expect(shownUnparsedUrl(text)).toBe(text);
  });

  it('leaves a segment that only resembles one (a plugin name, a shorter word) as it is', () => {
    for (const text of [
      'https://r.example:99999/plugins/ghp-tool/1.0.0',
      'https://r.example:99999/ghp_short/x',
    ])
      expect(shownUnparsedUrl(text)).toBe(text);
  });
});

describe('when a URL no parser takes has a password holding a ? or a #', () => {
  it('masks the whole user name and password, not only what comes before the ? or #', () => {
    // Cut at the first ? or #, the text held no @, and `user:hunter2` was shown, the rest hidden as a query.
    for (const [text, shown] of [
      [
        'https://user:hunter2?x@r.example:99999/p/manifest.json',
        'https://***@r.example:99999/p/manifest.json',
      ],
      [
        'https://user:hunter2#x@r.example:99999/p/manifest.json',
        'https://***@r.example:99999/p/manifest.json',
      ],
      ['https://user:a?b#c@r.example:99999', 'https://***@r.example:99999'],
      // No scheme (no `//` after `user:`): the user name is the credentials' too, not a scheme to keep.
      ['user:hunter2?x@r.example:99999/p', '***@r.example:99999/p'],
      ['user:hunter2@r.example/x', '***@r.example/x'],
    ] as const) {
      expect(shownUnparsedUrl(text)).toBe(shown);
      expect(shownUnparsedUrl(text)).not.toContain('hunter2');
    }
  });

  it('still reads an @ in a query or a fragment after a path as theirs, the host shown', () => {
    expect(shownUnparsedUrl('https://r.example:99999/p?mail=a@b.example#c@d')).toBe(
      'https://r.example:99999/p?mail=…#…',
    );
    // A password holding a / is masked as before (the last @ before any query).
    expect(shownUnparsedUrl('https://user:pa/ss@r.example:99999/p?t=1')).toBe(
      'https://***@r.example:99999/p?t=…',
    );
  });
});
