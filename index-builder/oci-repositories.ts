/**
 * OCI repositories claimed (impersonation): a plugin whose artifact names an OCI repository another
 * publisher's plugin already keeps its artifacts in is refused (`OCI_REPOSITORY_CLAIMED`). Published, it
 * showed on its pages, in the falcoctl index and in search as distributed from the other plugin's
 * repository, and a reference to that repository pasted into `plugindex install` named two plugins, so the
 * client refused it as ambiguous (client.ts `#ociReference`): one publish broke every pasted reference of
 * a plugin that was not its own.
 *
 * A repository is its registry host (lowercase, without the `:443` every HTTPS registry answers on, Docker
 * Hub's aliases as `docker.io`, a one-component Docker Hub path under `library/`) and its path, with neither
 * tag nor digest (oci.ts `ociRepositoryOf`, which the client matches a pasted reference by too, so what one
 * publish holds is what a pasted reference finds). The first plugin to publish a version naming it holds
 * it; a plugin owned by the same keys may share it (a plugin's builds for two products, a rename); a plugin
 * whose own published versions already name it keeps doing so (registries made before the rule: collisions
 * grandfathered, never unpublished). A version the operator
 * removed claims nothing: removing a squatter's versions frees the repository. Judged at publish only, under
 * first-come ownership (without owners there is no one else's repository).
 *
 * The index (filed-index.ts): each plugin filed under every repository it names, beside the catalog in the
 * intake store (`state/catalog/oci-repositories/<bin>.tsv`), so a publish reads one bin per repository it
 * names rather than every plugin; built once from the published plugin documents when not complete (one
 * of format 2, keyed by an older rule, from its own bins: `repositoriesOfFormat2Key`), and anew by a rebuild. A plugin filed counts only when its document (read through the batch's checks) names
 * the repository in a version not removed: an entry a run that died left, or a stray line, refuses nothing.
 */

import { type Problem, problem } from './errors.ts';
import { type FiledEntry, FiledIndex, type FiledIndexFormat, writeFiledIndex } from './filed-index.ts';
import { listPluginNames, OCI_REPOSITORIES_PREFIX, pluginDocumentKey } from './layout.ts';
import { forEachLimited } from './limited.ts';
import { allArtifacts, type Manifest, type PluginDocument } from './model.ts';
import { ociRegistryUrl, ociRepositoryOf, parseOciReference } from './oci.ts';
import type { Store } from './store.ts';

/** Each repository the manifest's artifacts name, with the pointer of the first artifact naming it. */
export function manifestOciRepositories(manifest: Manifest): Map<string, string> {
  const found = new Map<string, string>();
  for (const [i, artifact] of (manifest.installation?.artifacts ?? []).entries()) {
    const repository = artifact.oci ? ociRepositoryOf(artifact.oci.reference) : undefined;
    if (repository && !found.has(repository))
      found.set(repository, `/installation/artifacts/${i}/oci/reference`);
  }
  return found;
}

/** Every repository a plugin's versions keep artifacts in, but those of versions the operator removed. */
export function documentOciRepositories(doc: PluginDocument): Set<string> {
  const found = new Set<string>();
  for (const version of doc.versions) {
    if (version.removed) continue;
    for (const artifact of allArtifacts(version)) {
      const repository = artifact.oci ? ociRepositoryOf(artifact.oci.reference) : undefined;
      if (repository) found.add(repository);
    }
  }
  return found;
}

/** A plugin that holds a repository, and who owns it. */
export interface RepositoryHolder {
  readonly name: string;
  readonly owners: readonly string[];
}

/** OCI_REPOSITORY_CLAIMED for `repository`, named at `path`, naming the plugins that hold it. */
export function ociRepositoryProblem(
  path: string,
  repository: string,
  holders: readonly RepositoryHolder[],
): Problem {
  const names = holders.map((h) => `"${h.name}"`).join(', ');
  return problem(
    'OCI_REPOSITORY_CLAIMED',
    path,
    `OCI repository ${repository} is where ${names} ${holders.length === 1 ? 'keeps its' : 'keep their'} artifacts, ${holders.length === 1 ? 'a plugin' : 'plugins'} another publisher owns (a repository is held by the first plugin to publish it)`,
    {
      expected: `an OCI repository of this plugin's own, or a signature by an owner of ${names} (${holders.flatMap((h) => h.owners).join(', ') || 'none'})`,
      found: repository,
    },
  );
}

