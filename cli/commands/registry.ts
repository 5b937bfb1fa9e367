/**
 * `plugindex registry add|list|remove|update|reset-trust`: the registries this client trusts, each pinned to
 * its key at `add` (from a file, or checked against a fingerprint, or, only when asked, trusted on first use
 * with the fingerprint printed). Adding the same registry again changes nothing; another URL or key needs
 * --force. `reset-trust` forgets the floor every name of a registry keeps, for one its operator rebuilt at a
 * lower generation under the same key.
 */
import { resolve } from 'node:path';
import type { KeyPin, ResetTrustTarget } from '../../client/client.ts';
import { type RegistryAuth, registryIdentity } from '../../client/config.ts';
import { listOption, type Parsed, stringOption, unknownAction } from '../args.ts';
import { registryUrlArgument, withClient } from '../client.ts';
import { CliError, isRefusal, usage } from '../errors.ts';
import { readGivenKeyFile } from '../inputs.ts';
import { outJson } from '../output.ts';
import { err, out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [action, ...rest] = parsed.positionals;
  switch (action) {
    case 'add':
      return add(parsed, rest);
    case 'list':
      // A name after it was ignored, every registry listed: `--json` or the list itself shows one.
      if (rest.length > 0)
        throw usage(
          `registry list takes no NAME (found ${rest.join(' ')}): it lists every registry configured`,
        );
      return list(parsed);
    case 'remove':
      return remove(parsed, rest);
    case 'update':
      return update(parsed, rest);
    case 'reset-trust':
      return resetTrust(parsed, rest);
    default:
      if (action === undefined) throw usage('which action: add, list, remove, update or reset-trust?');
      throw unknownAction('registry', action, ['add', 'list', 'remove', 'update', 'reset-trust']);
  }
}

async function pinOf(parsed: Parsed): Promise<KeyPin> {
  const keyFile = stringOption(parsed, 'key');
  const fingerprint = stringOption(parsed, 'fingerprint');
  const tofu = parsed.values['trust-on-first-use'] === true;
  const given = [keyFile, fingerprint, tofu || undefined].filter((v) => v !== undefined).length;
  if (given !== 1) throw usage('give exactly one of --key FILE, --fingerprint FP or --trust-on-first-use');
  if (keyFile) return { armored: await readGivenKeyFile(keyFile, "the registry's") };
  if (fingerprint) return { fingerprint };
  return { trustOnFirstUse: true };
}

function positiveNumber(parsed: Parsed, name: string, integer: boolean): number | undefined {
  const raw = stringOption(parsed, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value)))
    throw usage(`--${name} must be a ${integer ? 'whole ' : ''}number of 0 or more, found ${raw}`);
  return value;
}

function authOf(parsed: Parsed): RegistryAuth | undefined {
  const type = stringOption(parsed, 'auth');
  const secret = stringOption(parsed, 'secret');
  if (type === undefined) {
    if (secret !== undefined) throw usage('--secret needs --auth TYPE');
    return undefined;
  }
  if (secret === undefined) throw usage(`--auth needs --secret '\${ENV_VAR}' or --secret file:PATH`);
  switch (type) {
    case 'bearer_token':
      return { type, bearer_token: secret };
    case 'api_key':
      return { type, api_key: secret };
    case 'basic_auth': {
      const username = stringOption(parsed, 'username');
      if (!username) throw usage('--auth basic_auth needs --username');
      return { type, username, password: secret };
    }
    default:
      throw usage(`--auth must be bearer_token, api_key or basic_auth, found ${type}`);
  }
}

/**
 * `registry add URL NAME` (the URL typed first, a word that is no URL second), refused naming the order
 * (the URL not echoed: it may hold what the refusal of a URL never shows). Said alone, "registry URL main: it is not
 * an absolute URL" left the user to find which word was wrong.
 * @throws CliError REGISTRY_URL_INVALID, exit 2, when the two are swapped.
 */
function refuseSwapped(name: string, url: string): void {
  if (URL.canParse(url) || !URL.canParse(name) || !/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) return;
  try {
    registryUrlArgument('URL', url);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    throw new CliError(
      'REGISTRY_URL_INVALID',
      `${error.message}; NAME comes first, then the URL: plugindex registry add ${url} URL`,
      { exitCode: 2, cause: error },
    );
  }
}

async function add(parsed: Parsed, rest: readonly string[]): Promise<number> {
  const [name, url, ...extra] = rest;
  if (!name || !url || extra.length) throw usage('registry add takes NAME and URL');
  // Before the key is read or anything fetched, and exit 2 as `verify --url` makes it (see registryUrlArgument).
  refuseSwapped(name, url);
  const normalized = registryUrlArgument('URL', url);
  const mirrors = listOption(parsed, 'mirror');
  for (const mirror of mirrors) registryUrlArgument('--mirror', mirror);
  const pin = await pinOf(parsed);
  const priority = positiveNumber(parsed, 'priority', true);
  const timeout = positiveNumber(parsed, 'timeout', false);
  // Kept as an absolute path: later commands run from other folders.
  const ca = stringOption(parsed, 'ca');
  const caFile = ca ? resolve(ca) : undefined;
  const auth = authOf(parsed);
  return withClient(parsed, async ({ client, json }) => {
    const result = await client.addRegistry({
      name,
      url,
      pin,
      mirrors,
      force: parsed.values.force === true,
      ...(priority !== undefined ? { priority } : {}),
      ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
      ...(caFile ? { caFile } : {}),
      ...(auth ? { auth } : {}),
    });
    if (json) outJson({ name, url, ...result });
    else {
      const verb = { added: 'added', unchanged: 'already configured, unchanged:', replaced: 'replaced' }[
        result.change
      ];
      out(`${verb} ${name} ${url} (key ${result.fingerprint}, generation ${result.generation})`);
      if (result.rotated)
        out(`  followed ${result.rotated.steps} key rotation(s) from the key given, ${result.rotated.from}`);
      // A mirror's snapshots name the registry they copy: the name every later snapshot must give.
      if (registryIdentity(result.registry) !== normalized) out(`  its snapshots name it ${result.registry}`);
      if (result.trustedOnFirstUse)
        err(
          `plugindex registry: trusted key ${result.fingerprint} on first use; check it with the registry's owner`,
        );
    }
    return 0;
  });
}

