/**
 * The folders' import rules (ARCHITECTURE.md): the core imports no app and no adapter; cli/ and functions/
 * are two apps that share adapters/ and never import each other; only adapters/ and functions/ import the
 * AWS SDK. Read from the source text, so a new file is held to them as soon as it exists.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const SOURCE_FOLDERS = ['index-builder', 'adapters', 'functions', 'cli', 'infra'] as const;
type Folder = (typeof SOURCE_FOLDERS)[number];

/** Every module specifier a file names: static and dynamic imports, and re-exports. */
function specifiersOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm))
    found.push(match[1] as string);
  return found;
}

interface Edge {
  readonly file: string;
  /** The top-level folder a relative import lands in, or the package an import names. */
  readonly target: string;
}

function edgesOf(folder: Folder): Edge[] {
  const files = readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' }).filter((f) =>
    /\.(ts|mts|mjs|js)$/.test(f),
  );
  return files.flatMap((relative) => {
    const file = path.join(folder, relative);
    return specifiersOf(readFileSync(path.join(ROOT, file), 'utf8')).map((specifier) => ({
      file,
      target: specifier.startsWith('.')
        ? (path
            .relative(ROOT, path.resolve(ROOT, path.dirname(file), specifier))
            .split(path.sep)[0] as string)
        : specifier,
    }));
  });
}

function importing(folder: Folder, targets: (target: string) => boolean): string[] {
  return edgesOf(folder)
    .filter((edge) => targets(edge.target))
    .map((edge) => `${edge.file} -> ${edge.target}`);
}

describe('when the source folders import each other', () => {
  it('finds the imports it checks', () => {
    // Guards the reader itself: a regex that found nothing would pass every rule below.
    expect(importing('cli', (t) => t === 'adapters').length).toBeGreaterThan(0);
    expect(importing('functions', (t) => t.startsWith('@aws-sdk/')).length).toBeGreaterThan(0);
  });

  it('keeps the core free of the apps and the adapters', () => {
    expect(importing('index-builder', (t) => ['adapters', 'cli', 'functions', 'infra'].includes(t))).toEqual(
      [],
    );
  });

  it('lets the adapters depend on the core only', () => {
    expect(importing('adapters', (t) => ['cli', 'functions', 'infra'].includes(t))).toEqual([]);
  });

  it('keeps the two apps apart: cli/ and functions/ share adapters/, never each other', () => {
    expect(importing('cli', (t) => t === 'functions')).toEqual([]);
    expect(importing('functions', (t) => t === 'cli')).toEqual([]);
  });

  it('leaves the AWS SDK to adapters/ and functions/', () => {
    for (const folder of ['index-builder', 'cli', 'infra'] as const)
      expect(importing(folder, (t) => t.startsWith('@aws-sdk/'))).toEqual([]);
  });
});
