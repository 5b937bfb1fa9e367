/** `plugindex enable NAME` (and, through `setEnabled`, `disable`): the spec's switch; files stay installed. */
import type { Parsed } from '../args.ts';
import { dirOption, withClient } from '../client.ts';
import { usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export function run(parsed: Parsed): Promise<number> {
  return setEnabled(parsed, true);
}

export async function setEnabled(parsed: Parsed, enabled: boolean): Promise<number> {
  const [name, ...extra] = parsed.positionals;
  if (!name || extra.length) throw usage('takes one NAME');
  return withClient(parsed, async ({ client, json }) => {
    await client.setEnabled(name, enabled, dirOption(parsed));
    if (json) outJson({ name, enabled });
    else out(`${name} ${enabled ? 'enabled' : 'disabled'}`);
    return 0;
  });
}
