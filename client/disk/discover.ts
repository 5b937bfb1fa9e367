/**
 * The spec's filesystem discovery: plugin version folders under configured paths, each a folder holding a
 * `manifest.json` (`<path>/<name>/<version>/manifest.json`, or at any depth with `recursive`), read with
 * its signature and the digest of every file beside it, for discovery.ts to verify. Nothing here trusts
 * what it reads; it only gathers it. `watch` reports changes under the paths (`list --watch`).
 */
import { type FSWatcher, watch as watchFs } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { MAX_MANIFEST_BYTES } from '../../index-builder/manifest/parse.ts';
import { hashFileAt, readRegularIfExists, tempNameOf } from './atomic.ts';

/** A version folder found on disk, as read (not yet verified). */
export interface FoundFolder {
  /** The configured path it was found under. */
  readonly root: string;
  /** The version folder, absolute. */
  readonly dir: string;
  readonly manifest: Uint8Array;
  /** The text of manifest.json.asc, when there is one. */
  readonly signature?: string;
  /** Every other file in the folder (any depth), by path relative to it with `/`: its sha256 and size. */
  readonly files: Readonly<Record<string, { readonly sha256: string; readonly size: number }>>;
}

/**
 * A manifest's signature, read at most: one armored signature packet is well under it (the registry's
 * MAX_SIGNATURE_BYTES, bundle.ts, is 16 KiB; not imported: it brings the bundle reader).
 */
const MAX_SIGNATURE_BYTES = 64 * 1024;

/** Folders deeper than this are not scanned, even with `recursive` (a link loop must end). */
const MAX_DEPTH = 8;
/** Files hashed per version folder at most; a folder holding more is not a plugin version. */
const MAX_FILES = 256;

/**
 * Every version folder under `paths`: without `recursive`, exactly `<path>/<name>/<version>/`; with it, any
 * folder holding a manifest.json down to MAX_DEPTH. A path that does not exist is skipped (the spec's
 * defaults name folders most machines lack).
 */
export async function scanPluginFolders(
  paths: readonly string[],
  options: { readonly recursive: boolean },
): Promise<FoundFolder[]> {
  const found: FoundFolder[] = [];
  const seen = new Set<string>();
  const visit = async (root: string, dir: string, depth: number): Promise<void> => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const isVersion = options.recursive ? depth >= 1 : depth === 2;
    if (isVersion) {
      // Read only if a file of a manifest's size: a FIFO held the scan until someone wrote to it, and a
      // link to /dev/zero was read until memory ran out, before its size was looked at.
      const manifest = await readRegularIfExists(join(dir, 'manifest.json'), MAX_MANIFEST_BYTES);
      if (manifest !== undefined) {
        found.push(await readFolder(root, dir, manifest));
        return;
      }
    }
    if (depth >= (options.recursive ? MAX_DEPTH : 2)) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1)))
      if (entry.isDirectory() && !entry.name.startsWith('.'))
        await visit(root, join(dir, entry.name), depth + 1);
  };
  for (const root of paths) {
    const info = await stat(root).catch(() => undefined);
    if (info?.isDirectory()) await visit(root, root, 0);
  }
  return found;
}

async function readFolder(root: string, dir: string, manifest: Uint8Array): Promise<FoundFolder> {
  const signature = (
    await readRegularIfExists(join(dir, 'manifest.json.asc'), MAX_SIGNATURE_BYTES)
  )?.toString('utf8');
  const files: Record<string, { sha256: string; size: number }> = {};
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  let count = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const name = relative(dir, path).split(sep).join('/');
    if (name === 'manifest.json' || name === 'manifest.json.asc') continue;
    // A placement's temp file (one in flight, or one a killed install left) is none of the version's files.
    if (tempNameOf(entry.name)) continue;
    if (++count > MAX_FILES) break;
    const hashed = await hashFileAt(path);
    if (hashed) files[name] = hashed;
  }
  return { root, dir, manifest, ...(signature !== undefined ? { signature } : {}), files };
}

/** How long changes settle before `onChange` runs: a copied folder is many events, one listing. */
const QUIET_MS = 200;

/**
 * Calls `onChange` (at most every QUIET_MS) when anything under `paths` changes, until the returned stop
 * is called. A path that does not exist yet is watched through its nearest existing parent (not below it),
 * so its creation is seen; the caller watches again then, to see inside it.
 */
export async function watchPaths(paths: readonly string[], onChange: () => void): Promise<() => void> {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, QUIET_MS);
  };
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) {
      watchers.push(watchFs(path, { recursive: true }, changed));
      continue;
    }
    let parent = dirname(path);
    while (parent !== dirname(parent) && !(await stat(parent).catch(() => undefined))?.isDirectory())
      parent = dirname(parent);
    watchers.push(watchFs(parent, { recursive: false }, changed));
  }
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
