/**
 * Every upload under incoming/ gets an outcome, whatever its name: spaces, a newline, non-ASCII text, bytes
 * that are not UTF-8, characters no published key may hold, a nested folder. Through the real command
 * (`plugindex process`), on the filesystem store; test/functions/hostile-uploads.test.ts does the same on S3.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRegistry } from '../../../cli/local/registry.ts';
import type { SubmissionOutcome } from '../../../index-builder/pipeline/index.ts';
import { makeBundle, validManifest } from '../../support/fixtures.ts';

const BIN = path.resolve(import.meta.dirname, '../../../cli/bin.mjs');
const run = promisify(execFile);

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'plugindex-names-'));
  await initRegistry(dir, { name: 'Names', url: 'http://127.0.0.1:9' });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const names: (string | Buffer)[] = [
  'my plugin (1).tgz',
  'a b.tgz',
  'a_b.tgz', // what the old watcher renamed "a b.tgz" to, over this one
  'line\nbreak.tgz',
  'plügin-😀.tgz',
  Buffer.from([0x6e, 0x6f, 0x74, 0xff, 0xfe, 0x2d, 0x75, 0x74, 0x66, 0x38, 0x2e, 0x74, 0x67, 0x7a]), // "not\xff\xfe-utf8.tgz"
  'x+y=z,~@.tgz',
  'back\\slash.tgz',
  'nul.tgz',
  'tool.',
  path.join('nested', 'deeper', 'inside.tgz'),
];

describe('when uploads with any names wait in incoming/', () => {
  it('gives every one an outcome, publishes them, and leaves incoming/ empty', async () => {
    const incoming = path.join(dir, 'incoming');
    await mkdir(path.join(incoming, 'nested', 'deeper'), { recursive: true });
    for (const [i, name] of names.entries()) {
      const file = Buffer.concat([Buffer.from(`${incoming}${path.sep}`), Buffer.from(name)]);
      await writeFile(file, await makeBundle({ manifest: validManifest({ name: `upload-${i}` }) }));
    }
    // An upload still being written (the documented dot-file convention) is left alone.
    await writeFile(path.join(incoming, '.in-progress.tgz'), 'partial');

    const { stdout } = await run(process.execPath, [BIN, 'process', '--registry', dir]);

    const status = path.join(dir, 'status');
    const outcomes = await Promise.all(
      (await readdir(status)).map(
        async (f) => JSON.parse(await readFile(path.join(status, f), 'utf8')) as SubmissionOutcome,
      ),
    );
    expect(outcomes).toHaveLength(names.length);
    expect(outcomes.map((o) => o.status)).toEqual(names.map(() => 'accepted'));
    expect(outcomes.map((o) => o.plugin).sort()).toEqual(names.map((_, i) => `upload-${i}`).sort());
    expect(stdout.match(/^accepted /gm)).toHaveLength(names.length);
    expect(await readdir(incoming)).toEqual(['.in-progress.tgz']);
    expect(await readdir(path.join(dir, 'processed'))).toHaveLength(names.length);
  });
});