async function list(parsed: Parsed): Promise<number> {
  return withClient(parsed, async ({ client, json }) => {
    const registries = await client.listRegistries();
    if (json) {
      outJson({
        registries: registries.map((r) => ({ ...r.entry, generation: r.generation ?? null })),
      });
      return 0;
    }
    if (registries.length === 0)
      out('no registry is configured (plugindex registry add NAME URL --key FILE)');
    for (const { entry, generation } of registries) {
      const mirrors = entry.mirrors.length ? ` mirrors ${entry.mirrors.join(', ')}` : '';
      out(
        `${entry.name}  ${entry.url}  priority ${entry.priority}  key ${entry.key_fingerprint}  generation ${generation ?? '-'}${mirrors}`,
      );
    }
    return 0;
  });
}

async function remove(parsed: Parsed, rest: readonly string[]): Promise<number> {
  const [name, ...extra] = rest;
  if (!name || extra.length) throw usage('registry remove takes one NAME');
  return withClient(parsed, async ({ client, json }) => {
    await client.removeRegistry(name, { force: parsed.values.force === true });
    if (json) outJson({ removed: name });
    else out(`removed ${name} (its pinned key, trust state and cache too)`);
    return 0;
  });
}

async function update(parsed: Parsed, names: readonly string[]): Promise<number> {
  return withClient(parsed, async ({ client, json }) => {
    const reports = await client.updateRegistries(names);
    const failed = reports.filter((r) => r.error);
    if (json)
      outJson({
        registries: reports.map((r) =>
          r.error
            ? { name: r.name, ok: false, code: (r.error as { code?: string }).code, message: r.error.message }
            : { name: r.name, ok: true, ...r.report },
        ),
      });
    else
      for (const r of reports) {
        if (r.error) err(`${r.name}: ${(r.error as { code?: string }).code}: ${r.error.message}`);
        else {
          out(
            `${r.name}: generation ${r.report?.generation}, expires ${r.report?.expires}, key ${r.report?.fingerprint}${r.report?.changed ? '' : ' (unchanged)'}`,
          );
          const rotated = r.report?.rotated;
          if (rotated)
            out(
              `  the registry's key rotated: followed ${rotated.steps} signed rotation(s) from ${rotated.from} to ${rotated.to}, now pinned`,
            );
        }
      }
    if (failed.length === 0) return 0;
    return failed.some((r) => isRefusal(r.error)) ? 3 : 1;
  });
}

/** `reset-trust NAME` (configured), or `reset-trust URL --key FILE` (a plugin set's, reached as `add` would). */
async function resetTarget(parsed: Parsed, target: string): Promise<ResetTrustTarget> {
  if (!target.includes('://')) {
    for (const option of ['key', 'ca', 'mirror', 'timeout', 'auth', 'secret'])
      if (parsed.values[option] !== undefined)
        throw usage(`registry reset-trust NAME takes no --${option}: the configured registry's are used`);
    return { name: target };
  }
  const keyFile = stringOption(parsed, 'key');
  if (!keyFile)
    throw usage('registry reset-trust URL needs --key FILE: the registry key the plugin set pins');
  registryUrlArgument('URL', target);
  const mirrors = listOption(parsed, 'mirror');
  for (const mirror of mirrors) registryUrlArgument('--mirror', mirror);
  const timeout = positiveNumber(parsed, 'timeout', false);
  const ca = stringOption(parsed, 'ca');
  const auth = authOf(parsed);
  return {
    url: target,
    armoredKey: await readGivenKeyFile(keyFile, "the registry's"),
    mirrors,
    ...(ca ? { caFile: resolve(ca) } : {}),
    ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
    ...(auth ? { auth } : {}),
  };
}

async function resetTrust(parsed: Parsed, rest: readonly string[]): Promise<number> {
  const [target, ...extra] = rest;
  if (!target || extra.length)
    throw usage('registry reset-trust takes one NAME, or the URL of a plugin set’s registry with --key FILE');
  const given = await resetTarget(parsed, target);
  return withClient(parsed, async ({ client, json }) => {
    const result = await client.resetRegistryTrust(given);
    if (json) {
      outJson({ target, ...result });
      return 0;
    }
    const head = (log: { length: number; head: string } | undefined) =>
      log ? `, log of ${log.length} entries (head ${log.head})` : '';
    for (const f of result.forgotten)
      out(`forgot trust/${f.name}: generation ${f.generation ?? '-'}${head(f.log)}`);
    if (result.forgotten.length === 0) out('nothing was kept of it under any name');
    out(
      `${target}: taken at generation ${result.generation}${head(result.log)}, key ${result.fingerprint}: the floor of every name of ${result.registry} from now on`,
    );
    return 0;
  });
}
