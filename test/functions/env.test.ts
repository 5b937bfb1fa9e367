import { describe, expect, it } from 'vitest';
import { optionalInteger, readFunctionConfig } from '../../functions/env.ts';
import { AwsAdapterError } from '../../functions/errors.ts';

const base = { INTAKE_BUCKET: 'intake', SITE_BUCKET: 'site', SIGNING_KEY_SECRET_ID: 'plugindex/signing-key' };

describe('when a function reads its environment', () => {
  it('reads the settings, with defaults for the optional ones', () => {
    expect(readFunctionConfig(base)).toEqual({
      intakeBucket: 'intake',
      siteBucket: 'site',
      signingKeySecretId: 'plugindex/signing-key',
      configKey: 'config/plugindex.json',
      distributionId: undefined,
      s3Endpoint: undefined,
      defaults: {},
    });
  });

  it('fails fast naming a missing variable', () => {
    expect(() => readFunctionConfig({ ...base, SITE_BUCKET: ' ' })).toThrow(AwsAdapterError);
    expect(() => readFunctionConfig({ ...base, SITE_BUCKET: undefined })).toThrow(
      expect.objectContaining({ code: 'ENV_MISSING', message: expect.stringContaining('SITE_BUCKET') }),
    );
  });

  it('names every missing or malformed variable in one error, not the first only', () => {
    expect(() => readFunctionConfig({ SIGNING_KEY_SECRET_ID: 'k' })).toThrow(
      expect.objectContaining({
        code: 'ENV_MISSING',
        message: expect.stringMatching(/INTAKE_BUCKET.*SITE_BUCKET/),
      }),
    );
    expect(() =>
      readFunctionConfig({ SITE_BUCKET: 's', REGISTRY_URL: 'not a url', SNAPSHOT_TTL_SECONDS: '1e3' }),
    ).toThrow(
      expect.objectContaining({
        name: 'AwsAdapterError',
        code: 'ENV_INVALID',
        message: expect.stringMatching(
          /^4 problems .*INTAKE_BUCKET.*SIGNING_KEY_SECRET_ID.*REGISTRY_URL.*SNAPSHOT_TTL_SECONDS/,
        ),
      }),
    );
  });

  it('reads registry defaults from the deployment', () => {
    expect(
      readFunctionConfig({
        ...base,
        REGISTRY_NAME: 'R',
        REGISTRY_URL: 'https://r.example.com',
        SNAPSHOT_TTL_SECONDS: '86400',
      }).defaults,
    ).toEqual({
      name: 'R',
      url: 'https://r.example.com',
      snapshotTtlSeconds: 86400,
    });
    expect(() => readFunctionConfig({ ...base, SNAPSHOT_TTL_SECONDS: '5' })).toThrow(
      expect.objectContaining({ code: 'ENV_INVALID' }),
    );
    // At cold start, not at the first publish (a RangeError at the snapshot's expiry, then every retry).
    expect(() => readFunctionConfig({ ...base, SNAPSHOT_TTL_SECONDS: '10000000000000' })).toThrow(
      expect.objectContaining({
        code: 'ENV_INVALID',
        message: expect.stringContaining('SNAPSHOT_TTL_SECONDS'),
      }),
    );
  });

  it('reads how often the schedule re-signs the snapshot, and refuses at cold start a default lifetime under two of them', () => {
    expect(readFunctionConfig({ ...base, SNAPSHOT_REFRESH_SECONDS: '21600' }).snapshotRefreshSeconds).toBe(
      21600,
    );
    expect(readFunctionConfig(base).snapshotRefreshSeconds).toBeUndefined();
    for (const SNAPSHOT_REFRESH_SECONDS of ['6h', '1e3', '59', '157680001'])
      expect(() => readFunctionConfig({ ...base, SNAPSHOT_REFRESH_SECONDS })).toThrow(
        expect.objectContaining({
          name: 'AwsAdapterError',
          code: 'ENV_INVALID',
          message: expect.stringContaining('SNAPSHOT_REFRESH_SECONDS'),
        }),
      );
    // The stack refuses it at synth; a function deployed otherwise refuses it before its first publish.
    expect(() =>
      readFunctionConfig({ ...base, SNAPSHOT_TTL_SECONDS: '3600', SNAPSHOT_REFRESH_SECONDS: '21600' }),
    ).toThrow(
      expect.objectContaining({
        name: 'AwsAdapterError',
        code: 'ENV_INVALID',
        message: expect.stringMatching(/SNAPSHOT_TTL_SECONDS.*3600.*43200.*SNAPSHOT_REFRESH_SECONDS.*21600/),
      }),
    );
    expect(
      readFunctionConfig({ ...base, SNAPSHOT_TTL_SECONDS: '43200', SNAPSHOT_REFRESH_SECONDS: '21600' })
        .defaults,
    ).toEqual({ snapshotTtlSeconds: 43200 });
  });

  it('refuses a malformed registry default at cold start, naming the variable', () => {
    // Taken before, they failed at the first publish without a config object, as "registry config /url".
    for (const [name, value] of [
      ['REGISTRY_URL', 'not a url'],
      ['REGISTRY_URL', 'ftp://r.example.com'],
      ['REGISTRY_NAME', 'R\u202e'],
    ] as const)
      expect(() => readFunctionConfig({ ...base, REGISTRY_NAME: 'R', [name]: value })).toThrow(
        expect.objectContaining({
          name: 'AwsAdapterError',
          code: 'ENV_INVALID',
          message: expect.stringContaining(name),
        }),
      );
  });

  it('rejects a malformed number', () => {
    expect(optionalInteger({ N: '42' }, 'N', 1)).toBe(42);
    expect(optionalInteger({}, 'N', 7)).toBe(7);
    expect(() => optionalInteger({ N: 'ten' }, 'N', 1)).toThrow(
      expect.objectContaining({ code: 'ENV_INVALID' }),
    );
    // Number() reads these as numbers; no one means them as a count of seconds.
    for (const N of ['1e3', '0x100', '1.0', '99999999999999999999'])
      expect(() => optionalInteger({ N }, 'N', 1)).toThrow(
        expect.objectContaining({ code: 'ENV_INVALID', message: expect.stringContaining('N') }),
      );
    expect(() => optionalInteger({ N: '11' }, 'N', 1, 0, 10)).toThrow(
      expect.objectContaining({ code: 'ENV_INVALID' }),
    );
  });
});
