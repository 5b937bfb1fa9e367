/** `plugindex info NAME[@SPEC]`: what a registry signs about a plugin, and what SPEC resolves to here. */
import { advisoryText, affects, bySeverity } from '../../client/lifecycle.ts';
import { allArtifacts, artifactPlatformText } from '../../index-builder/model.ts';
import { oneLine } from '../../index-builder/text.ts';
import { channelOf } from '../../index-builder/versions.ts';
import { type Parsed, stringOption } from '../args.ts';
import {
  apiVersionOption,
  platformOption,
  refuseVersionApart,
  requestArgument,
  withClient,
} from '../client.ts';
import { usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';
import { lookAlikeWarning } from './search.ts';

export async function run(parsed: Parsed): Promise<number> {
  refuseVersionApart(parsed.positionals);
  const [request, ...extra] = parsed.positionals;
  if (!request || extra.length) throw usage('info takes one NAME[@SPEC]');
  const registry = stringOption(parsed, 'registry');
  // Read by the client's rule before any registry is: a refusal is the command line's (exit 2).
  requestArgument(request);
  const platform = platformOption(parsed);
  return withClient(parsed, async ({ client, json }) => {
    const info = await client.info(request, {
      ...(registry ? { registry } : {}),
      ...platform,
      ...apiVersionOption(parsed),
    });
    const doc = info.document;
    if (json) {
      outJson({
        registry: info.registry,
        registry_key: info.fingerprint,
        ...(info.resolution
          ? {
              resolved: {
                version: info.resolution.version.version,
                platform: artifactPlatformText(info.resolution.artifact),
                warnings: info.resolution.warnings,
                advisories: info.resolution.advisories,
              },
            }
          : {}),
        plugin: doc,
      });
      return 0;
    }
    out(`${doc.name}${doc.display_name ? ` (${oneLine(doc.display_name)})` : ''}  from ${info.registry}`);
    if (doc.description) out(`  ${oneLine(doc.description)}`);
    out(`  type ${doc.plugin_type}; latest ${doc.latest_version ?? '(none)'}`);
    if (doc.deprecation)
      out(
        `  deprecated: ${oneLine(doc.deprecation.message)}${doc.deprecation.replacement ? `; use ${doc.deprecation.replacement} instead` : ''}`,
      );
    const channels = Object.entries(doc.channels);
    if (channels.length) out(`  channels: ${channels.map(([c, v]) => `${c} ${v}`).join(', ')}`);
    if (doc.capabilities.length) out(`  capabilities: ${doc.capabilities.join(', ')}`);
    if (doc.supported_providers.length) out(`  providers: ${doc.supported_providers.join(', ')}`);
    if (doc.license) out(`  license: ${oneLine(doc.license)}`);
    out(`  owners (publisher keys): ${doc.owners.join(', ')}`);
    // What the signed document says, as `plugindex search` words it: a name that reads as another owner's.
    if (doc.look_alikes?.length) out(`  ${lookAlikeWarning(doc.look_alikes.map((a) => a.name))}`);
    out(`  registry key: ${info.fingerprint}`);
    out('  versions:');
    // Every state an install judges a version by, as the plugin's page shows it: a version the operator
    // removed (which the registry also marks yanked) and one an advisory affects read as plainly available.
    const advisories = bySeverity(doc.advisories ?? []);
    for (const v of doc.versions) {
      const marks = [
        v.removed ? `removed ${v.removed.at}: ${oneLine(v.removed.reason)}` : '',
        v.yanked && !v.removed ? `yanked${v.yanked_reason ? `: ${oneLine(v.yanked_reason)}` : ''}` : '',
        v.deprecated ? `deprecated${v.deprecation_message ? `: ${oneLine(v.deprecation_message)}` : ''}` : '',
        v.prerelease ? `prerelease${channelOf(v.version) ? ` (${channelOf(v.version)})` : ''}` : '',
        v.publisher_revoked ? `publisher key revoked ${v.publisher_revoked.at}` : '',
        ...advisories.filter((a) => affects(a, v.version)).map((a) => `affected by ${a.id} (${a.severity})`),
      ].filter(Boolean);
      const api = [v.min_api_version, v.max_api_version].some(Boolean)
        ? ` api ${v.min_api_version ?? ''}..${v.max_api_version ?? ''}`
        : '';
      const platforms = allArtifacts(v).map(artifactPlatformText).join(' ');
      out(
        `    ${v.version}  ${v.published.slice(0, 10)}  ${platforms}${api}  publisher ${v.publisher}${marks.length ? `  [${marks.join('; ')}]` : ''}`,
      );
    }
    // Withdrawn ones too, marked, as `audit NAME` lists them.
    if (advisories.length) out('  advisories:');
    for (const a of advisories) {
      const withdrawn = a.withdrawn
        ? `  [withdrawn ${a.withdrawn.at}${a.withdrawn.reason ? `: ${oneLine(a.withdrawn.reason)}` : ''}]`
        : '';
      out(`    ${advisoryText(a)}  affects ${a.affected}${withdrawn}`);
    }
    // What the chosen version (else the latest, else the newest) asks of the host and where its bytes are.
    const chosen =
      info.resolution?.version ??
      doc.versions.find((v) => v.version === doc.latest_version) ??
      doc.versions[0];
    if (chosen) {
      if (chosen.permissions?.length)
        out(`  ${chosen.version} permissions: ${chosen.permissions.join(', ')}`);
      const limits = Object.entries(chosen.resources ?? {});
      if (limits.length)
        out(`  ${chosen.version} resource limits: ${limits.map(([k, v]) => `${k} ${v}`).join(', ')}`);
      for (const a of allArtifacts(chosen))
        if (a.oci)
          out(`  ${chosen.version} ${artifactPlatformText(a)} from OCI ${a.oci.reference} (${a.oci.digest})`);
    }
    if (info.resolution) {
      out(
        `  ${request} resolves to ${info.resolution.version.version} for ${artifactPlatformText(info.resolution.artifact)}`,
      );
      for (const w of info.resolution.warnings) out(`  warning: ${w}`);
    }
    return 0;
  });
}
