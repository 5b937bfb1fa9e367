/**
 * `plugindex audit`: every installed version against its registry's current advisories (exit 1 when any
 * affects one, `high` and `critical` named first), and whether it was removed (exit 1) or yanked (reported)
 * since; the way to check a tree installed `--frozen`. Exit 1 too when it checked nothing (no such folder,
 * nothing installed, every version skipped), saying which.
 * `plugindex audit NAME [--registry R]`: the plugin's history from the registry's transparency log, the
 * whole chain checked against the head the snapshot signs (exit 3 when it does not verify), then its
 * advisories.
 */
import type { InstalledAudit, PluginHistory } from '../../client/client.ts';
import { advisoryText } from '../../client/lifecycle.ts';
import { oneLine } from '../../index-builder/text.ts';
import { type Parsed, stringOption } from '../args.ts';
import { dirOption, requestArgument, withClient } from '../client.ts';
import { usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  if (parsed.positionals.length > 1) throw usage('audit takes one plugin name at most');
  const name = parsed.positionals[0];
  const registry = stringOption(parsed, 'registry');
  if (name === undefined) {
    if (registry !== undefined)
      throw usage('--registry goes with a NAME (without one, every install is audited)');
    return withClient(parsed, async ({ client, json }) => {
      const audit = await client.auditInstalled(dirOption(parsed));
      printInstalled(audit, json);
      return failed(audit) ? 1 : 0;
    });
  }
  // A name no plugin can have is refused by the client's rule as every command refuses one typed (exit 2),
  // first: a URL is named so without its credentials and query values, which `not "…"` below echoed whole.
  const request = requestArgument(name);
  if (name.includes('@') || request.name !== name)
    throw usage(
      `audit NAME takes a plugin name, not ${JSON.stringify(name)}: its history covers every version`,
    );
  return withClient(parsed, async ({ client, json }) => {
    const history = await client.auditPlugin(name, registry === undefined ? {} : { registry });
    printHistory(history, json);
    return 0;
  });
}

/** An advisory affects an installed version, or one was removed (a yank alone is reported, not failed). */
function failed(audit: InstalledAudit): boolean {
  // An audit that checked nothing vouches for nothing: a mistyped --dir must not pass as "no advisory".
  if (audit.unaudited !== undefined) return true;
  return audit.findings.length > 0 || audit.states.some((s) => s.state === 'removed');
}

function printInstalled(audit: InstalledAudit, json: boolean): void {
  if (json) {
    outJson({ ok: !failed(audit), ...audit });
    return;
  }
  for (const s of audit.states)
    out(`${s.state}  ${s.name}@${s.version} from ${s.registry}${s.reason ? `: ${oneLine(s.reason)}` : ''}`);
  for (const f of audit.findings)
    out(`${f.advisory.severity}  ${f.name}@${f.version} from ${f.registry}: ${advisoryText(f.advisory)}`);
  for (const s of audit.skipped)
    out(`not checked  ${s.name}@${s.version} from ${s.registry}: ${oneLine(s.reason)}`);
  const blocking = audit.findings.filter((f) => ['high', 'critical'].includes(f.advisory.severity)).length;
  const unchecked = audit.skipped.length > 0 ? ` (${audit.skipped.length} not checked)` : '';
  out(
    audit.unaudited !== undefined
      ? `nothing was audited: ${audit.unaudited}`
      : audit.findings.length === 0
        ? `no advisory affects the ${audit.checked} installed version${audit.checked === 1 ? '' : 's'} checked${unchecked}`
        : `${audit.findings.length} advisor${audit.findings.length === 1 ? 'y affects' : 'ies affect'} installed versions (${blocking} high or critical)`,
  );
}

function printHistory(history: PluginHistory, json: boolean): void {
  if (json) {
    outJson(history);
    return;
  }
  out(
    history.log
      ? `${history.name} in ${history.registry}: the registry's log of ${history.log.length} entries (head ${history.log.head}) verified from its first entry`
      : `${history.name} in ${history.registry}: the registry keeps no log yet`,
  );
  if (history.entries.length === 0) out('  no entry names it');
  for (const e of history.entries) {
    const detail = Object.entries(e.detail ?? {})
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(' ');
    // An action's entry also says when its signer made it: the order the registry judged it by.
    const made = e.created ? `  (made ${e.created})` : '';
    // Never took effect: the registry voided it (the void's own line follows, with its reason).
    const voided = e.voided ? `  [voided by #${e.voided.by}: ${oneLine(e.voided.reason)}]` : '';
    out(
      `  #${e.seq}  ${e.time}  ${e.type}  ${e.version ?? '-'}  signer ${e.signer}${detail ? `  ${detail}` : ''}${made}${voided}`,
    );
  }
  out(history.advisories.length === 0 ? 'advisories: none' : 'advisories:');
  for (const a of history.advisories) {
    const withdrawn = a.withdrawn
      ? `  [withdrawn ${a.withdrawn.at}${a.withdrawn.reason ? `: ${oneLine(a.withdrawn.reason)}` : ''}]`
      : '';
    out(`  ${advisoryText(a)}  affects ${a.affected}${withdrawn}`);
  }
}
