/**
 * The least a `plugindex publish` of one bundle must do as a process, whatever the code around it: load
 * openpgp.js (the registry's key is an armored OpenPGP key, and the publisher's signature is checked by it),
 * then rewrite the registry's index documents over 1 MB (index.json, index.yaml, search.json), each read,
 * hashed (SHA-256, the snapshot's digest), compressed in both codings as the pipeline compresses them
 * (`compressDocument`), and written. No validation, no signing, no plugin documents, no snapshot: a floor,
 * not a publish.
 *
 * `--without openpgp` leaves out loading openpgp.js, `--without compression` the compressed variants (the
 * documents are still read, hashed and written): what each part of the floor costs, as the difference
 * from the whole floor in the same rounds (side-by-side.bench.ts), and so what a cold publish could not be
 * faster than while it keeps that part.
 *
 * Built as the CLI is built (build/cli.mjs, by bench/publish-process.bench.ts), so it loads the same
 * bundled openpgp.js the command does and pays no TypeScript loader.
 * Usage: node FLOOR.mjs PUBLIC_DIR OUT_DIR [--without openpgp|compression]...
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compressDocument } from '../index-builder/compression.ts';
import { sha256Hex } from '../index-builder/digest.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { without: { type: 'string', multiple: true } },
});
const [publicDir, outDir] = positionals;
const without = new Set(values.without ?? []);
const unknown = [...without].filter((part) => part !== 'openpgp' && part !== 'compression');
if (!publicDir || !outDir || unknown.length > 0) {
  process.stderr.write('usage: publish-floor PUBLIC_DIR OUT_DIR [--without openpgp|compression]...\n');
  process.exit(2);
}
if (!without.has('openpgp')) await import('openpgp');
await mkdir(outDir, { recursive: true });
await Promise.all(
  ['index.json', 'index.yaml', 'search.json'].map(async (name) => {
    const body = await readFile(path.join(publicDir, name));
    sha256Hex(body);
    if (without.has('compression')) return writeFile(path.join(outDir, name), body);
    const [br, gz] = await Promise.all([compressDocument(body, 'br'), compressDocument(body, 'gzip')]);
    await Promise.all([
      writeFile(path.join(outDir, `${name}.br`), br),
      writeFile(path.join(outDir, `${name}.gz`), gz),
      writeFile(path.join(outDir, name), body),
    ]);
  }),
);
