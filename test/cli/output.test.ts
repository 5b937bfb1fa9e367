/**
 * How the CLI says what became of a submission (cli/output.ts `describeOutcome`): each action by what it acts on,
 * a revoke-key by the fingerprint it revokes, as `process`, `publish` and the watcher's log print it.
 */
import { describe, expect, it } from 'vitest';
import { describeOutcome } from '../../cli/output.ts';
import type { SubmissionOutcome } from '../../index-builder/pipeline/index.ts';

const FINGERPRINT = 'A1B2C3D4E5F60718293A4B5C6D7E8F9012345678';

const revocation = (fields: Partial<SubmissionOutcome> = {}): SubmissionOutcome => ({
  schema: 'plugindex/outcome/v1',
  id: 'revoke-1a2b3c4d5e6f',
  submission: 'incoming/revoke.json',
  status: 'accepted',
  action: 'revoke-key',
  fingerprint: FINGERPRINT,
  signer: 'F'.repeat(40),
  processed: '2026-11-02T00:00:00.000Z',
  generation: 4,
  seq: 7,
  problems: [],
  ...fields,
});

describe('when a revoke-key outcome is described', () => {
  it('names the fingerprint it revokes, not its upload path, in full and in one line', () => {
    expect(describeOutcome(revocation())).toEqual([
      `accepted revoke-key ${FINGERPRINT} (submission revoke-1a2b3c4d5e6f, generation 4)`,
    ]);
    expect(describeOutcome(revocation(), 'line')).toEqual([`accepted revoke-key ${FINGERPRINT}`]);
  });

  it('names it when refused too', () => {
    const refused = revocation({
      status: 'rejected',
      problems: [{ code: 'ACTION_NO_EFFECT', path: '', message: 'the key is revoked already' }],
    });
    expect(describeOutcome(refused)[0]).toBe(
      `rejected revoke-key ${FINGERPRINT} (submission revoke-1a2b3c4d5e6f)`,
    );
    expect(describeOutcome(refused, 'line')[0]).toMatch(
      new RegExp(`^rejected revoke-key ${FINGERPRINT}: ACTION_NO_EFFECT`),
    );
  });

  it('names its upload path when the outcome, recorded before the field, has no fingerprint', () => {
    const { fingerprint: _, ...recordedBefore } = revocation();
    expect(describeOutcome(recordedBefore, 'line')).toEqual(['accepted revoke-key incoming/revoke.json']);
  });
});
