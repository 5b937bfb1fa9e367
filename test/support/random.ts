/**
 * The one seeded generator for tests that generate their cases: a fixed seed gives the same cases on every
 * run, so a failure names the same inputs again.
 *
 * mulberry32, computed in 32-bit integers (Math.imul, `>>> 0`), and a number below `n` read from the high
 * bits. A linear congruential step in doubles, `(seed * 1103515245 + 12345) % 2 ** 31`, loses the product's
 * low bits beyond 2^53, and read as `seed % n` from its low bits it came to a handful of cases repeated.
 */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}
