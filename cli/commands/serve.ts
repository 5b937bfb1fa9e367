/** `plugindex serve`: the published tree over HTTP, and bundles dropped into incoming/ published. */
import { type Parsed, portOption, requiredOption, stringOption, wholeNumberOption } from '../args.ts';
import { serveRegistry } from '../local/service.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  await serveRegistry({
    dir: requiredOption(parsed, 'registry'),
    port: portOption(parsed, 8080),
    host: stringOption(parsed, 'host') ?? '127.0.0.1',
    watch: !parsed.values['no-watch'],
    // Judged by the server (cli/local/server.ts): at least 1, and a share from 0 (none) to the cap.
    maxConnections: wholeNumberOption(parsed, 'max-connections'),
    maxConnectionsPerAddress: wholeNumberOption(parsed, 'max-connections-per-address'),
    log: out,
    // An operator watching for trouble reads stderr: the clients the server refuses, and those it closes.
    warn: err,
  });
  return 0;
}
