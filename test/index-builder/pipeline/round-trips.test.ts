/**
 * A publish over stores whose every call is answered a moment later, as S3 answers in tens of
 * milliseconds: what does not depend on each other is asked side by side, so a publish waits for fewer
 * round trips one after another (bench/store-latency.ts measures what that saves). Each pair below was
 * asked one after the other before.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  CATALOG_META_KEY,
  FAVICON_KEY,
  INDEX_DOCUMENTS,
  REGISTRY_PUBLIC_KEY_KEY,
  SNAPSHOT_KEY,
  STYLE_KEY,
} from '../../../index-builder/layout.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { LOG_STATE_KEY } from '../../../index-builder/pipeline/log-writer.ts';
import type { Store } from '../../../index-builder/store.ts';
import { makeRegistry, versionBundle } from '../../support/fixtures.ts';

/** One call to a store: when it began and ended, counted in calls begun and ended, not in time. */
interface Call {
  readonly call: string;
  readonly begun: number;
  ended: number;
}

const CALLS = new Set(['get', 'head', 'put', 'delete']);

/** `store`, each call answered 3 ms later and recorded in `calls` as `<tag> <method> <key>`. */
function recorded(store: Store, tag: string, calls: Call[], clock: { now: number }): Store {
  const begin = (call: string): Call => {
    const entry = { call, begun: ++clock.now, ended: Number.POSITIVE_INFINITY };
    calls.push(entry);
    return entry;
  };
  return new Proxy(store, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      if (name === 'list')
        return async function* (prefix: string) {
          const entry = begin(`${tag} list ${prefix}`);
          await sleep(3);
          try {
            yield* target.list(prefix);
          } finally {
            entry.ended = ++clock.now;
          }
        };
      if (typeof name === 'string' && CALLS.has(name))
        return async (...args: unknown[]) => {
          const entry = begin(`${tag} ${name} ${String(args[0])}`);
          await sleep(3);
          try {
            return await value.apply(target, args);
          } finally {
            entry.ended = ++clock.now;
          }
        };
      return value.bind(target);
    },
  });
}

/** Whether some call named `a` and some call named `b` were in flight at once. */
function together(calls: readonly Call[], a: string, b: string): boolean {
  const as = calls.filter((c) => c.call === a);
  const bs = calls.filter((c) => c.call === b);
  expect(as.length, a).toBeGreaterThan(0);
  expect(bs.length, b).toBeGreaterThan(0);
  return as.some((x) => bs.some((y) => x !== y && x.begun < y.ended && y.begun < x.ended));
}

async function publishRecorded(deferIndexes: boolean) {
  const registry = await makeRegistry();
  await processSubmissions(registry.context, await registry.submit(await versionBundle('1.0.0')));
  const keys = await registry.submit(await versionBundle('1.1.0'));
  const calls: Call[] = [];
  const clock = { now: 0 };
  const result = await processSubmissions(
    {
      ...registry.context,
      site: recorded(registry.site, 'site', calls, clock),
      intake: recorded(registry.intake, 'intake', calls, clock),
      deferIndexes,
    },
    keys,
  );
  expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
  return calls;
}

describe('when a publish meets a store that answers each call a moment later', () => {
  it('plans the batch while it reads the keys it trusts', async () => {
    const calls = await publishRecorded(true);
    const head = calls.find((c) => c.call.startsWith('intake head incoming/'))?.call as string;
    expect(together(calls, head, 'site list keys/rotation/')).toBe(true);
  });

  it('opens the catalog side by side with the snapshot it checks, before the log is opened', async () => {
    // The catalog is what the batch checks what it reads back against (published.ts): it is read at once,
    // beside the published snapshot, never after the log's opening.
    const calls = await publishRecorded(true);
    expect(together(calls, `site get ${SNAPSHOT_KEY}`, `intake get ${CATALOG_META_KEY}`)).toBe(true);
    const first = (call: string) => calls.find((c) => c.call === call)?.begun ?? Number.POSITIVE_INFINITY;
    expect(first(`intake get ${CATALOG_META_KEY}`)).toBeLessThan(first(`intake get ${LOG_STATE_KEY}`));
  });

  it('looks for the static files side by side, and reads the snapshot it commits over once', async () => {
    const calls = await publishRecorded(true);
    const statics = [REGISTRY_PUBLIC_KEY_KEY, FAVICON_KEY, STYLE_KEY].map((key) => `site head ${key}`);
    expect(together(calls, statics[0] as string, statics[1] as string)).toBe(true);
    expect(together(calls, statics[1] as string, statics[2] as string)).toBe(true);
    // Checked as the commit reads it, then handed to the snapshot's writing rather than read again: at the
    // batch's start (with the catalog), as the log opens, and at the commit.
    expect(calls.filter((c) => c.call === `site get ${SNAPSHOT_KEY}`)).toHaveLength(3);
  });

  it.each([
    ['deferred', true],
    ['with its index documents', false],
  ])(
    '%s: writes the record of what it will publish beside the log, and reads the log head beside the snapshot it commits over',
    async (_, deferIndexes) => {
      // The catalog's record of the plugin documents (published.ts) need only precede them, not follow the log;
      // the log's head, which the snapshot vouches for, is this writer's, written before the commit begins.
      const calls = await publishRecorded(deferIndexes);
      const put = (key: string) => calls.filter((c) => c.call === `intake put ${key}`);
      const [record] = put(CATALOG_META_KEY);
      const logHead = put(LOG_STATE_KEY).at(-1);
      expect(record && logHead && record.begun < logHead.ended).toBe(true);
      const commitRead = calls.filter((c) => c.call === `site get ${SNAPSHOT_KEY}`).at(-1) as Call;
      const headRead = calls.filter((c) => c.call === `intake get ${LOG_STATE_KEY}`).at(-1) as Call;
      expect(headRead.begun < commitRead.ended && commitRead.begun < headRead.ended).toBe(true);
    },
  );

  it('asks for the validators of the index documents it wrote side by side', async () => {
    const calls = await publishRecorded(false);
    const heads = INDEX_DOCUMENTS.map((key) => `site head ${key}`);
    for (const other of heads.slice(1)) expect(together(calls, heads[0] as string, other)).toBe(true);
  });
});
