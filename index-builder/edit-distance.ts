/**
 * How far one word is from another, for a did-you-mean. A module of its own, importing nothing: the
 * command line's `--help` and command table (cli/args.ts) load it, and load nothing heavy.
 */

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps (the
 * did-you-mean of a mistyped command or option, and of a plugin name no registry lists).
 */
export function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d = new Uint16Array((a.length + 1) * width);
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) d[i * width] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(
        at(i - 1, j) + 1,
        at(i, j - 1) + 1,
        at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * width + j] = best;
    }
  return at(a.length, b.length);
}
