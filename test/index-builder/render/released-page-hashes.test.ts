/**
 * The pages' CSP allows every script and style a release's pages carried, not only this release's: a page
 * keeps the inline text it was published with, the policy is the server's. Two records keep that list
 * append-only: index-builder/render/released-page-hashes.ts (what the policy reads) and the checked-in
 * known-page-hashes.txt next to this test (collected from git history on 2026-12-07, one line per hash).
 * Changing a page script fails here until its hash is appended to both; replacing or dropping an earlier
 * hash in the source fails here too, since the text file still names it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PAGE_SCRIPT_HASHES } from '../../../index-builder/render/html.ts';
import {
  RELEASED_PAGE_SCRIPT_HASHES,
  RELEASED_PAGE_STYLE_HASHES,
} from '../../../index-builder/render/released-page-hashes.ts';
import { PAGE_CSP } from '../../../index-builder/serving.ts';

/** The known hashes, by kind: `script sha256-…` or `style sha256-…` per line, `#` comments. */
function readKnown(): { script: string[]; style: string[] } {
  const text = readFileSync(new URL('./known-page-hashes.txt', import.meta.url), 'utf8');
  const known = { script: [] as string[], style: [] as string[] };
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [kind, hash, ...rest] = line.split(' ');
    if ((kind !== 'script' && kind !== 'style') || hash === undefined || rest.length > 0)
      throw new Error(`known-page-hashes.txt: unreadable line ${JSON.stringify(line)}`);
    known[kind].push(hash);
  }
  return known;
}

/** The sources of one directive of a policy. */
function directive(policy: string, name: string): string[] {
  const found = policy.split('; ').find((d) => d.startsWith(`${name} `));
  return found === undefined ? [] : found.split(' ').slice(1);
}

const known = readKnown();
const HASH = /^sha256-[A-Za-z0-9+/]{43}=$/;

describe('when a release changes a page script', () => {
  it("records the script's hash among the released ones (append it here and to known-page-hashes.txt)", () => {
    for (const hash of PAGE_SCRIPT_HASHES) {
      expect(RELEASED_PAGE_SCRIPT_HASHES, `${hash} is this release's: append it`).toContain(hash);
      expect(known.script, `${hash} is this release's: append it`).toContain(hash);
    }
  });

  it('keeps every hash an earlier release served (none dropped or replaced)', () => {
    expect(known.script.length).toBeGreaterThanOrEqual(17); // as collected on 2026-12-07
    expect(known.style.length).toBeGreaterThanOrEqual(5);
    for (const hash of known.script) expect(RELEASED_PAGE_SCRIPT_HASHES).toContain(hash);
    for (const hash of known.style) expect(RELEASED_PAGE_STYLE_HASHES).toContain(hash);
  });

  it('records each hash once, in both records, well formed', () => {
    expect([...RELEASED_PAGE_SCRIPT_HASHES].sort()).toEqual([...known.script].sort());
    expect([...RELEASED_PAGE_STYLE_HASHES].sort()).toEqual([...known.style].sort());
    for (const list of [RELEASED_PAGE_SCRIPT_HASHES, RELEASED_PAGE_STYLE_HASHES]) {
      expect(new Set(list).size).toBe(list.length);
      for (const hash of list) expect(hash).toMatch(HASH);
    }
  });
});

describe('when a page published by an earlier release is served', () => {
  it('allows its script and its inline style by hash, and still nothing else inline', () => {
    const scripts = directive(PAGE_CSP, 'script-src');
    const styles = directive(PAGE_CSP, 'style-src');
    for (const hash of known.script) expect(scripts).toContain(`'${hash}'`);
    for (const hash of known.style) expect(styles).toContain(`'${hash}'`);
    expect(new Set(scripts).size).toBe(scripts.length);
    expect([...scripts, ...styles].filter((s) => !s.startsWith("'sha256-"))).toEqual(["'self'"]);
    expect(PAGE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|unsafe-hashes|strict-dynamic|\*/);
  });

  it('keeps the policy within a header every proxy passes (4 KB; 1.3 KB with 17 scripts and 5 styles)', () => {
    // Each hash is 54 bytes of every page response, and of the response function's code (10 KB, checked in
    // test/infra/edge-routing.test.ts). A reverse proxy's default buffer for a response's headers is 4 KB
    // (nginx's proxy_buffer_size on most platforms): well before that, retire hashes no page can carry.
    expect(Buffer.byteLength(PAGE_CSP)).toBeLessThanOrEqual(4096);
  });
});
