/**
 * The armor header of OpenPGP secret key material (RFC 9580 §6.2), as gpg and openpgp.js write one: one
 * spelling for the registry's check of a submitted key (`trust.ts`), the deployed trust list's
 * (`infra/publishers.ts`) and the publish command's refusal of a secret key given for a bundle. Text alone,
 * so the publish command, which only uploads, imports it without the trust module and openpgp.js.
 */
export const SECRET_KEY_ARMOR = '-----BEGIN PGP PRIVATE KEY BLOCK-----';

/**
 * True when key text read as a public key holds secret key material: its armor says so, or the key read
 * from it (`readPublicKey`'s `secret`) is a secret key or is followed by one. Both, since a caller may pass
 * a `read` of other text (`readPublicKey` itself tests the armor, the packets of every public block too).
 */
export function isSecretKeyText(armored: string, read: { readonly secret?: true }): boolean {
  return read.secret === true || armored.includes(SECRET_KEY_ARMOR);
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
