/**
 * The least a `plugindex publish` of one bundle must do as a process, whatever the code around it: load
 * openpgp.js (the registry's key is an armored OpenPGP key, and the publisher's signature is checked by it),
 * then rewrite the registry's index documents over 1 MB (index.json, index.yaml, search.json), each read,
 * hashed (SHA-256, the snapshot's digest), compressed in both codings as the pipeline compresses them
 * (`compressDocument`), and written. No validation, no signing, no plugin documents, no snapshot: a floor,
 * not a publish.
 *
 * Built as the CLI is built (build/cli.mjs, by bench/publish-process.bench.ts), so it loads the same
 * bundled openpgp.js the command does and pays no TypeScript loader. Usage: node FLOOR.mjs PUBLIC_DIR OUT_DIR
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { compressDocument } from '../index-builder/compression.ts';
import { sha256Hex } from '../index-builder/digest.ts';

const [publicDir, outDir] = process.argv.slice(2);
if (!publicDir || !outDir) {
  process.stderr.write('usage: publish-floor PUBLIC_DIR OUT_DIR\n');
  process.exit(2);
}
await import('openpgp');
await mkdir(outDir, { recursive: true });
await Promise.all(
  ['index.json', 'index.yaml', 'search.json'].map(async (name) => {
    const body = await readFile(path.join(publicDir, name));
    sha256Hex(body);
    const [br, gz] = await Promise.all([compressDocument(body, 'br'), compressDocument(body, 'gzip')]);
    await Promise.all([
      writeFile(path.join(outDir, `${name}.br`), br),
      writeFile(path.join(outDir, `${name}.gz`), gz),
      writeFile(path.join(outDir, name), body),
    ]);
  }),
);
