/**
 * The lifecycle's core documents on their own: the action envelope (actions.ts), the log's chain
 * (log.ts), and a registry key rotation step (rotation.ts). The pipeline and the client build on these;
 * their own tests show them end to end.
 */
import { describe, expect, it } from 'vitest';
import {
  type Action,
  actionProblems,
  actionTimeAndPlaceProblems,
  isJsonSubmission,
  newActionProblems,
  readSignedAction,
  signAction,
} from '../../index-builder/actions.ts';
import { SubmissionError, TrustError } from '../../index-builder/errors.ts';
import {
  compareLogHeads,
  EMPTY_LOG,
  LOG_SEGMENT_ENTRIES,
  type LogEntry,
  nextEntry,
  parseSegment,
  type ReadEntry,
  renderSegment,
  segmentsBetween,
  verifyExtension,
  verifyLogRange,
  ZERO_HASH,
} from '../../index-builder/log.ts';
import type { LogHead } from '../../index-builder/model.ts';
import { readSignedRotation, signRotation, verifyRotationStep } from '../../index-builder/rotation.ts';
import { createSigner, readPublicKey, verifyDetachedSignature } from '../../index-builder/signing.ts';
import { encode, testKey } from '../support/fixtures.ts';

const REGISTRY = 'http://127.0.0.1:8080';
const NOW = new Date('2026-11-01T12:00:00Z');

function submissionProblems(fn: () => unknown): { code: string; path: string }[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(SubmissionError);
    return (error as SubmissionError).problems.map(({ code, path }) => ({ code, path }));
  }
  throw new Error('expected a SubmissionError');
}

function trustCode(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TrustError);
    return (error as TrustError).code;
  }
  throw new Error('expected a TrustError');
}

