import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateValidatorSource } from '../../../index-builder/manifest/standalone.ts';

const GENERATED = path.resolve(import.meta.dirname, '../../../index-builder/manifest/validator.generated.js');

describe('when the schema changes', () => {
  it('keeps the committed precompiled validator in step with schema.ts (npm run generate rewrites it)', () => {
    const fresh = generateValidatorSource();
    if (process.env.UPDATE_GENERATED) writeFileSync(GENERATED, fresh);
    expect(readFileSync(GENERATED, 'utf8')).toBe(fresh);
  });
});
