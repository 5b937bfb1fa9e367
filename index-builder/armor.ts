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
