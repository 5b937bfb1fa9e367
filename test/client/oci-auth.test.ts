/** Credentials for OCI registries as `docker login` keeps them: where the file is, and what it holds. */
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { dockerConfigPath, ociCredentialsFor, shownDockerConfigKey } from '../../client/oci-auth.ts';

const FILE = '/home/u/.docker/config.json';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('when the Docker configuration is found', () => {
  it('is $DOCKER_CONFIG/config.json, else ~/.docker/config.json', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/etc/ci-docker' }, '/home/u')).toBe(
      '/etc/ci-docker/config.json',
    );
    expect(dockerConfigPath({}, '/home/u')).toBe(FILE);
    expect(dockerConfigPath({ DOCKER_CONFIG: '' }, '/home/u')).toBe(FILE);
  });
});

describe('when credentials are looked up for a registry', () => {
  it('reads `auth` (base64 of user:password, the password may hold a colon) by host, with or without a scheme', () => {
    const text = JSON.stringify({
      auths: {
        'https://registry.example.com/v1/': { auth: b64('alice:s3cret:with:colons') },
        '127.0.0.1:5000': { username: 'bob', password: 'pw' },
      },
    });
    expect(ociCredentialsFor(text, FILE, 'registry.example.com')).toEqual({
      username: 'alice',
      password: 's3cret:with:colons',
    });
    expect(ociCredentialsFor(text, FILE, '127.0.0.1:5000')).toEqual({ username: 'bob', password: 'pw' });
    expect(ociCredentialsFor(text, FILE, 'other.example')).toBeUndefined();
  });

  it("finds Docker Hub's credentials under any of its names, as docker login writes them (https://index.docker.io/v1/)", () => {
    const text = JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:pw') } } });
    for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'Docker.IO'])
      expect(ociCredentialsFor(text, FILE, host)).toEqual({ username: 'hubuser', password: 'pw' });
    // Written by another tool under the short name, found for the long one.
    const short = JSON.stringify({ auths: { 'docker.io': { username: 'u', password: 'p' } } });
    expect(ociCredentialsFor(short, FILE, 'registry-1.docker.io')).toEqual({ username: 'u', password: 'p' });
    // Only Docker Hub's own names: another registry is not it.
    expect(ociCredentialsFor(text, FILE, 'mirror.docker.example')).toBeUndefined();
  });

  it('uses no credential helper: a registry only a helper holds is pulled anonymously', () => {
    const text = JSON.stringify({ credsStore: 'desktop', auths: { 'registry.example.com': {} } });
    expect(ociCredentialsFor(text, FILE, 'registry.example.com')).toBeUndefined();
  });

  it('refuses a file that is not JSON and an auth that is not user:password, naming the file (CLIENT_CONFIG_INVALID)', () => {
    expect(() => ociCredentialsFor('{', FILE, 'registry.example.com')).toThrow(
      expect.objectContaining({ code: 'CLIENT_CONFIG_INVALID', message: `${FILE} is not JSON` }),
    );
    const text = JSON.stringify({ auths: { 'registry.example.com': { auth: b64('no-colon') } } });
    expect(() => ociCredentialsFor(text, FILE, 'registry.example.com')).toThrow(
      expect.objectContaining({
        code: 'CLIENT_CONFIG_INVALID',
        message: `${FILE}#/auths/registry.example.com/auth: expected base64 of "user:password"`,
      }),
    );
  });

  it('names a key holding "/" (a URL, as docker writes some) by its JSON pointer, escaped', () => {
    const text = JSON.stringify({ auths: { 'https://registry.example.com/v1/': { auth: b64('no-colon') } } });
    expect(() => ociCredentialsFor(text, FILE, 'registry.example.com')).toThrow(
      expect.objectContaining({
        code: 'CLIENT_CONFIG_INVALID',
        message: `${FILE}#/auths/https:~1~1registry.example.com~1v1~1/auth: expected base64 of "user:password"`,
      }),
    );
  });
});

describe('when a key of `auths` holds credentials of its own', () => {
  it('shows them as *** wherever the key is named (https://user:pass@host, user:pass@host), the rest as written', () => {
    // docker matches no such key (its host is `user:pass@host`), yet a message naming the key by its pointer
    // would print the password: the key is shown masked, as the client shows every URL.
    expect(shownDockerConfigKey('https://user:s3cret@registry.example.com/v1/')).toBe(
      'https://***@registry.example.com/v1/',
    );
    expect(shownDockerConfigKey('user:s3cret@registry.example.com')).toBe('***@registry.example.com');
    expect(shownDockerConfigKey('https://registry.example.com/v1/')).toBe('https://registry.example.com/v1/');
    expect(shownDockerConfigKey('registry.example.com/a@b')).toBe('registry.example.com/a@b');
  });
});
