/** `plugindex dev`, behind `npm start`: a registry with the examples published, served and watched. */
import { type Parsed, portOption, stringOption } from '../args.ts';
import { runDev } from '../local/demo.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  await runDev({
    dir: stringOption(parsed, 'registry') ?? process.env.PLUGINDEX_HOME ?? '.plugindex',
    port: portOption(parsed, Number(process.env.PORT ?? 8080)),
    examples: stringOption(parsed, 'examples') ?? 'examples',
    log: out,
    // The server's internal errors and the connections it turns away, as `plugindex serve` has them.
    warn: err,
  });
  return 0;
}
