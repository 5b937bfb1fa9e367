/** `plugindex remove NAME[@VERSION] [--clean]`: files, record and lock entry; --clean its cached downloads too. */
import type { Parsed } from '../args.ts';
import { dirOption, lockfileOption, withClient } from '../client.ts';
import { usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [request, ...extra] = parsed.positionals;
  if (!request || extra.length) throw usage('remove takes one NAME[@VERSION]');
  return withClient(parsed, async ({ client, json }) => {
    const removed = await client.remove(request, {
      ...dirOption(parsed),
      clean: parsed.values.clean === true,
      lockfile: lockfileOption(parsed),
    });
    const name = request.split('@')[0];
    if (json) outJson({ name, removed });
    else out(`removed ${name} ${removed.join(', ')}`);
    return 0;
  });
}
