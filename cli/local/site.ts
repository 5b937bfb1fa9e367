/**
 * The published tree of a local registry, `DIR/public`, as a store. Its own module, light to load (no
 * pipeline, no keys), so a command can open it before the rest of what it runs is loaded.
 */
import path from 'node:path';
import { FsStore } from '../../adapters/fs-store.ts';

export const SITE_DIR = 'public';

export function openSite(dir: string): FsStore {
  return new FsStore(path.join(dir, SITE_DIR));
}