describe('a signed action', () => {
  it('is signed by the key that makes it, and read back with its identity', async () => {
    const owner = await testKey('owner');
    const signed = await signAction(
      { action: 'yank', plugin: 'kubecost-lens', version: '1.2.0', reason: 'CVE-2026-1' },
      { registry: REGISTRY, secretKey: owner.secretKey, now: NOW },
    );
    expect(isJsonSubmission(signed.bytes)).toBe(true);
    const read = readSignedAction(signed.bytes);
    expect(read.action).toMatchObject({
      action: 'yank',
      plugin: 'kubecost-lens',
      version: '1.2.0',
      registry: REGISTRY,
    });
    expect(read.digest).toBe(signed.digest);
    const key = await readPublicKey(read.key);
    expect(key.fingerprint).toBe(owner.fingerprint);
    const verified = await verifyDetachedSignature(read.text, read.signature, [key.key]);
    expect(verified.ok).toBe(true);
    // Two equal requests are two actions: the nonce makes each its own identity.
    const again = await signAction(
      { action: 'yank', plugin: 'kubecost-lens', version: '1.2.0', reason: 'CVE-2026-1' },
      { registry: REGISTRY, secretKey: owner.secretKey, now: NOW },
    );
    expect(again.digest).not.toBe(signed.digest);
  });

  it('names every fault of an action by its JSON pointer', () => {
    const problems = actionProblems({
      schema: 'plugindex/action/v1',
      registry: REGISTRY,
      created: 'yesterday',
      nonce: 'abc',
      action: 'advisory-add',
      plugin: 'Not A Name',
      advisory: {
        id: 'X-1',
        severity: 'severe',
        affected: 'not a range',
        summary: '',
        url: 'http://x',
        extra: 1,
      },
      colour: 'red',
    });
    expect(problems.map((p) => `${p.code} ${p.path}`).sort()).toEqual(
      [
        'ACTION_MALFORMED /created',
        'ACTION_MALFORMED /nonce',
        'ACTION_MALFORMED /plugin',
        'ACTION_MALFORMED /colour',
        'ACTION_MALFORMED /advisory/severity',
        'ACTION_MALFORMED /advisory/affected',
        'ACTION_MALFORMED /advisory/summary',
        'ACTION_MALFORMED /advisory/url',
        'ACTION_MALFORMED /advisory/extra',
      ].sort(),
    );
    expect(actionProblems({ schema: 'plugindex/action/v1', action: 'explode' }).map((p) => p.path)).toContain(
      '/action',
    );
    expect(actionProblems([]).map((p) => p.code)).toEqual(['ACTION_MALFORMED']);
  });

  it('refuses an advisory link with user information before its host, which reads as another host', () => {
    const body = (url: string) =>
      actionBody({
        action: 'advisory-add',
        plugin: 'demo-plugin',
        advisory: { id: 'X-1', severity: 'high', affected: '<2.0.0', summary: 's', url },
      });
    for (const url of ['https://nvd.nist.gov@evil.example/1', 'https://u:p@nvd.nist.gov/1'])
      expect(actionProblems(body(url)).map((p) => `${p.code} ${p.path}`)).toEqual([
        'ACTION_MALFORMED /advisory/url',
      ]);
    expect(actionProblems(body('https://nvd.nist.gov/1?by=a@b'))).toEqual([]);
  });

  it('never shows the password or query values of an advisory link it refuses (advisory add --url prints them)', () => {
    // `found` showed the value as typed: `advisory add --url https://u:s3cret@host/…` printed the password on
    // stderr and in --json, where every other URL refused on the command line is shown masked.
    const body = (url: string) =>
      actionBody({
        action: 'advisory-add',
        plugin: 'demo-plugin',
        advisory: { id: 'X-1', severity: 'high', affected: '<2.0.0', summary: 's', url },
      });
    for (const url of [
      'https://u:s3cret@nvd.nist.gov/1',
      'http://nvd.nist.gov/1?token=s3cret',
      'https://u:s3cret@nvd.nist.gov:99999/1',
    ]) {
      const [refused, ...more] = actionProblems(body(url));
      expect(more).toEqual([]);
      expect(refused).toMatchObject({ code: 'ACTION_MALFORMED', path: '/advisory/url' });
      expect(JSON.stringify(refused)).not.toContain('s3cret');
      expect(JSON.stringify(refused)).toContain('nvd.nist.gov');
    }
  });

  it('reads an action a registry logged before it refused what it says, and says what a new one may not', () => {
    const fixedAffected = actionBody({
      action: 'advisory-add',
      plugin: 'demo-plugin',
      advisory: { id: 'X-1', severity: 'high', affected: '<2.0.0', fixed: '1.5.0', summary: 's' },
    });
    const itself = actionBody({
      action: 'deprecate',
      plugin: 'demo-plugin',
      message: 'm',
      replacement: 'demo-plugin',
    });
    // Read as ever (its envelope under log/actions/, replayed by verify --url and rebuild): never malformed.
    expect(actionProblems(fixedAffected)).toEqual([]);
    expect(actionProblems(itself)).toEqual([]);
    expect(newActionProblems(fixedAffected as unknown as Action)).toEqual([
      expect.objectContaining({
        code: 'ADVISORY_FIXED_AFFECTED',
        path: '/advisory/fixed',
        message: '1.5.0 is in the affected range <2.0.0',
        found: '1.5.0',
      }),
    ]);
    expect(newActionProblems(itself as unknown as Action)).toEqual([
      expect.objectContaining({ code: 'DEPRECATION_REPLACES_ITSELF', path: '/replacement' }),
    ]);
    // A prerelease of the release the range ends before is in it (`<2.0.0` holds 2.0.0-rc.1, clients refuse
    // it as vulnerable): said so, as node-semver's own default reads such a range without prereleases.
    expect(
      newActionProblems(
        actionBody({
          action: 'advisory-add',
          plugin: 'demo-plugin',
          advisory: { id: 'X-1', severity: 'high', affected: '<2.0.0', fixed: '2.0.0-rc.1', summary: 's' },
        }) as unknown as Action,
      ),
    ).toEqual([
      expect.objectContaining({
        code: 'ADVISORY_FIXED_AFFECTED',
        message:
          '2.0.0-rc.1 is in the affected range <2.0.0 (a prerelease comes before its release, and clients hold it affected: end the range before it, <2.0.0-rc.1)',
      }),
    ]);
    // Fixed in a version past the range, before it (a regression), or a prerelease past it: each stands.
    for (const [affected, fixed] of [
      ['<2.0.0', '2.0.0'],
      ['>=1.0.0 <1.2.3', '0.9.0'],
      ['<=1.2.2', '1.2.3-rc.1'],
    ])
      expect(
        newActionProblems(
          actionBody({
            action: 'advisory-add',
            plugin: 'demo-plugin',
            advisory: { id: 'X-1', severity: 'high', affected, fixed, summary: 's' },
          }) as unknown as Action,
        ),
        `${affected} fixed in ${fixed}`,
      ).toEqual([]);
    // A ranged deprecation pointing at another plugin, or none, stands.
    expect(
      newActionProblems(
        actionBody({
          action: 'deprecate',
          plugin: 'demo-plugin',
          message: 'm',
          replacement: 'demo-next',
        }) as unknown as Action,
      ),
    ).toEqual([]);
  });

  it('refuses an envelope that is not one, saying where', () => {
    expect(
      submissionProblems(() => readSignedAction(encode('{"schema":"plugindex/signed-action/v1"}'))),
    ).toEqual([
      { code: 'ACTION_MALFORMED', path: 'envelope:/action' },
      { code: 'ACTION_MALFORMED', path: 'envelope:/signature' },
      { code: 'ACTION_MALFORMED', path: 'envelope:/key' },
    ]);
    expect(submissionProblems(() => readSignedAction(encode('{not json')))).toEqual([
      { code: 'ACTION_MALFORMED', path: 'envelope:' },
    ]);
    expect(submissionProblems(() => readSignedAction(new Uint8Array(200 * 1024).fill(0x20)))).toEqual([
      { code: 'ACTION_TOO_LARGE', path: 'envelope:' },
    ]);
    const inner = JSON.stringify({
      schema: 'plugindex/signed-action/v1',
      action: '{"schema":1}',
      signature: '',
      key: '',
    });
    expect(submissionProblems(() => readSignedAction(encode(inner))).map((p) => p.path)).toContain('/schema');
  });

  it('refuses a key repeated in the action or the envelope, naming it', () => {
    const envelope = (action: string, extra = '') =>
      encode(
        `{"schema":"plugindex/signed-action/v1",${extra}"action":${JSON.stringify(action)},"signature":"","key":""}`,
      );
    const repeated = `{"schema":"plugindex/action/v1","action":"yank","plugin":"kubecost-lens","version":"1.0.0","version":"2.0.0"}`;
    expect(submissionProblems(() => readSignedAction(envelope(repeated)))).toEqual([
      { code: 'ACTION_MALFORMED', path: '/version' },
    ]);
    const once = repeated.replace(',"version":"2.0.0"', '');
    expect(submissionProblems(() => readSignedAction(envelope(once, '"signature":"x",')))).toEqual([
      { code: 'ACTION_MALFORMED', path: 'envelope:/signature' },
    ]);
  });

  it('is refused by another registry, and when older than a week or from the future', async () => {
    const owner = await testKey('owner');
    const { action } = await signAction(
      { action: 'unyank', plugin: 'kubecost-lens', version: '1.2.0' },
      { registry: REGISTRY, secretKey: owner.secretKey, now: NOW },
    );
    expect(actionTimeAndPlaceProblems(action, REGISTRY, NOW)).toEqual([]);
    expect(actionTimeAndPlaceProblems(action, 'https://other.example', NOW).map((p) => p.code)).toEqual([
      'ACTION_WRONG_REGISTRY',
    ]);
    const later = new Date(NOW.getTime() + 8 * 86_400_000);
    const earlier = new Date(NOW.getTime() - 3600_000);
    expect(actionTimeAndPlaceProblems(action, REGISTRY, later).map((p) => p.code)).toEqual([
      'ACTION_EXPIRED',
    ]);
    expect(actionTimeAndPlaceProblems(action, REGISTRY, earlier).map((p) => p.code)).toEqual([
      'ACTION_EXPIRED',
    ]);
  });

  it('tells a JSON envelope from a gzip bundle', () => {
    expect(isJsonSubmission(encode('\n  {"a":1}'))).toBe(true);
    expect(isJsonSubmission(new Uint8Array([0x1f, 0x8b, 8, 0]))).toBe(false);
    expect(isJsonSubmission(new Uint8Array())).toBe(false);
  });
});

