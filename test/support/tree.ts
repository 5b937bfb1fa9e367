/** A folder's whole state, for the tests that check a refused command left it alone. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Every file under `dir` (its path relative to `dir`) with its bytes, in base64. */
export async function treeOf(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files.set(path.relative(dir, file), await readFile(file, 'base64'));
  }
  return files;
}
