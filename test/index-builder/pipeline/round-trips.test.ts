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

/**
 * `store`, each call first shown to `before` as `<method> <key>` when it is made; a call waits for the
 * promise `before` returns, if any, before it goes to `store`.
 */
function gated(store: Store, before: (call: string) => Promise<void> | undefined): Store {
  return new Proxy(store, {
    get(target, name) {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      if (name === 'list')
        return async function* (prefix: string) {
          await before(`list ${prefix}`);
          yield* target.list(prefix);
        };
      if (typeof name === 'string' && CALLS.has(name))
        return async (...args: unknown[]) => {
          await before(`${name} ${String(args[0])}`);
          return value.apply(target, args);
        };
      return value.bind(target);
    },
  });
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

  it('opens the catalog while the log is still being opened', async () => {
    // Prepare: the log's opening waits at its first read (the log head) until the catalog read begins, so
    // the catalog is read while the log is still being opened only if its read does not wait for the log.
    // Should the catalog read never begin, the log head read goes on once the batch is judged and all that
    // follows it at once has run (setImmediate: after the promise callbacks already due), so the test fails
    // rather than hangs.
    const registry = await makeRegistry();
    await processSubmissions(registry.context, await registry.submit(await versionBundle('1.0.0')));
    const keys = await registry.submit(await versionBundle('1.1.0'));
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let logHead: 'not read yet' | 'held' | 'released' = 'not read yet';
    const letGo = (): void => {
      if (logHead === 'held') logHead = 'released';
      release();
    };
    let catalogReadWhileLogHeld = false;
    const intake = gated(registry.intake, (call) => {
      if (call === `get ${LOG_STATE_KEY}` && logHead === 'not read yet') {
        logHead = 'held';
        return released;
      }
      if (call === `get ${CATALOG_META_KEY}` && logHead === 'held') {
        catalogReadWhileLogHeld = true;
        letGo();
      }
      return undefined;
    });

    // Act
    const result = await processSubmissions(
      {
        ...registry.context,
        intake,
        deferIndexes: true,
        onStep: (step) => {
          if (step === 'judged') setImmediate(letGo);
        },
      },
      keys,
    );

    // Assess
    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(logHead).toBe('released');
    expect(catalogReadWhileLogHeld).toBe(true);
  });

  it('looks for the static files side by side, and reads the snapshot with the log head', async () => {
    const calls = await publishRecorded(true);
    const statics = [REGISTRY_PUBLIC_KEY_KEY, FAVICON_KEY, STYLE_KEY].map((key) => `site head ${key}`);
    expect(together(calls, statics[0] as string, statics[1] as string)).toBe(true);
    expect(together(calls, statics[1] as string, statics[2] as string)).toBe(true);
    expect(together(calls, `site get ${SNAPSHOT_KEY}`, 'intake get state/log.json')).toBe(true);
  });

  it('asks for the validators of the index documents it wrote side by side', async () => {
    const calls = await publishRecorded(false);
    const heads = INDEX_DOCUMENTS.map((key) => `site head ${key}`);
    for (const other of heads.slice(1)) expect(together(calls, heads[0] as string, other)).toBe(true);
  });
});
