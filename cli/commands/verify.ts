/**
 * `plugindex verify --url`: a served registry checked as a client would. Exit 1 with the trust check that
 * failed (its code) when it does not verify.
 */
import { TrustError } from '../../index-builder/errors.ts';
import { type Parsed, requiredOption, stringOption } from '../args.ts';
import { readTextInput } from '../inputs.ts';
import { out } from '../terminal.ts';
import { verifyRegistry } from '../verify.ts';

export async function run(parsed: Parsed): Promise<number> {
  const url = requiredOption(parsed, 'url');
  const keyFile = stringOption(parsed, 'key');
  const stateFile = stringOption(parsed, 'state');
  try {
    const report = await verifyRegistry({
      url,
      ...(keyFile ? { pinnedKey: await readTextInput(keyFile) } : {}),
      ...(stateFile ? { stateFile } : {}),
    });
    out(
      `verified ${url}: generation ${report.generation}, expires ${report.expires}, key ${report.fingerprint}`,
    );
    out(
      `  ${report.documents} signed documents, ${report.plugins} plugins, ${report.manifests} manifests, ${report.artifacts} hosted artifacts`,
    );
    if (!keyFile)
      out('  (the key was taken from the registry itself: pin it with --key for real protection)');
    return 0;
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    out(`NOT verified ${url}: ${error.code}: ${error.message}`);
    return 1;
  }
}
