/** Stream bodies for the stores' streaming tests. */
import { Buffer } from 'node:buffer';

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