/**
 * What a repository format 2 filed is now: its key as `ociRepositoryOf` writes it (format 2 wrote the host
 * lowercase as the reference did, so an IP literal not in the URL parser's form, `10.1`, `0x0a.1`,
 * `[0:0::1]`, was filed apart from the address written out), and, for a loopback host without a port, at
 * `:443` too: format 2 dropped `:443` on every host, and a loopback registry at :443 (http://127.0.0.1:443)
 * is another than at no port (port 80). Filed under both, the wrong one is a stray entry, which refuses
 * nothing (a holder counts only where its document names the repository) and costs a document read. A host
 * of neither `.` nor `:` (nor `localhost`) names no registry in a reference, so format 2 filed one only by
 * dropping the `:443` the reference wrote (`registry:443/x`, `167772161:443/x`): it is read with it put back,
 * where as a reference it named nothing and its holder was dropped from the index.
 * @example repositoriesOfFormat2Key('10.1:5000/acme/x') // ['10.0.0.1:5000/acme/x']
 */
export function repositoriesOfFormat2Key(key: string): string[] {
  const slash = key.indexOf('/');
  const host = key.slice(0, slash);
  const written =
    slash > 0 && !/[.:]/.test(host) && host !== 'localhost' ? `${host}:443${key.slice(slash)}` : key;
  const repository = ociRepositoryOf(written);
  const parts = parseOciReference(written);
  if (!repository || !parts) return [];
  const url = ociRegistryUrl(parts.registry);
  if (url?.protocol !== 'http:' || /:[0-9]+$/.test(parts.registry)) return [repository];
  return [repository, `${url.hostname}:443/${repository.slice(url.host.length + 1)}`];
}

/**
 * The index's place and format (filed-index.ts): each plugin filed under every repository it names. Format 2
 * files Docker Hub's one-component names under `library/` and ports as numbers: an index of format 1 was
 * keyed otherwise, so it counts as not complete and is built anew from the documents, once. Format 3 files
 * the host and port as the URL parser writes them (`ociRepositoryOf`): an index of format 2 is filed anew
 * from its own bins (`repositoriesOfFormat2Key`), not from the documents: the two rules differ only in the
 * host's form and a loopback `:443`, both of which a format-2 key still shows.
 */
const FORMAT: FiledIndexFormat = {
  prefix: OCI_REPOSITORIES_PREFIX,
  header: 'plugindex-oci-repositories 3',
  rekeyed: { headers: ['plugindex-oci-repositories 2'], rekey: repositoriesOfFormat2Key },
};

const DOCUMENTS_IN_FLIGHT = 32;

/** What a plugin is filed under: each repository its document names, with its name. */
export function ociRepositoryEntries(doc: PluginDocument): FiledEntry[] {
  return [...documentOciRepositories(doc)].map((repository) => [repository, doc.name] as const);
}

/**
 * Writes the whole index from `entries` (a rebuild's: `ociRepositoryEntries` of every plugin it rebuilt),
 * over what was stored.
 */
export async function writeOciRepositoryIndex(store: Store, entries: Iterable<FiledEntry>): Promise<void> {
  await writeFiledIndex(store, FORMAT, entries);
}

/**
 * Every plugin document the site store holds, read for the repositories it names: what the index is built
 * from when there is none (once; a registry of 100,000 plugins reads each document then). A document that
 * does not parse names nothing: its plugin is judged by its own document, read through the batch's checks.
 */
async function* publishedEntries(site: Store): AsyncIterable<FiledEntry> {
  const names: string[] = [];
  for await (const name of listPluginNames(site)) names.push(name);
  const entries: FiledEntry[] = [];
  await forEachLimited(names, DOCUMENTS_IN_FLIGHT, async (name) => {
    const object = await site.get(pluginDocumentKey(name));
    if (!object) return;
    try {
      entries.push(
        ...ociRepositoryEntries(JSON.parse(new TextDecoder().decode(object.body)) as PluginDocument),
      );
    } catch {
      // Not a document: no entry (see above).
    }
  });
  yield* entries;
}

/**
 * One batch's use of the index: the plugins filed under a repository (`filed`), and the repositories each
 * plugin the batch accepted names anew (`add`), filed by `save` before the batch writes any plugin document.
 */
export class OciRepositoryIndex {
  readonly #index: FiledIndex;

  constructor(intake: Store, site: Store) {
    this.#index = new FiledIndex(intake, FORMAT, () => publishedEntries(site));
  }

  /** Every plugin filed under `repository` (an `ociRepositoryOf`), or accepted in this batch under it. */
  filed(repository: string): Promise<string[]> {
    return this.#index.filed(repository);
  }

  /** Files a plugin this batch accepted under a repository it names. */
  add(repository: string, name: string): void {
    this.#index.add(repository, name);
  }

  /** Writes the bins of the plugins added and still `published` (filed-index.ts `FiledIndex.save`). */
  async save(published?: ReadonlySet<string>): Promise<void> {
    await this.#index.save(published);
  }

  /**
   * Takes plugin `name` back out from under `repositories`, filed by a publish the registry voided
   * (`FiledIndex.withdraw`).
   */
  withdraw(name: string, repositories: Iterable<string>): Promise<void> {
    return this.#index.withdraw([...repositories].map((repository) => [repository, name] as const));
  }
}
