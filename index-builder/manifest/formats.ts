/**
 * The `uri` format the manifest validator checks with: ajv-formats' full `uri` (RFC 3986), asked only when a
 * narrower pattern has not already said yes. The narrow pattern is the full one's first branch cut down to
 * what manifests carry (`scheme://host[:port]/path?query#fragment`, the host a registered name: no user
 * information, no IP literal), so everything it accepts the full pattern accepts too, and the answer is
 * always the full pattern's (test/index-builder/manifest/formats.test.ts holds the two to that).
 *
 * Why: V8 compiles a pattern on its first use, and the full one (its IPv6 forms spell out every bounded
 * repetition) took 5.7 ms to compile and 1.3 ms more to compile again natively on its second use, a tenth
 * of what `plugindex validate` spends past Node's own start-up, and in every Lambda cold start that judges a
 * manifest. The narrow pattern compiles in microseconds.
 */

/** The full pattern's first branch with `//` required, without user information or IP literals. */
const COMMON_URI =
  /^[a-z][a-z0-9+\-.]*:\/\/(?:[a-z0-9\-._~!$&'()*+,;=]|%[0-9a-f]{2})*(?::\d*)?(?:\/(?:[a-z0-9\-._~!$&'()*+,;=:@]|%[0-9a-f]{2})*)*(?:\?(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?(?:#(?:[a-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9a-f]{2})*)?$/i;

/** `full` (ajv-formats' `uri`), answered by the narrow pattern first where it can say yes. */
export function uriFormat(full: (value: string) => boolean): (value: string) => boolean {
  return (value) => COMMON_URI.test(value) || full(value);
}
