/**
 * Builds the `plugindex` bundle (dist/cli/) from the source under test before any test file runs, so the
 * tests that spawn the command run what ships, never a bundle left from an earlier checkout.
 */
import { buildCli } from '../../build/cli.mjs';

export default async function setup(): Promise<void> {
  await buildCli();
}
