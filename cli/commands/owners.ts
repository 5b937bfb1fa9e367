/**
 * A plugin's owners, the keys that may publish it and act on it: `owners add NAME KEYFILE` and
 * `owners remove NAME FINGERPRINT` are signed actions (by an owner's key; a publisher rotating its key adds
 * the new one signed by the old), `owners list NAME` reads the plugin document: a local registry's
 * published tree (`--registry DIR`), or a served registry this client has added (`--url URL`), read and
 * verified through the client's session as an install reads it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pluginDocumentKey, pluginNameFormProblem, REVOKED_KEYS_KEY } from '../../index-builder/layout.ts';
import type { PluginDocument, RevokedKeysDocument } from '../../index-builder/model.ts';
import { oneLine } from '../../index-builder/text.ts';
import { allowOnly, fingerprintArg, positionals, runAction } from '../action.ts';
import { type Parsed, stringOption, unknownAction } from '../args.ts';
import { CliError, usage } from '../errors.ts';
import { outJson } from '../output.ts';
import { out } from '../terminal.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [sub] = parsed.positionals;
  if (sub === 'add') {
    allowOnly(parsed, 'owners add', []);
    const [, plugin, keyFile] = positionals(parsed, 3, 'owners add NAME KEYFILE');
    return runAction(parsed, {
      body: { action: 'owners-add', plugin: plugin as string, key: '' },
      // The new owner's: the signer's own new key when it rotates, whose public.asc keygen wrote beside it.
      keyFile: { file: keyFile as string, of: "the new owner's" },
    });
  }
  if (sub === 'remove') {
    allowOnly(parsed, 'owners remove', []);
    const [, plugin, fingerprint] = positionals(parsed, 3, 'owners remove NAME FINGERPRINT');
    return runAction(parsed, {
      body: {
        action: 'owners-remove',
        plugin: plugin as string,
        fingerprint: fingerprintArg(fingerprint as string),
      },
    });
  }
  if (sub === 'list') return list(parsed);
  if (sub === undefined) throw usage('owners takes add, remove or list');
  throw unknownAction('owners', sub, ['add', 'remove', 'list']);
}

async function list(parsed: Parsed): Promise<number> {
  const [, name] = positionals(parsed, 2, 'owners list NAME');
  for (const option of ['key', 'passphrase-file', 'bucket', 'endpoint', 'timeout', 'output', 'registry-url'])
    if (parsed.values[option] !== undefined) throw usage(`--${option} is not an option of owners list`);
  const plugin = name as string;
  const why = pluginNameFormProblem(plugin);
  if (why) throw usage(`NAME must be a plugin name (${why}), found ${JSON.stringify(plugin)}`);
  const dir = stringOption(parsed, 'registry');
  const url = stringOption(parsed, 'url');
  if ((dir === undefined) === (url === undefined))
    throw usage('give exactly one of --registry DIR or --url URL');
  const { document, source, revokedList } =
    dir !== undefined ? await readLocal(dir, plugin) : await readServed(parsed, url as string, plugin);
  // An owner the operator revoked still stands in the document (only an owners action removes it), yet every
  // bundle and action its key signs is refused: marked as `info` marks a version its key published.
  const revoked = revokedOwners(document.owners, revokedList);
  if (parsed.values.json) outJson({ plugin, source, owners: document.owners, revoked });
  else {
    out(`owners of ${plugin} (${source}):`);
    for (const fingerprint of document.owners) {
      const r = revoked.find((k) => k.fingerprint === fingerprint);
      out(
        `  ${fingerprint}${r ? `  [key revoked ${r.revoked}${r.reason ? `: ${oneLine(r.reason)}` : ''}]` : ''}`,
      );
    }
    if (document.owners.length === 0) out('  none');
  }
  return 0;
}

interface Read {
  readonly document: PluginDocument;
  readonly source: string;
  /** The bytes of the registry's `keys/revoked.json`, undefined when it publishes none. */
  readonly revokedList: Uint8Array | undefined;
}

/** The owners the revocation list names, as it records each (a list that does not read names none). */
function revokedOwners(
  owners: readonly string[],
  list: Uint8Array | undefined,
): { fingerprint: string; revoked: string; reason: string }[] {
  if (!list) return [];
  let keys: unknown;
  try {
    keys = (JSON.parse(new TextDecoder().decode(list)) as Partial<RevokedKeysDocument>).keys;
  } catch {
    return []; // the registry refuses a list that does not read under its own code; a listing only reads
  }
  if (!Array.isArray(keys)) return [];
  return owners.flatMap((fingerprint) => {
    const k = (keys as RevokedKeysDocument['keys']).find((e) => e?.fingerprint === fingerprint);
    return k ? [{ fingerprint, revoked: String(k.revoked), reason: String(k.reason ?? '') }] : [];
  });
}

/** The plugin document of a local registry's published tree, as it is on disk. */
async function readLocal(dir: string, plugin: string): Promise<Read> {
  const { readConfig } = await import('../local/registry.ts');
  await readConfig(dir); // NOT_A_REGISTRY for a folder that is not one
  const file = path.join(dir, 'public', pluginDocumentKey(plugin));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new CliError('PLUGIN_NOT_FOUND', `the registry at ${dir} has no plugin ${plugin}`, { cause });
  }
  const revokedList = await readFile(path.join(dir, 'public', REVOKED_KEYS_KEY)).catch(() => undefined);
  return { document: JSON.parse(text) as PluginDocument, source: dir, revokedList };
}

/**
 * The plugin document of a served registry, verified: through the configured registry with that URL (its
 * pinned key, its trusted snapshot, the bin, the document's digest), as `info` reads it.
 */
async function readServed(parsed: Parsed, url: string, plugin: string): Promise<Read> {
  const { registryUrlArgument, withClient } = await import('../client.ts');
  // As config.json keeps it (normalized): one registry add refuses is exit 2 and never shown whole; it
  // was looked for as given, REGISTRY_NOT_CONFIGURED (exit 1) printing it, credentials and all.
  const wanted = registryUrlArgument('--url', url);
  return withClient(parsed, async ({ client }) => {
    const entry = (await client.listRegistries()).find((r) => r.entry.url === wanted)?.entry;
    if (!entry)
      throw new CliError(
        'REGISTRY_NOT_CONFIGURED',
        `no configured registry is at ${wanted}: add it first (plugindex registry add NAME ${wanted} --key REGISTRY_KEY.asc), so its documents are verified`,
      );
    const info = await client.info(plugin, { registry: entry.name });
    const revokedList = await client.revokedKeys(entry.name);
    return { document: info.document, source: `${entry.name} ${entry.url}`, revokedList };
  });
}
