/** `plugindex dev`, behind `npm start`: a registry with the examples published, served and watched. */
import { stat } from 'node:fs/promises';
import { type Parsed, portOption, stringOption } from '../args.ts';
import { CliError } from '../errors.ts';
import { runDev } from '../local/demo.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const given = stringOption(parsed, 'examples');
  // A folder that is not there was read as one holding no example ("examples: 0 published"), and an empty
  // registry served as the demo: one named is refused before anything is made. The default (./examples)
  // only where the command is run from the checkout, without it says so (below).
  if (
    given !== undefined &&
    !(await stat(given).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    throw new CliError(
      'FILE_NOT_FOUND',
      `--examples ${given} is not a folder: name the folder of example plugins (the checkout's examples/)`,
    );
  const examples = given ?? 'examples';
  if (
    given === undefined &&
    !(await stat(examples).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    err(
      `plugindex dev: no examples/ folder here: serving without examples (run it in the checkout, or --examples DIR)`,
    );
  await runDev({
    dir: stringOption(parsed, 'registry') ?? process.env.PLUGINDEX_HOME ?? '.plugindex',
    port: portOption(parsed, Number(process.env.PORT ?? 8080)),
    examples,
    log: out,
    // The server's internal errors and the connections it turns away, as `plugindex serve` has them.
    warn: err,
  });
  return 0;
}
