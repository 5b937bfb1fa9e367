/** The search rows the home page and `plugindex search` read. */
import { describe, expect, it } from 'vitest';
import type { PluginDocument } from '../../../index-builder/model.ts';
import { buildSearchEntry } from '../../../index-builder/render/documents.ts';

const doc: PluginDocument = {
  schema: 'plugindex/plugin/v1',
  name: 'p',
  plugin_type: 'cost_source',
  latest_version: '1.0.0',
  channels: {},
  capabilities: ['actual_cost'],
  supported_providers: ['aws'],
  tags: ['t'],
  owners: [],
  versions: [],
};

describe('when a search row is built', () => {
  it('says deprecated only for a plugin deprecated whole, and leaves the field out otherwise', () => {
    expect(buildSearchEntry(doc)).not.toHaveProperty('deprecated');
    const deprecated = buildSearchEntry({
      ...doc,
      deprecation: { message: 'use q', replacement: 'q', at: '2026-11-01T00:00:00Z' },
    });
    expect(deprecated.deprecated).toBe(true);
    // The row names no message: the plugin's page and document carry it.
    expect(JSON.stringify(deprecated)).not.toContain('use q');
  });
});
