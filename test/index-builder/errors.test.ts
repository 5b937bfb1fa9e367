/** index-builder/errors.ts: a problem named in a few words, as the Lambda handlers' logs and one-line reports show it. */
import { describe, expect, it } from 'vitest';
import { problem, problemRef } from '../../index-builder/errors.ts';

describe('problemRef', () => {
  it("shows a part's root as `bundle:/`, and no path as `/`, as a problem's line does", () => {
    // The publish function logged `BUNDLE_NOT_GZIP bundle:` and, for a problem of no path, a code and a
    // trailing space, where plugindex's lines say `bundle:/` and `/` (cli/output.ts).
    expect(problemRef(problem('BUNDLE_NOT_GZIP', 'bundle:', 'not gzip'))).toBe('BUNDLE_NOT_GZIP bundle:/');
    expect(problemRef(problem('MANIFEST_PARSE_ERROR', '', 'no JSON'))).toBe('MANIFEST_PARSE_ERROR /');
    expect(problemRef(problem('SIGNATURE_INVALID', 'envelope:/signature', 'bad'))).toBe(
      'SIGNATURE_INVALID envelope:/signature',
    );
    expect(problemRef(problem('MANIFEST_NOT_OBJECT', '/name', 'bad'))).toBe('MANIFEST_NOT_OBJECT /name');
  });
});
