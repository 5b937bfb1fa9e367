import { describe, expect, it } from 'vitest';
import { readOnce } from '../../index-builder/limited.ts';

describe('readOnce', () => {
  it('reads a key once while asks share its read, and reads it again only after a failure', async () => {
    const kept = new Map<string, Promise<number>>();
    let reads = 0;
    let fail = true;
    const read = () => {
      reads += 1;
      return fail ? Promise.reject(new Error('gone')) : Promise.resolve(reads);
    };

    const [a, b] = [readOnce(kept, 'k', read), readOnce(kept, 'k', read)];
    await expect(a).rejects.toThrow('gone');
    await expect(b).rejects.toThrow('gone');
    expect(reads).toBe(1);

    fail = false;
    expect(await readOnce(kept, 'k', read)).toBe(2);
    expect(await readOnce(kept, 'k', read)).toBe(2);
    expect(reads).toBe(2);
  });
});
