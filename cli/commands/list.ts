/** `plugindex list [--outdated]`: what installed.json says; with --outdated, what could move (exit 1 if any). */
import { type Parsed, stringOption } from '../args.ts';
import { dirOption, lockfileOption, withClient } from '../client.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const outdated = parsed.values.outdated === true;
  const apiVersion = stringOption(parsed, 'api-version');
  return withClient(parsed, async ({ client, json }) => {
    const rows = await client.list({
      ...dirOption(parsed),
      outdated,
      lockfile: lockfileOption(parsed),
      ...(apiVersion ? { apiVersion } : {}),
    });
    const shown = outdated
      ? rows.filter(
          (r) =>
            (r.wanted !== undefined && r.wanted !== r.current) ||
            (r.latest != null && r.latest !== r.current) ||
            r.yanked,
        )
      : rows;
    if (json) outJson({ plugins: shown });
    else if (shown.length === 0) out(outdated ? 'everything is up to date' : 'nothing is installed');
    else
      for (const r of shown) {
        const marks = [
          r.enabled ? '' : 'disabled',
          r.yanked ? 'yanked' : '',
          r.deprecated ? 'deprecated' : '',
        ]
          .filter(Boolean)
          .join(', ');
        const moves = outdated ? `  wanted ${r.wanted ?? '-'}  latest ${r.latest ?? '-'}` : '';
        out(
          `${r.name}  ${r.current}${moves}  ${r.platforms.join(' ')}  from ${r.registry}${marks ? `  [${marks}]` : ''}`,
        );
      }
    return outdated && shown.length > 0 ? 1 : 0;
  });
}
