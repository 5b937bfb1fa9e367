/**
 * Credentials for OCI registries, from where `docker login` (and oras, helm registry login, falcoctl's
 * basic auth) keep them: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, under `auths` by
 * registry host, as `auth` (base64 of `user:password`) or `username` and `password`. Credential helpers
 * (`credsStore`, `credHelpers`) run other programs: they are not used, and a registry they hold is pulled
 * anonymously (a private one then answers CREDENTIALS_MISSING, which names this file).
 *
 * Pure: the caller reads the file.
 */
import { Buffer } from 'node:buffer';
import { join } from 'node:path';
import { escapePointer } from '../index-builder/errors.ts';
import { dockerHubHostOf } from '../index-builder/oci.ts';
import { ClientError } from './errors.ts';
import type { OciCredentials } from './fetcher.ts';
import { isObject } from './json-input.ts';

/** Where the Docker configuration is, from the environment and the home folder. */
export function dockerConfigPath(env: Readonly<Record<string, string | undefined>>, home: string): string {
  return join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json');
}

/**
 * The credentials `config.json` holds for `host` (`registry.example.com`, `127.0.0.1:5000`), matched as
 * docker matches them: the host itself, or an `https://host` (or `http://host`) key, with or without a path.
 * Docker Hub by any of its names (`dockerHubHostOf`): `docker login` keeps its credentials under
 * `https://index.docker.io/v1/` while a reference names it `docker.io` or `registry-1.docker.io`.
 * @throws ClientError CLIENT_CONFIG_INVALID for a file that is not JSON, or an `auth` that is not
 *   base64 of `user:password`, naming the file and the key.
 */
export function ociCredentialsFor(text: string, file: string, host: string): OciCredentials | undefined {
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    throw new ClientError('CLIENT_CONFIG_INVALID', `${file} is not JSON`);
  }
  const auths = isObject(config) && isObject(config.auths) ? config.auths : {};
  const wanted = dockerHubHostOf(host);
  for (const [key, value] of Object.entries(auths)) {
    if (hostOf(key) !== wanted || !isObject(value)) continue;
    if (typeof value.auth === 'string' && value.auth !== '') {
      const decoded = Buffer.from(value.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0)
        throw new ClientError(
          'CLIENT_CONFIG_INVALID',
          // Escaped: docker writes some keys as URLs, whose '/' would read as more levels of the pointer.
          `${file}#/auths/${escapePointer(shownDockerConfigKey(key))}/auth: expected base64 of "user:password"`,
        );
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof value.username === 'string' && typeof value.password === 'string')
      return { username: value.username, password: value.password };
  }
  return undefined;
}

/**
 * A key of `auths` as a message names it: a user name and password written into it (`https://user:pass@host`,
 * `user:pass@host`: up to the last `@` before the first `/` after any scheme) as `***`, the rest as written,
 * as the client shows every URL (config.ts `redactUrl`). docker matches no such key to a host, and neither
 * does `ociCredentialsFor`, yet the file is the user's own and a message naming its key must not print it.
 * @example shownDockerConfigKey('https://u:pw@registry.example.com/v1/') // 'https://***@registry.example.com/v1/'
 */
export function shownDockerConfigKey(key: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(key)?.[0] ?? '';
  const slash = key.indexOf('/', scheme.length);
  const authority = key.slice(scheme.length, slash < 0 ? key.length : slash);
  const at = authority.lastIndexOf('@');
  return at < 0 ? key : `${scheme}***${key.slice(scheme.length + at)}`;
}

/** `https://host/v1/` and `host` alike -> `host` (lower case, Docker Hub as `docker.io`). */
function hostOf(key: string): string {
  const bare = key.replace(/^[a-z]+:\/\//i, '');
  return dockerHubHostOf(bare.split('/')[0] ?? '');
}
