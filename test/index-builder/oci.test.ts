/** Where a reference's Distribution API is asked: Docker Hub's names to the host docker's tools reach. */
import { describe, expect, it } from 'vitest';
import { ociApiOf, ociRepositoryOf, parseOciReference } from '../../index-builder/oci.ts';

/** `ociApiOf` of a whole reference, as `registry/repository`. */
function apiOf(reference: string): string {
  const parts = parseOciReference(reference);
  if (!parts) throw new Error(`${reference} does not parse`);
  const api = ociApiOf(parts.registry, parts.repository);
  return `${api.registry}/${api.repository}`;
}

describe('ociApiOf', () => {
  it("asks Docker Hub's API at registry-1.docker.io under every one of its names, in any case", () => {
    for (const host of [
      'docker.io',
      'index.docker.io',
      'registry-1.docker.io',
      'Docker.IO',
      'docker.io:443',
    ]) {
      expect(apiOf(`${host}/acme/lens:1.0.0`)).toBe('registry-1.docker.io/acme/lens');
    }
  });

  it("asks a one-component name of Docker Hub's under library/, as docker does", () => {
    expect(apiOf('docker.io/lens:1')).toBe('registry-1.docker.io/library/lens');
    expect(apiOf('index.docker.io/lens')).toBe('registry-1.docker.io/library/lens');
    expect(apiOf('registry-1.docker.io/lens')).toBe('registry-1.docker.io/library/lens');
    expect(apiOf('docker.io/library/lens')).toBe('registry-1.docker.io/library/lens');
  });

  it('asks any other registry as written, a Hub name on another port included', () => {
    expect(apiOf('registry.example/lens')).toBe('registry.example/lens');
    expect(apiOf('Registry.Example:5000/acme/lens')).toBe('Registry.Example:5000/acme/lens');
    expect(apiOf('127.0.0.1:5000/lens')).toBe('127.0.0.1:5000/lens');
    expect(apiOf('[::1]:5000/lens')).toBe('[::1]:5000/lens');
    expect(apiOf('docker.io:5000/lens')).toBe('docker.io:5000/lens');
    expect(apiOf('hub.docker.com/acme/lens')).toBe('hub.docker.com/acme/lens');
  });

  it('pulls a Hub reference from the repository ociRepositoryOf compares it as', () => {
    // A claim judged on one repository and a pull from another would let a pasted reference find a plugin
    // whose bytes come from elsewhere: the two must name the same Hub repository for every spelling.
    for (const reference of [
      'docker.io/lens',
      'index.docker.io/library/lens',
      'registry-1.docker.io/lens:2',
      'DOCKER.io/acme/lens',
    ]) {
      const api = apiOf(reference);
      expect(ociRepositoryOf(reference)).toBe(api.replace(/^registry-1\.docker\.io\//, 'docker.io/'));
    }
  });
});
