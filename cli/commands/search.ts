/**
 * `plugindex search`: every configured registry's verified search.json, ranked (index-builder/search.ts).
 * Its words (as `q`, joined by a space) and filters are read by the rule `GET /search` and the home page
 * read theirs by (`readSearchParameters`): a refusal exits 2 with the endpoint's own code and message.
 */
import { LOOK_ALIKES_SHOWN, readSearchParameters, type SearchField } from '../../index-builder/search.ts';
import { oneLine } from '../../index-builder/text.ts';
import { type Parsed, stringOption } from '../args.ts';
import { withClient } from '../client.ts';
import { CliError } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const pairs: (readonly [SearchField, string])[] = [['q', parsed.positionals.join(' ')]];
  for (const filter of ['type', 'provider', 'capability'] as const) {
    const given = parsed.values[filter];
    for (const value of Array.isArray(given) ? given : typeof given === 'string' ? [given] : [])
      pairs.push([filter, value]);
  }
  const read = readSearchParameters(pairs);
  if (!read.ok) {
    const { code, parameter, message, expected } = read.problem;
    const option = parameter === 'q' ? 'the search words' : `--${parameter}`;
    throw new CliError(code, `${option}: ${message}: expected ${expected}`, {
      exitCode: 2,
      detail: { parameter, expected },
    });
  }
  const { type, provider, capability } = read.query;
  const registry = stringOption(parsed, 'registry');
  return withClient(parsed, async ({ client, json }) => {
    const hits = await client.search({
      terms: parsed.positionals,
      ...(type === undefined ? {} : { type }),
      ...(provider === undefined ? {} : { provider }),
      ...(capability === undefined ? {} : { capability }),
      ...(registry ? { registry } : {}),
    });
    if (json)
      outJson({
        results: hits.map((h) => ({
          registry: h.registry,
          match: h.match,
          ...h.entry,
          ...(h.lookAlikes === undefined ? {} : { look_alikes: h.lookAlikes }),
        })),
      });
    else if (hits.length === 0) out('no plugin matches');
    else
      for (const { registry, entry, lookAlikes } of hits) {
        out(
          `${registry}/${oneLine(entry.name)}  ${entry.latest_version ?? '(no release)'}  ${entry.plugin_type}  ${oneLine(entry.description ?? '')}`.trimEnd(),
        );
        // A name that reads as another owner's (index-builder/search.ts lookAlikesOf): told on a line of
        // its own under the row, so the row stays as scripts read it and the warning cannot be missed.
        if (lookAlikes !== undefined) out(`  ${lookAlikeWarning(lookAlikes)}`);
        // search.json says a whole plugin is deprecated (not why: its document does), as --json and the home
        // page said it; the text said nothing, and a deprecated plugin read as any other.
        if (entry.deprecated === true) out(`  deprecated (plugindex info ${oneLine(entry.name)} says why)`);
      }
    return hits.length > 0 ? 0 : 1;
  });
}

/**
 * The line under a result whose name reads as other plugins' of other owners: which, and that they are
 * another owner's, so a user typing `aws-cost` sees that `awscost` is not the same publisher's.
 * @example lookAlikeWarning(['awscost']) // 'looks like: awscost (other owner)'
 */
export function lookAlikeWarning(names: readonly string[]): string {
  // Each name one line (`out` escapes what a terminal acts on, but keeps a line break): the name form holds
  // none, but a row is the registry's, and one under an older rule or from a hostile registry could forge a
  // result line under the warning.
  // Ten at most, the rest counted: a registry's list is not bounded, and one of thousands was one line of them.
  const shown = names.slice(0, LOOK_ALIKES_SHOWN).map(oneLine).join(', ');
  const more = names.length > LOOK_ALIKES_SHOWN ? ` and ${names.length - LOOK_ALIKES_SHOWN} more` : '';
  return `looks like: ${shown}${more} (${names.length === 1 ? 'other owner' : 'other owners'})`;
}
