/**
 * `<data>/trust/.index.json`: which trust folder holds a record of which registry, so the trust every name
 * of one registry shares (`ClientState.sharedTrust`) reads the records of that registry and not every
 * folder under trust/ (a client with many registries, plugin sets and mirrors read hundreds of files on
 * each check). The index only says where to look: what a record accepted is always read from the record.
 *
 * Each folder name maps to the registries (as `registryIdentity` spells them) its record may be of. A
 * record moving to another registry is listed under both while it is written (the new one added before the
 * record, the old one dropped after), so no reader misses a record this client wrote; an empty list is a
 * record that names no registry (kept before records did, or a manifest URL's pin). The index is a cache of
 * the folders: missing or unreadable, it is rebuilt from them; a folder it does not list (written by a
 * client before the index, or one killed between the two) is read and added, one it lists that is gone is
 * dropped. A record rewritten for another registry where this index was not told (an older client, a
 * linked folder written through another data folder, a restored copy) is found only by a check of the
 * registry it is listed under (`ClientState.recordsSharingTrust`). Written whole by rename under its own
 * lock, taken after a record's lock and never before one.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readTextIfExists, withFileLock, writeFileAtomic } from './atomic.ts';

/**
 * v2 since records list the registries their former departures name (`ClientState`'s `indexedRegistries`):
 * a client before them rewrote a name's entry with its own registry alone, in a v1 index that a client since
 * would trust and never read that record for the former registry's checks, so a stolen key's mark kept there
 * was missed. A v1 index is now rebuilt from the folders (once, and after each run of an older client, which
 * rebuilds a v2 one likewise).
 */
const SCHEMA = 'plugindex/trust-index/v2';

/** The index's file name: a dot name, which no registry name (`REGISTRY_NAME`) nor a set's can be. */
export const TRUST_INDEX_FILE = '.index.json';

/**
 * Listed under it, a record is read by the checks of every registry: it keeps a former departure that does
 * not read whose `registry` does not read either (`TrustRecord.damagedDepartures`), which may be any
 * registry's, so every check refuses until it is mended. Not a URL, so no registry's identity. Older clients
 * take it for a registry no snapshot names.
 */
export const ANY_REGISTRY = '*';

/** Folder name -> the registries its record may be of (empty: none named; `ANY_REGISTRY`: any). */
export type TrustIndexNames = ReadonlyMap<string, readonly string[]>;

/** The index's content, or undefined when it is missing or not one this version wrote (then rebuilt). */
export function parseTrustIndex(text: string | undefined): Map<string, string[]> | undefined {
  if (text === undefined) return undefined;
  let parsed: { schema?: unknown; names?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (parsed?.schema !== SCHEMA || typeof parsed.names !== 'object' || parsed.names === null)
    return undefined;
  const names = new Map<string, string[]>();
  for (const [name, registries] of Object.entries(parsed.names)) {
    // One entry that does not read is the whole index not trusted: a name left out would be a name missed.
    if (!Array.isArray(registries) || !registries.every((r) => typeof r === 'string')) return undefined;
    names.set(name, registries as string[]);
  }
  return names;
}

export function serializeTrustIndex(names: TrustIndexNames): string {
  const sorted = Object.fromEntries([...names.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ schema: SCHEMA, names: sorted }, null, 2)}\n`;
}

/**
 * The trust folders under `trust` (dot names, the index and lock files are none), sorted. A link is taken
 * as one (a folder kept elsewhere): what it leads to is known only by reading it, as any folder's record.
 */
export async function trustFolders(trust: string): Promise<string[]> {
  const entries = await readdir(trust, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
}

export class TrustIndex {
  readonly file: string;

  constructor(trust: string) {
    this.file = join(trust, TRUST_INDEX_FILE);
  }

  /** The index as last written, or undefined when there is none to trust (a reader then rebuilds it). */
  async read(): Promise<Map<string, string[]> | undefined> {
    return parseTrustIndex(await readTextIfExists(this.file).catch(() => undefined));
  }

  /**
   * Edits the index under its lock. `edit` is given the index as kept (or, when there is none, what
   * `rebuild` reads from the folders) and changes it in place; it is written only when `edit` says so.
   */
  async edit(
    rebuild: () => Promise<Map<string, string[]>>,
    edit: (names: Map<string, string[]>) => boolean,
  ): Promise<void> {
    await withFileLock(this.file, async () => {
      const kept = await this.read();
      const names = kept ?? (await rebuild());
      if (edit(names) || !kept) await writeFileAtomic(this.file, serializeTrustIndex(names));
    });
  }
}
