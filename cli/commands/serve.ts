/** `plugindex serve`: the published tree over HTTP, and bundles dropped into incoming/ published. */
import { type Parsed, portOption, requiredOption, stringOption } from '../args.ts';
import { serveRegistry } from '../local/service.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  await serveRegistry({
    dir: requiredOption(parsed, 'registry'),
    port: portOption(parsed, 8080),
    host: stringOption(parsed, 'host') ?? '127.0.0.1',
    watch: !parsed.values['no-watch'],
    log: out,
  });
  return 0;
}
