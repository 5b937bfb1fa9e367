/** Stream bodies for the stores' streaming tests. */
import { Buffer } from 'node:buffer';
import type { ServerResponse } from 'node:http';

/** Deterministic bytes that do not repeat at any part boundary. */
export function patternBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7919 + (i >>> 13)) % 251;
  return bytes;
}

/** `bytes` as a stream of `chunk`-sized pieces; with `failAfter`, throws after that many bytes. */
export async function* chunksOf(
  bytes: Uint8Array,
  chunk: number,
  failAfter?: number,
): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += chunk) {
    if (failAfter !== undefined && at >= failAfter) throw new Error('the upload connection dropped');
    yield bytes.subarray(at, at + chunk);
  }
}

export async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Writes a gzip body of 64 MiB of empty stored deflate blocks, with a decoded byte every 4 MiB: 16 bytes for
 * a client whose cap counts decoded bytes only, fast enough for any speed rule. Written as the client takes
 * it, stopping once it hangs up; `onBytes` hears every chunk's size.
 */
export async function writePaddedGzip(
  response: ServerResponse,
  contentType: string,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const header = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
  const emptyBlock = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);
  const oneByteBlock = Buffer.from([0x00, 0x01, 0x00, 0xfe, 0xff, 0x78]);
  const padding = Buffer.concat(Array.from({ length: (1024 * 1024) / emptyBlock.length }, () => emptyBlock));
  response.writeHead(200, { 'content-type': contentType, 'content-encoding': 'gzip' });
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve) => {
      onBytes(chunk.byteLength);
      if (response.write(chunk)) resolve();
      else response.once('drain', resolve);
    });
  await write(header);
  for (let i = 0; i < 64 && !response.destroyed; i++) {
    await write(padding);
    if (i % 4 === 3) await write(oneByteBlock);
  }
  response.end();
}
