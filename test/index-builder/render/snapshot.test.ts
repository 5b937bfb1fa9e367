import { describe, expect, it } from 'vitest';
import { BIN_COUNT, binKey, binOf, pluginDocumentKey } from '../../../index-builder/layout.ts';
import { renderBins, renderSnapshot } from '../../../index-builder/render/snapshot.ts';

const digest = (n: number) => ({ sha256: String(n).repeat(64).slice(0, 64), size: n });
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('when a snapshot is rendered', () => {
  it('dates it, expires it after the TTL, and lists the documents in the order given', () => {
    const body = renderSnapshot({
      registry: 'https://registry.example.com',
      generation: 7,
      created: new Date('2026-11-01T00:00:00Z'),
      ttlSeconds: 3600,
      keyFingerprint: 'ABCD',
      documents: { 'index.json': digest(1), [binKey('0a')]: digest(2) },
    });
    expect(text(body)).toBe(
      `${JSON.stringify(
        {
          schema: 'plugindex/snapshot/v1',
          registry: 'https://registry.example.com',
          generation: 7,
          created: '2026-11-01T00:00:00.000Z',
          expires: '2026-11-01T01:00:00.000Z',
          key_fingerprint: 'ABCD',
          documents: { 'index.json': digest(1), 'snapshot/bins/0a.json': digest(2) },
        },
        null,
        2,
      )}\n`,
    );
  });
});

describe('when bins are rendered', () => {
  const names = ['alpha', 'beta', 'gamma', 'delta'].sort();
  const plugins = new Map(names.map((name, i) => [name, { document: digest(i + 1) }]));

  it('lists each plugin document in the bin of its name, and only the bins asked for', () => {
    const wanted = new Set([binOf('alpha'), binOf('gamma')]);
    const bins = renderBins(plugins, wanted, names);
    expect([...bins.keys()].sort()).toEqual([...wanted].sort());
    for (const [bin, body] of bins) {
      const listed = JSON.parse(body) as { schema: string; bin: string; documents: Record<string, unknown> };
      expect(listed.schema).toBe('plugindex/bin/v1');
      expect(listed.bin).toBe(bin);
      const members = names.filter((name) => binOf(name) === bin);
      expect(Object.keys(listed.documents)).toEqual(members.map(pluginDocumentKey));
      for (const name of members)
        expect(listed.documents[pluginDocumentKey(name)]).toEqual(plugins.get(name)?.document);
    }
  });

  it('renders a bin asked for with no plugin in it as empty', () => {
    const empty = [...Array(BIN_COUNT).keys()]
      .map((i) => i.toString(16).padStart(2, '0'))
      .find((bin) => !names.some((name) => binOf(name) === bin)) as string;
    expect(JSON.parse(renderBins(plugins, new Set([empty]), names).get(empty) as string).documents).toEqual(
      {},
    );
  });
});
