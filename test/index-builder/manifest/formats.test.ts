import * as formatsNamespace from 'ajv-formats/dist/formats.js';
import { describe, expect, it } from 'vitest';
import { uriFormat } from '../../../index-builder/manifest/formats.ts';
import validateManifest from '../../../index-builder/manifest/validator.generated.js';
import { validManifest } from '../../support/fixtures.ts';
import { seededRandom } from '../../support/random.ts';

// ajv-formats' own `uri`, as the generated validator reads it (a CommonJS module seen through ESM).
const namespace = formatsNamespace as unknown as {
  fullFormats?: Record<string, unknown>;
  default: { fullFormats: Record<string, unknown> };
};
const fullUri = (namespace.fullFormats ?? namespace.default.fullFormats).uri as (value: string) => boolean;
const uri = uriFormat(fullUri);
/** The narrow pattern's answer alone: the format with a full pattern that says no to everything. */
const isCommonUri = uriFormat(() => false);

// The pieces of a URI, each with forms RFC 3986 allows and forms it does not, in every case.
const SCHEMES = ['https', 'HTTP', 'git+ssh', 's3', 'a', 'h-t.t+p', '1http', '+x', '', 'ht tp', 'hé'];
const SEPARATORS = ['://', ':/', ':', '//', ':///', '', ':\\\\'];
const USERINFO = ['', 'user@', 'u:p@', '%41@', 'a b@', '@', 'u@h@', '%4@'];
const HOSTS = [
  'example.com',
  'EXAMPLE.com',
  'a-b_c~d',
  "!$&'()*+,;=",
  '',
  '[::1]',
  '[2001:db8::7]',
  '[v1.x]',
  '[::g]',
  '127.0.0.1',
  '256.1.1.1',
  'ex ample.com',
  'ex%2Aample',
  'ex%zz',
  'hé.com',
  'a\nb',
];
const PORTS = ['', ':', ':8080', ':80a', ':-1', '::'];
const PATHS = ['', '/', '/a/b', '//x', '/a:b@c', '/%7e/%7E', '/%7', '/a b', '/é', '/a\\b', '/[x]', '/a|b'];
const QUERIES = ['', '?', '?a=b&c=d', '?/?:@', '?%41', '?%zz', '?a b', '?é', '?a#'];
const FRAGMENTS = ['', '#', '#top', '#/?:@', '#%41', '#a b', '##', '#é'];
const PIECES = [SCHEMES, SEPARATORS, USERINFO, HOSTS, PORTS, PATHS, QUERIES, FRAGMENTS];

/** Every piece varied alone around a common URI, then random combinations, then random one-character edits. */
function corpus(): string[] {
  const strings = new Set<string>();
  const common = ['https', '://', '', 'example.com', '', '/a/b', '?a=b', '#top'];
  PIECES.forEach((forms, i) => {
    for (const form of forms) strings.add(common.map((piece, j) => (j === i ? form : piece)).join(''));
  });
  const next = seededRandom(20261205); // the same strings on every run
  // Every other combination takes each piece's first (allowed) form half the time, so many are URIs.
  for (let n = 0; n < 20_000; n++)
    strings.add(PIECES.map((forms) => forms[n % 2 === 1 && next(2) === 0 ? 0 : next(forms.length)]).join(''));
  const alphabet = 'aZ09-._~!$&\'()*+,;=:@/?#[]% \\é|"<>';
  for (const base of [...strings].slice(0, 3_000)) {
    const at = next(base.length + 1);
    strings.add(`${base.slice(0, at)}${alphabet[next(alphabet.length)]}${base.slice(at + next(2))}`);
  }
  return [...strings];
}

describe('the manifest validator’s uri format', () => {
  it('answers exactly as ajv-formats’ full uri does, over URIs of every shape', () => {
    const strings = corpus();
    const wrong = strings.filter((value) => uri(value) !== fullUri(value));
    expect(wrong).toEqual([]);
    // Over many strings, not a few repeated (an LCG in doubles, read as `seed % n`, gave 2,166 in all).
    expect(strings.length, 'distinct strings').toBeGreaterThan(15_000);
    // Both answers are reached: the narrow pattern says yes alone, and the full one is still asked.
    const narrow = strings.filter(isCommonUri);
    const fullOnly = strings.filter((value) => fullUri(value) && !isCommonUri(value));
    const refused = strings.filter((value) => !fullUri(value));
    expect(narrow.length).toBeGreaterThan(500);
    expect(fullOnly.length).toBeGreaterThan(1_000);
    expect(refused.length).toBeGreaterThan(10_000);
  });

  it('takes the usual manifest URLs by the narrow pattern alone', () => {
    for (const url of [
      'https://github.com/example/kubecost-lens',
      'https://example.com/plugins/kubecost-lens/releases/1.2.0?format=tar.gz#notes',
      'http://localhost:8080/a%20b/',
    ])
      expect(isCommonUri(url), url).toBe(true);
  });

  it('is what the generated validator checks with: a URI only the full pattern accepts passes, a bad one fails', () => {
    const ok = (homepage: string) => validateManifest(validManifest({ metadata: { homepage } }));
    expect(ok('mailto:maintainers@example.com')).toBe(true);
    expect(ok('https://user@[2001:db8::7]:8443/x')).toBe(true);
    expect(ok('https://exa mple.com')).toBe(false);
    expect(ok('no scheme')).toBe(false);
  });
});
