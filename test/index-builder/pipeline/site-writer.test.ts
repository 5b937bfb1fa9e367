/**
 * The pipeline's bounded work (pipeline/site-writer.ts): `BoundedWork` starts work as it is handed over,
 * never more than its limit at once, and `settled` returns only when nothing it started still runs. The
 * files of one version, and a plugin's document, signature and page, are written side by side, and a step
 * that fails throws only once none of its writes is still running (`allWritten`).
 */
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../../index-builder/errors.ts';
import { processSubmissions } from '../../../index-builder/pipeline/index.ts';
import { allWritten, BoundedWork, writingAfter } from '../../../index-builder/pipeline/site-writer.ts';
import type { Signer } from '../../../index-builder/signing.ts';
import { encode, makeBundle, makeRegistry, validManifest } from '../../support/fixtures.ts';
import { MemoryStore } from '../../support/memory-store.ts';

/** A promise and its resolver, to finish work when the test says. */
function gate(): { readonly promise: Promise<void>; open(): void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('when work is handed to BoundedWork', () => {
  it('runs at most its limit at once, in the order handed, each slot passed on as work ends', async () => {
    const work = new BoundedWork(2);
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    let running = 0;
    let most = 0;
    for (const [i, g] of gates.entries()) {
      work.run(async () => {
        started.push(i);
        running += 1;
        most = Math.max(most, running);
        await g.promise;
        running -= 1;
      });
    }
    await turn();
    expect(started).toEqual([0, 1]);

    gates[1]?.open();
    await turn();
    // Handed over while a slot is free again: it starts behind the waiting ones, never beside them.
    work.run(async () => {
      started.push(5);
    });
    await turn();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    await work.settled();

    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  it('keeps a failure for settled however long before it is asked, never leaving it unhandled', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const work = new BoundedWork(2);
      work.run(async () => {
        throw new Error('early');
      });
      await turn();
      await turn();

      await expect(work.settled()).rejects.toThrow('early');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('settles once everything started has, then throws the first failure', async () => {
    const work = new BoundedWork(4);
    const slow = gate();
    let finished = false;
    work.run(async () => {
      throw new Error('first');
    });
    work.run(async () => {
      await slow.promise;
      finished = true;
    });
    work.run(async () => {
      throw new Error('second');
    });

    const settled = work.settled();
    await turn();
    slow.open();

    await expect(settled).rejects.toThrow('first');
    expect(finished).toBe(true);
  });
});

describe('allWritten', () => {
  it('waits for every write, then throws the first failure', async () => {
    const slow = gate();
    let finished = false;
    const written = allWritten([
      Promise.reject(new StoreError('STORE_IO', 'a.json', 'first')),
      slow.promise.then(() => {
        finished = true;
      }),
      Promise.reject(new StoreError('STORE_IO', 'b.json', 'second')),
    ]);
    await turn();
    slow.open();

    const error = await written.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('STORE_IO');
    expect((error as StoreError).key).toBe('a.json');
    expect(finished).toBe(true);
  });
});

describe("a publish's writes of one version and of one plugin's documents", () => {
  /**
   * A registry whose site holds back the put of `held` until every put in `awaited` has begun (and then
   * 20 ms more), and refuses the put of `fail`; `events` says when each put of either store began and ended.
   */
  async function holdingRegistry(held: RegExp, awaited: readonly RegExp[], fail?: RegExp) {
    const registry = await makeRegistry();
    const events: string[] = [];
    let inFlight = 0;
    let release = gate();
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key, body, options) => {
      events.push(`begin ${key}`);
      inFlight += 1;
      try {
        if (awaited.every((pattern) => events.some((e) => e.startsWith('begin ') && pattern.test(e))))
          release.open();
        if (held.test(key)) {
          // Written one after the other, the puts awaited never begin: fail rather than wait forever, at 30 s,
          // half the test's timeout (2 s once, which a loaded machine's signing outlasted).
          const stuck = new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`${key} held: the puts awaited never began`)), 30_000).unref(),
          );
          await Promise.race([release.promise, stuck]);
          release = gate();
          // Time for whatever does not wait for this write to go on without it.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        if (fail?.test(key)) throw new StoreError('STORE_REFUSED', key, 'refused by the test');
        await put(key, body, options);
      } finally {
        inFlight -= 1;
        events.push(`end ${key}`);
      }
    };
    const record = registry.intake.put.bind(registry.intake);
    registry.intake.put = async (key, body, options) => {
      events.push(`begin intake ${key}`);
      await record(key, body, options);
    };
    const at = (pattern: RegExp): number => events.findIndex((e) => pattern.test(e));
    return { registry, at, inFlight: () => inFlight };
  }

  const bundle = () =>
    makeBundle({
      manifest: validManifest({ version: '1.0.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('tool 1.0.0') }],
    });

  it("writes a version's artifact, manifest and signature side by side", async () => {
    // The artifact's put ends only once the manifest's and its signature's have begun: written one after
    // the other, the publish would never end.
    const { registry, at } = await holdingRegistry(/\/tool$/, [
      /\/manifest\.json$/,
      /\/manifest\.json\.asc$/,
    ]);
    const result = await processSubmissions(registry.context, await registry.submit(await bundle()));

    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(at(/^end .*\/tool$/)).toBeGreaterThan(at(/^begin .*\/manifest\.json\.asc$/));
  });

  it("writes a plugin's document, signature and page side by side", async () => {
    const { registry, at } = await holdingRegistry(/^plugins\/[^/]+\/index\.json$/, [
      /plugins\/[^/]+\/index\.json\.asc$/,
      /plugins\/[^/]+\/index\.html$/,
    ]);
    const result = await processSubmissions(registry.context, await registry.submit(await bundle()));

    expect(result.outcomes.map((o) => o.status)).toEqual(['accepted']);
    expect(at(/^end plugins\/[^/]+\/index\.json$/)).toBeGreaterThan(
      at(/^begin plugins\/[^/]+\/index\.html$/),
    );
  });

  it('rejects a version whose manifest the store refuses only once its artifact is written', async () => {
    const { registry, at, inFlight } = await holdingRegistry(
      /\/tool$/,
      [/\/manifest\.json\.asc$/],
      /\/manifest\.json$/,
    );
    const result = await processSubmissions(registry.context, await registry.submit(await bundle()));

    expect(result.outcomes.map((o) => o.problems.map((p) => p.code))).toEqual([['SUBMISSION_WRITE_FAILED']]);
    expect(inFlight()).toBe(0);
    // The artifact's write ended before the outcome was recorded: nothing of the version was left writing.
    expect(at(/^end .*\/tool$/)).toBeGreaterThan(-1);
    expect(at(/^begin intake status\//)).toBeGreaterThan(at(/^end .*\/tool$/));
  });
});

describe('writingAfter', () => {
  it('reads at once, and begins each write only once what it waits for has settled', async () => {
    const store = new MemoryStore();
    await store.put('a.json', encode('{}'), { contentType: 'application/json', cacheControl: 'no-store' });
    const before = gate();
    const gated = writingAfter(store, before.promise);

    expect((await gated.get('a.json'))?.size).toBe(2);
    const put = gated.put('b.json', encode('[]'), {
      contentType: 'application/json',
      cacheControl: 'no-store',
    });
    const deleted = gated.delete('a.json');
    await turn();
    expect(store.writes).toEqual(['a.json']);
    expect(store.objects.has('a.json')).toBe(true);

    before.open();
    await Promise.all([put, deleted]);
    expect(store.writes).toEqual(['a.json', 'b.json']);
    expect(store.objects.has('a.json')).toBe(false);
  });

  it('fails every write with the failure it waited for, writing nothing', async () => {
    const store = new MemoryStore();
    const failure = new StoreError('STORE_IO', 'plugins/x/index.json', 'the disk went away');
    const before = Promise.reject(failure);
    before.catch(() => undefined);
    const gated = writingAfter(store, before);

    await expect(
      gated.put('b.json', encode('[]'), { contentType: 'application/json', cacheControl: 'no-store' }),
    ).rejects.toBe(failure);
    await expect(gated.delete('b.json')).rejects.toBe(failure);
    expect(store.writes).toEqual([]);
  });
});

describe("a batch's commit", () => {
  it('renders and signs while the plugin documents are written, and writes only after them', async () => {
    const registry = await makeRegistry();
    const events: string[] = [];
    let signatures = 0;
    // The commit's first signature is the batch's third (the manifest's, the plugin document's, then one of
    // the commit's documents): the page's write is held until it is asked for.
    const asked = gate();
    const signer: Signer = {
      ...registry.signer,
      signWithDigest: async (data) => {
        signatures += 1;
        if (signatures === 3) asked.open();
        return registry.signer.signWithDigest(data);
      },
    };
    const put = registry.site.put.bind(registry.site);
    registry.site.put = async (key, body, options) => {
      events.push(`begin ${key}`);
      if (/^plugins\/[^/]+\/index\.html$/.test(key)) {
        // Fails at 30 s, half the test's timeout, rather than hang: 2 s once, and a loaded machine outlasted it.
        const stuck = new Promise((_, reject) =>
          setTimeout(
            () => reject(new Error('the commit signed nothing while the page was written')),
            30_000,
          ).unref(),
        );
        await Promise.race([asked.promise, stuck]);
      }
      await put(key, body, options);
      events.push(`end ${key}`);
    };
    const bundle = await makeBundle({
      manifest: validManifest({ version: '1.0.0' }),
      artifacts: [{ os: 'linux', arch: 'amd64', name: 'tool', body: encode('tool 1.0.0') }],
    });
    const result = await processSubmissions({ ...registry.context, signer }, await registry.submit(bundle));

    expect(result.generation).toBe(1);
    const pluginWrites = events.filter((e) => e.startsWith('end plugins/') && !e.includes('/1.0.0/'));
    expect(pluginWrites).toHaveLength(3);
    const lastPluginWrite = Math.max(...pluginWrites.map((e) => events.indexOf(e)));
    // Everything but the version's files, the log (written before the plugin documents) and the documents.
    const commitWrites = events.filter((e) => e.startsWith('begin ') && !/^begin (plugins|log)\//.test(e));
    expect(commitWrites).toContain('begin index.json');
    expect(commitWrites).toContain('begin snapshot.json');
    for (const write of commitWrites) expect(events.indexOf(write)).toBeGreaterThan(lastPluginWrite);
  });
});
