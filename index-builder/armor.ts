/**
 * The armor header of OpenPGP secret key material (RFC 9580 §6.2), as gpg and openpgp.js write one: one
 * spelling for the registry's check of a submitted key (`trust.ts`), the deployed trust list's
 * (`infra/publishers.ts`) and the publish command's refusal of a secret key given for a bundle. Text alone,
 * so the publish command, which only uploads, imports it without the trust module and openpgp.js.
 */
export const SECRET_KEY_ARMOR = '-----BEGIN PGP PRIVATE KEY BLOCK-----';
