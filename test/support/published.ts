/**
 * What a test of a judgement at publish time reads back: the outcomes of a batch, as verdicts, the plugin
 * documents the site holds, and an index's objects in the intake store.
 */
import type { PluginDocument } from '../../index-builder/model.ts';
import { processSubmissions, type SubmissionOutcome } from '../../index-builder/pipeline/index.ts';
import type { TestRegistry } from './fixtures.ts';

/** Submits `bundles` to `registry` as one batch and processes it; its outcomes, in order. */
export async function publish(
  registry: TestRegistry,
  ...bundles: Uint8Array[]
): Promise<SubmissionOutcome[]> {
  return [...(await processSubmissions(registry.context, await registry.submit(...bundles))).outcomes];
}

/** Each outcome as [plugin, status, its problems' codes joined by commas]. */
export const verdicts = (outcomes: readonly SubmissionOutcome[]): [string, string, string][] =>
  outcomes.map((o) => [o.plugin ?? '', o.status, o.problems.map((p) => p.code).join(',')]);

/** Plugin `name`'s document as the site holds it, if it does. */
export function documentOf(registry: TestRegistry, name: string): PluginDocument | undefined {
  const object = registry.site.objects.get(`plugins/${name}/index.json`);
  return object ? (JSON.parse(new TextDecoder().decode(object.body)) as PluginDocument) : undefined;
}

/** The keys of the objects in the intake store under `prefix` (an index's), in the store's order. */
export const intakeKeysUnder = (registry: TestRegistry, prefix: string): string[] =>
  [...registry.intake.objects.keys()].filter((key) => key.startsWith(prefix));