/** A log of `n` entries, as segments of lines, and its head. */
function buildLog(n: number): { entries: ReadEntry[]; head: LogHead } {
  let head: LogHead = EMPTY_LOG;
  const entries: ReadEntry[] = [];
  for (let i = 0; i < n; i++) {
    const made = nextEntry(head, {
      time: NOW.toISOString(),
      type: i % 2 ? 'yank' : 'publish',
      plugin: `plugin-${i}`,
      version: '1.0.0',
      signer: 'A'.repeat(40),
      digest: String(i).padStart(64, '0'),
    });
    head = made.head;
    entries.push(parseSegment(renderSegment([made.line]), 0)[0] as ReadEntry);
  }
  return { entries, head };
}

function withLine(entry: LogEntry): ReadEntry {
  const line = JSON.stringify(entry);
  return parseSegment(renderSegment([line]), 0)[0] as ReadEntry;
}

describe('the log', () => {
  it('chains each entry to the one before, up to the head', () => {
    const { entries, head } = buildLog(5);
    expect(entries[0]?.entry.prev).toBe(ZERO_HASH);
    expect(entries[3]?.entry.prev).toBe(entries[2]?.hash);
    expect(head).toEqual({ length: 5, head: entries[4]?.hash });
    verifyLogRange(entries, { from: 0, prev: ZERO_HASH, to: head });
    verifyLogRange(entries.slice(2), { from: 2, prev: entries[1]?.hash as string, to: head });
  });

  it('refuses an altered entry, a reordered one, and a log cut short, each by its code', () => {
    const { entries, head } = buildLog(4);
    const altered = [...entries];
    altered[1] = withLine({ ...(entries[1]?.entry as LogEntry), version: '9.9.9' });
    expect(trustCode(() => verifyLogRange(altered, { from: 0, prev: ZERO_HASH, to: head }))).toBe(
      'LOG_ENTRY_ALTERED',
    );
    const lastAltered = [...entries];
    lastAltered[3] = withLine({
      ...(entries[3]?.entry as LogEntry),
      plugin: 'other',
    });
    expect(trustCode(() => verifyLogRange(lastAltered, { from: 0, prev: ZERO_HASH, to: head }))).toBe(
      'LOG_ENTRY_ALTERED',
    );
    const reordered = [entries[0], entries[2], entries[1], entries[3]] as ReadEntry[];
    expect(trustCode(() => verifyLogRange(reordered, { from: 0, prev: ZERO_HASH, to: head }))).toBe(
      'LOG_REORDERED',
    );
    expect(trustCode(() => verifyLogRange(entries.slice(0, 3), { from: 0, prev: ZERO_HASH, to: head }))).toBe(
      'LOG_TRUNCATED',
    );
  });

  it('tells a log that extends a remembered head from one that was rewritten or cut', () => {
    const { entries, head } = buildLog(6);
    const seen: LogHead = { length: 3, head: entries[2]?.hash as string };
    expect(compareLogHeads(seen, head)).toBe('extends');
    expect(compareLogHeads(seen, seen)).toBe('same');
    verifyExtension(seen, entries.slice(2), head);
    verifyExtension(EMPTY_LOG, entries, head);
    expect(trustCode(() => compareLogHeads(seen, { length: 2, head: entries[1]?.hash as string }))).toBe(
      'LOG_TRUNCATED',
    );
    expect(trustCode(() => compareLogHeads(seen, undefined))).toBe('LOG_TRUNCATED');
    expect(trustCode(() => compareLogHeads(seen, { length: 3, head: entries[1]?.hash as string }))).toBe(
      'LOG_FORKED',
    );
    // Another history of the same length and more: the entry the client saw is not there.
    const other = buildLog(7);
    const forked = [...other.entries];
    forked[2] = withLine({
      ...(other.entries[2]?.entry as LogEntry),
      digest: 'f'.repeat(64),
    });
    expect(trustCode(() => verifyExtension(seen, forked.slice(2), other.head))).toBe('LOG_FORKED');
  });

  it('reads only whole lines of the right form', () => {
    expect(trustCode(() => parseSegment(encode('{"seq":0}'), 0))).toBe('LOG_MALFORMED');
    expect(trustCode(() => parseSegment(encode('{"seq":0}\n'), 0))).toBe('LOG_MALFORMED');
    expect(trustCode(() => parseSegment(encode('nope\n'), 0))).toBe('LOG_MALFORMED');
    expect(parseSegment(new Uint8Array(), 0)).toEqual([]);
    // An action's entry says when its signer made it; a reader takes it, and refuses it as anything but a time.
    const made = nextEntry(EMPTY_LOG, {
      time: NOW.toISOString(),
      type: 'deprecate',
      plugin: 'demo',
      signer: 'A'.repeat(40),
      digest: '0'.repeat(64),
      created: '2026-11-01T11:59:00.000Z',
    });
    expect(made.line).toContain(`"digest":"${'0'.repeat(64)}","created":"2026-11-01T11:59:00.000Z"`);
    expect(parseSegment(encode(`${made.line}\n`), 0)[0]?.entry.created).toBe('2026-11-01T11:59:00.000Z');
    // Strings Date.parse takes for a time ("5": May 2001, "2026": its first instant) are not one an action has.
    for (const created of ['5', '"yesterday"', '"5"', '"2026"', '"March 7, 2026"'])
      expect(
        trustCode(() =>
          parseSegment(encode(`${made.line.replace('"2026-11-01T11:59:00.000Z"', created)}\n`), 0),
        ),
      ).toBe('LOG_MALFORMED');
    expect([...segmentsBetween(LOG_SEGMENT_ENTRIES - 1, LOG_SEGMENT_ENTRIES + 1)]).toEqual([0, 1]);
    expect([...segmentsBetween(5, 5)]).toEqual([]);
  });
});

