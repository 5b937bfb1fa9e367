/** `plugindex search`: every configured registry's verified search.json, ranked (index-builder/search.ts). */
import { oneLine } from '../../index-builder/text.ts';
import { type Parsed, stringOption } from '../args.ts';
import { withClient } from '../client.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const filter = (name: string): Record<string, string> => {
    const value = stringOption(parsed, name);
    return value ? { [name]: value } : {};
  };
  return withClient(parsed, async ({ client, json }) => {
    const hits = await client.search({
      terms: parsed.positionals,
      ...filter('type'),
      ...filter('provider'),
      ...filter('capability'),
      ...filter('registry'),
    });
    if (json)
      outJson({
        results: hits.map((h) => ({ registry: h.registry, match: h.match, ...h.entry })),
      });
    else if (hits.length === 0) out('no plugin matches');
    else
      for (const { registry, entry } of hits)
        out(
          `${registry}/${entry.name}  ${entry.latest_version ?? '(no release)'}  ${entry.plugin_type}  ${oneLine(entry.description ?? '')}`.trimEnd(),
        );
    return hits.length > 0 ? 0 : 1;
  });
}
