import { Buffer } from 'node:buffer';

/**
 * The armor header of OpenPGP secret key material (RFC 9580 §6.2), as gpg and openpgp.js write one: one
 * spelling for the registry's check of a submitted key (`trust.ts`), the deployed trust list's
 * (`infra/publishers.ts`) and the publish command's refusal of a secret key given for a bundle. Text alone,
 * so the publish command, which only uploads, imports it without the trust module and openpgp.js.
 */
export const SECRET_KEY_ARMOR = '-----BEGIN PGP PRIVATE KEY BLOCK-----';

/**
 * True when key text read as a public key holds secret key material: its armor says so, a block of it
 * holds a secret key or secret subkey packet (a public primary key's block too), or the key read from it
 * (`readPublicKey`'s `secret`) is a secret key or is followed by one. All, since a caller may pass a `read`
 * of other text (`readPublicKey` itself tests the armor and the packets of every block too).
 */
export function isSecretKeyText(armored: string, read: { readonly secret?: true }): boolean {
  return read.secret === true || armored.includes(SECRET_KEY_ARMOR) || armoredHoldsSecretKeyPackets(armored);
}

/**
 * True when `bytes` may be binary OpenPGP packets (RFC 9580 §4.2: every packet header has its top bit set):
 * their first byte is a packet header, and no byte order mark of text (UTF-8, UTF-16), whose first bytes
 * have it set too. Armored text starts with ASCII, so a key file that is text needs no look at its packets:
 * a caller asks this before loading openpgp.js for `findBinarySecretKey` (signing.ts), which a plugin set's
 * install with nothing to do otherwise loads for its providers' armored key files alone.
 */
export function mayBeBinaryPackets(bytes: Uint8Array): boolean {
  const [first = 0, second = 0, third = 0] = bytes;
  if ((first & 0x80) === 0) return false;
  const utf8Mark = first === 0xef && second === 0xbb && third === 0xbf;
  const utf16Mark = (first === 0xff && second === 0xfe) || (first === 0xfe && second === 0xff);
  return !utf8Mark && !utf16Mark;
}

/** The Secret-Key (5) and Secret-Subkey (7) packet tags (RFC 9580 §5.5.1.3, §5.5.1.4). */
const SECRET_KEY_TAGS = new Set([5, 7]);

/**
 * The tags of the OpenPGP packets in `bytes`, read by their headers alone (RFC 9580 §4.2: the current
 * format and the legacy one), until a byte is no packet header or a length runs past the end.
 */
export function* packetTags(bytes: Uint8Array): Generator<number> {
  let at = 0;
  while (at < bytes.byteLength) {
    const first = bytes[at] as number;
    if ((first & 0x80) === 0) return;
    const current = (first & 0x40) !== 0;
    yield current ? first & 0x3f : (first >> 2) & 0x0f;
    at += 1;
    let partial = true;
    while (partial) {
      partial = false;
      let length: number;
      if (!current) {
        const size = [1, 2, 4, 0][first & 0x03] as number;
        if (size === 0) return; // the legacy indeterminate length: to the end
        length = 0;
        for (let i = 0; i < size; i++) length = length * 256 + (bytes[at + i] ?? 0);
        at += size;
      } else {
        const o1 = bytes[at] ?? 0;
        if (o1 < 192) [length, at] = [o1, at + 1];
        else if (o1 < 224) [length, at] = [((o1 - 192) << 8) + (bytes[at + 1] ?? 0) + 192, at + 2];
        else if (o1 === 255) {
          length = 0;
          for (let i = 1; i <= 4; i++) length = length * 256 + (bytes[at + i] ?? 0);
          at += 5;
        } else [length, partial, at] = [2 ** (o1 & 0x1f), true, at + 1];
      }
      at += length;
      if (at > bytes.byteLength) return;
    }
  }
}

/**
 * True when binary OpenPGP packets hold a secret key or a secret subkey packet, anywhere: a public key
 * carrying a secret subkey (a public primary key's packets spliced with `gpg --export-secret-subkeys`'s)
 * is secret key material given as much as a secret primary key is, though openpgp.js reads it as no key.
 */
export function holdsSecretKeyPackets(bytes: Uint8Array): boolean {
  for (const tag of packetTags(bytes)) if (SECRET_KEY_TAGS.has(tag)) return true;
  return false;
}

const ARMORED_BLOCK = /-----BEGIN PGP [A-Z ]+-----[ \t]*\r?\n([\s\S]*?)-----END PGP [A-Z ]+-----/g;

/**
 * True when an armored block of `text` (whatever its header says: a PUBLIC KEY BLOCK may hold secret
 * packets) holds a secret key or secret subkey packet (`holdsSecretKeyPackets`): its Radix-64 decoded here,
 * with no openpgp.js loaded.
 */
export function armoredHoldsSecretKeyPackets(text: string): boolean {
  for (const packets of dearmoredBlocks(text)) if (holdsSecretKeyPackets(packets)) return true;
  return false;
}

/**
 * The packets of each armored block of `text`, in order, as openpgp.js reads armor (its checksum not
 * checked: a caller judging the key by them judges only what openpgp.js would read), with no openpgp.js
 * loaded.
 */
export function* dearmoredBlocks(text: string): Generator<Buffer> {
  for (const [, body = ''] of text.matchAll(ARMORED_BLOCK)) {
    // As openpgp.js reads armor: every line before the first blank one is a header, whatever it holds (one
    // without a colon is only logged), and every line after it data but the checksum, which starts `=`
    // (RFC 9580 §6.2), characters outside Radix-64 skipped. No blank line: openpgp.js reads no key, and
    // only the lines that cannot be headers are taken.
    const lines = body.split('\n');
    const blank = lines.findIndex((line) => ARMOR_BLANK_LINE.test(line));
    const data = blank < 0 ? lines.filter((line) => !line.includes(':')) : lines.slice(blank + 1);
    const radix64 = data.filter((line) => !line.startsWith('='));
    yield Buffer.from(radix64.join(''), 'base64');
  }
}

/** A blank line as openpgp.js reads one (its `reEmptyLine`): white space alone. */
const ARMOR_BLANK_LINE = /^[ \f\r\t\u00a0\u2000-\u200a\u202f\u205f\u3000]*$/;