describe('a registry key rotation', () => {
  async function signers() {
    const [a, b, c] = await Promise.all([
      testKey('rotation-a'),
      testKey('rotation-b'),
      testKey('rotation-c'),
    ]);
    return Promise.all([a, b, c].map((k) => createSigner(k.secretKey)));
  }

  it('is followed from the key held to the next, each step signed by both', async () => {
    const [a, b, c] = await signers();
    if (!a || !b || !c) throw new Error('keys');
    const first = await signRotation({ registry: REGISTRY, sequence: 1, previous: a, next: b, now: NOW });
    const second = await signRotation({ registry: REGISTRY, sequence: 2, previous: b, next: c, now: NOW });
    const held = (await readPublicKey(a.publicKey)).key;
    const step1 = await verifyRotationStep(readSignedRotation(first.bytes), {
      current: held,
      sequence: 1,
      registry: REGISTRY,
    });
    expect(step1.fingerprint).toBe(b.fingerprint);
    const step2 = await verifyRotationStep(readSignedRotation(second.bytes), {
      current: step1.key,
      sequence: 2,
    });
    expect(step2.fingerprint).toBe(c.fingerprint);
  });

  it('is refused when a signature, the sequence, the registry or the key held does not fit', async () => {
    const [a, b, c] = await signers();
    if (!a || !b || !c) throw new Error('keys');
    const held = (await readPublicKey(a.publicKey)).key;
    const good = await signRotation({ registry: REGISTRY, sequence: 1, previous: a, next: b, now: NOW });
    const read = readSignedRotation(good.bytes);
    const refused = async (promise: Promise<unknown>) => {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TrustError);
      return (error as TrustError).code;
    };
    // Signed by the old key only: the new key's signature is the old one's again.
    const oldOnly = { ...read, signatures: [read.signatures[0], read.signatures[0]] as [string, string] };
    expect(await refused(verifyRotationStep(oldOnly, { current: held, sequence: 1 }))).toBe(
      'KEY_ROTATION_BROKEN',
    );
    const newOnly = { ...read, signatures: [read.signatures[1], read.signatures[1]] as [string, string] };
    expect(await refused(verifyRotationStep(newOnly, { current: held, sequence: 1 }))).toBe(
      'KEY_ROTATION_BROKEN',
    );
    expect(await refused(verifyRotationStep(read, { current: held, sequence: 2 }))).toBe(
      'KEY_ROTATION_BROKEN',
    );
    expect(
      await refused(verifyRotationStep(read, { current: held, sequence: 1, registry: 'https://x.example' })),
    ).toBe('KEY_ROTATION_BROKEN');
    const fromC = (await readPublicKey(c.publicKey)).key;
    expect(await refused(verifyRotationStep(read, { current: fromC, sequence: 1 }))).toBe(
      'KEY_ROTATION_BROKEN',
    );
    expect(() => readSignedRotation(encode('{}'))).toThrow(TrustError);
    // A key repeated, in the envelope or in the rotation it carries.
    const text = new TextDecoder().decode(good.bytes);
    const doubled = text.replace('"schema":', '"schema":"other","schema":');
    expect(doubled).not.toBe(text);
    expect(() => readSignedRotation(encode(doubled))).toThrow(/repeats the key at \/schema/);
    const inner = JSON.parse(text) as { rotation: string };
    const twice = JSON.stringify({
      ...JSON.parse(text),
      rotation: inner.rotation.replace('"sequence":', '"sequence":2,"sequence":'),
    });
    expect(twice).not.toBe(text);
    expect(() => readSignedRotation(encode(twice))).toThrow(/repeats the key at \/sequence/);
  });
});

/** An unsigned action of this registry, now, with `fields` (its `action` and what that action says). */
function actionBody(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    schema: 'plugindex/action/v1',
    registry: REGISTRY,
    created: NOW.toISOString(),
    nonce: 'a'.repeat(32),
    ...fields,
  };
}
