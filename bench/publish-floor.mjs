/**
 * The least a `plugindex publish` of one bundle must do as a process, whatever the code around it: load
 * openpgp.js (the registry's key is an armored OpenPGP key, and the publisher's signature is checked by it),
 * then rewrite the registry's index documents over 1 MB (index.json, index.yaml, search.json), each read,
 * hashed (SHA-256, the snapshot's digest), compressed in both codings at the levels the pipeline uses, and
 * written. No validation, no signing, no plugin documents, no snapshot: a floor, not a publish.
 *
 * Plain JavaScript with Node's built-ins only, so the process pays no loader of TypeScript: run by
 * bench/publish-process.bench.ts beside `plugindex publish`, which passes the levels it imports from
 * index-builder/compression.ts. Usage:
 *   node bench/publish-floor.mjs PUBLIC_DIR OUT_DIR BROTLI_QUALITY BROTLI_WINDOW_BITS BROTLI_SIZE_HINT GZIP_LEVEL
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

const [publicDir, outDir, quality, windowBits, sizeHint, gzipLevel] = process.argv.slice(2);
if (!publicDir || !outDir || !gzipLevel) {
  process.stderr.write(
    'usage: publish-floor.mjs PUBLIC_DIR OUT_DIR QUALITY WINDOW_BITS SIZE_HINT GZIP_LEVEL\n',
  );
  process.exit(2);
}
// The minified build: the least of it to parse (the package's exports name only its unminified one).
await import(
  path.join(import.meta.dirname, '..', 'node_modules', 'openpgp', 'dist', 'node', 'openpgp.min.mjs')
);
await mkdir(outDir, { recursive: true });
const compress = (body, encoding) =>
  new Promise((resolve, reject) => {
    const done = (error, result) => (error ? reject(error) : resolve(result));
    if (encoding === 'br') {
      const params = {
        [zlib.constants.BROTLI_PARAM_QUALITY]: Number(quality),
        [zlib.constants.BROTLI_PARAM_LGWIN]: Number(windowBits),
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Math.min(body.byteLength, Number(sizeHint)),
      };
      zlib.brotliCompress(body, { params }, done);
    } else zlib.gzip(body, { level: Number(gzipLevel) }, done);
  });
await Promise.all(
  ['index.json', 'index.yaml', 'search.json'].map(async (name) => {
    const body = await readFile(path.join(publicDir, name));
    createHash('sha256').update(body).digest('hex');
    const [br, gz] = await Promise.all([compress(body, 'br'), compress(body, 'gzip')]);
    await Promise.all([
      writeFile(path.join(outDir, `${name}.br`), br),
      writeFile(path.join(outDir, `${name}.gz`), gz),
      writeFile(path.join(outDir, name), body),
    ]);
  }),
);
