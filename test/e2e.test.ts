/**
 * End to end, through the real command line and real sockets: init -> keygen -> pack -> publish -> serve ->
 * fetch over HTTP -> verify every signature with openpgp.js and with `gpg --verify` -> the index validates
 * against the reference PulumiCost registry schema.
 */

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { PluginDocument, SnapshotDocument } from '../index-builder/model.ts';
import { readPublicKey, verifyDetachedSignature } from '../index-builder/signing.ts';
import { gpgKeyring } from './support/gpg.ts';
import { PULUMICOST_SPEC } from './support/reference.ts';
import { freePort, type ServingRegistry, startServe } from './support/serve.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'cli/bin.mjs');
const run = promisify(execFile);

async function plugindex(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('when a publisher ships a plugin to a local registry', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'plugindex-e2e-'));
  const registryDir = path.join(work, 'registry');
  let port = 0;
  let base = '';
  let server: ServingRegistry | undefined;

  beforeAll(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('creates a registry, a publisher key, a signed bundle, and publishes it', async () => {
    const init = await plugindex('init', '--registry', registryDir, '--name', 'E2E Registry', '--url', base);
    expect(init.code, init.stderr).toBe(0);

    const keygen = await plugindex(
      'keygen',
      '--out',
      path.join(work, 'key'),
      '--name',
      'E2E Publisher',
      '--email',
      'e2e@example.com',
    );
    expect(keygen.code, keygen.stderr).toBe(0);
    expect(keygen.stdout.trim()).toMatch(/^[0-9A-F]{40}$/);

    const manifest = {
      name: 'e2e-costs',
      display_name: 'E2E Costs',
      description: 'Cost data for the end-to-end test',
      version: '1.0.0',
      api_version: 'v1',
      plugin_type: 'cost_source',
      capabilities: ['actual_cost', 'projected_cost'],
      supported_providers: ['aws'],
      requirements: {
        min_api_version: 'v1',
        max_api_version: 'v1',
        os: ['linux', 'darwin'],
        arch: ['amd64', 'arm64'],
      },
      metadata: { tags: ['e2e'], license: 'MIT', homepage: 'https://example.com/e2e' },
    };
    writeFileSync(path.join(work, 'manifest.json'), JSON.stringify(manifest, null, 2));
    mkdirSync(path.join(work, 'bin'));
    writeFileSync(path.join(work, 'bin/e2e-linux'), '#!/bin/sh\necho linux\n');
    writeFileSync(path.join(work, 'bin/e2e-darwin'), '#!/bin/sh\necho darwin\n');
    const bundle = path.join(work, 'e2e.tgz');
    const packed = await plugindex(
      'pack',
      path.join(work, 'manifest.json'),
      '--artifact',
      `linux/amd64=${path.join(work, 'bin/e2e-linux')}`,
      '--artifact',
      `darwin/arm64=${path.join(work, 'bin/e2e-darwin')}`,
      '--key',
      path.join(work, 'key/secret.asc'),
      '--out',
      bundle,
    );
    expect(packed.code, packed.stderr).toBe(0);

    const validated = await plugindex('validate', bundle, '--json');
    expect(validated.code, validated.stdout).toBe(0);
    expect(JSON.parse(validated.stdout)).toEqual({ valid: true, errors: [] });

    const published = await plugindex('publish', bundle, '--registry', registryDir);
    expect(published.code, published.stdout + published.stderr).toBe(0);
    expect(published.stdout).toContain('accepted e2e-costs@1.0.0');

    const again = await plugindex('publish', bundle, '--registry', registryDir);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already-published');
  });

  it('serves the registry over HTTP with the spec endpoints', async () => {
    server = await startServe(registryDir, port);
    const list = await fetch(`${base}/plugins`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toContain('application/json');
    const doc = (await (await fetch(`${base}/plugins/e2e-costs`)).json()) as PluginDocument;
    expect(doc.latest_version).toBe('1.0.0');
    expect(doc.versions[0]?.artifacts.map((a) => `${a.os}/${a.arch}`).sort()).toEqual([
      'darwin/arm64',
      'linux/amd64',
    ]);
    const page = await fetch(`${base}/plugins/e2e-costs`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('E2E Costs');
    const manifest = await fetch(`${base}/plugins/e2e-costs/1.0.0/manifest`);
    expect(((await manifest.json()) as { name: string }).name).toBe('e2e-costs');
    for (const artifact of doc.versions[0]?.artifacts ?? []) {
      const bytes = new Uint8Array(await (await fetch(artifact.url)).arrayBuffer());
      const { createHash } = await import('node:crypto');
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(artifact.sha256);
    }
  });

  it('has every document signed, verifiable by openpgp.js and by gpg, and bound by the snapshot', async () => {
    const keyText = await (await fetch(`${base}/keys/registry.asc`)).text();
    const key = await readPublicKey(keyText);
    const snapshotBytes = new Uint8Array(await (await fetch(`${base}/snapshot.json`)).arrayBuffer());
    const snapshot = JSON.parse(new TextDecoder().decode(snapshotBytes)) as SnapshotDocument;
    expect(snapshot.generation).toBeGreaterThanOrEqual(2);
    expect(snapshot.key_fingerprint).toBe(key.fingerprint);
    const doc = (await (await fetch(`${base}/plugins/e2e-costs/index.json`)).json()) as PluginDocument;
    const paths = [
      'snapshot.json',
      'plugins/e2e-costs/index.json',
      ...Object.keys(snapshot.documents).filter((p) => !p.endsWith('.asc')),
      new URL(doc.versions[0]?.manifest_url ?? '').pathname.slice(1),
    ];

    const gpg = gpgKeyring(keyText);
    for (const p of new Set(paths)) {
      const body = new Uint8Array(await (await fetch(`${base}/${p}`)).arrayBuffer());
      const signature = await (await fetch(`${base}/${p}.asc`)).text();
      await expect(verifyDetachedSignature(body, signature, [key.key]), p).resolves.toMatchObject({
        ok: true,
        fingerprint: key.fingerprint,
      });
      expect(gpg.verify(body, signature), p).toContain(`VALIDSIG ${key.fingerprint}`);
      const digest = snapshot.documents[p];
      if (digest) {
        const { createHash } = await import('node:crypto');
        expect(createHash('sha256').update(body).digest('hex'), p).toBe(digest.sha256);
      }
    }
    gpg.close();
  });

  it('serves an index that validates against the reference registry schema, and the same as YAML', async () => {
    const index = await (await fetch(`${base}/index.json`)).json();
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const schema = JSON.parse(
      readFileSync(path.join(PULUMICOST_SPEC, 'schemas/plugin_registry.schema.json'), 'utf8'),
    );
    expect(ajv.validate(schema, index), JSON.stringify(ajv.errors)).toBe(true);
    expect(YAML.parse(await (await fetch(`${base}/index.yaml`)).text())).toEqual(index);
  });

  it('exits 1 with every problem listed for an invalid manifest, and 2 for a usage error', async () => {
    writeFileSync(path.join(work, 'bad.json'), JSON.stringify({ name: 'Bad Name', version: 'one' }));
    const bad = await plugindex('validate', path.join(work, 'bad.json'), '--json');
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout) as { valid: boolean; errors: { code: string; path: string }[] };
    expect(report.valid).toBe(false);
    expect(report.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: 'MANIFEST_PATTERN_MISMATCH', path: '/name' }),
        expect.objectContaining({ code: 'MANIFEST_MISSING_FIELD', path: '/api_version' }),
      ]),
    );
    expect((await plugindex('validate')).code).toBe(2);
    expect((await plugindex('publish', '--bogus')).code).toBe(2);
    expect((await plugindex('nonsense')).code).toBe(2);
    for (const command of ['init', 'keygen', 'validate', 'pack', 'publish', 'serve', 'publishers']) {
      const help = await plugindex(command, '--help');
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain('usage: plugindex');
    }
  });

  it('lists at most 100 problems of a manifest that has tens of thousands, counting the rest', async () => {
    const example = JSON.parse(
      readFileSync(path.join(ROOT, 'examples/kubecost-lens/1.2.0/manifest.json'), 'utf8'),
    ) as Record<string, unknown>;
    // Within the manifest's size cap, 40,000 wrong items: two problems each (a type and an allowed value).
    const file = path.join(work, 'many.json');
    writeFileSync(
      file,
      JSON.stringify({ ...example, capabilities: Array.from({ length: 40_000 }, (_, i) => i) }),
    );
    const text = await plugindex('validate', file);
    expect(text.code).toBe(1);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`invalid: ${file} (80001 problems)`);
    expect(lines).toHaveLength(1 + 100);
    expect(lines[1]).toMatch(/^ {2}MANIFEST_TOO_MANY_ITEMS \/capabilities: /);
    expect(lines[100]).toBe(
      '  PROBLEMS_OMITTED /: 79902 more problems, not listed (a report lists 99) (found 80001 problems)',
    );
    const json = await plugindex('validate', file, '--json');
    const report = JSON.parse(json.stdout) as { errors: { code: string }[] };
    expect(report.errors).toHaveLength(100);
    expect(report.errors.at(-1)?.code).toBe('PROBLEMS_OMITTED');
  });

  it("writes a refused value's control characters as escapes, never to the terminal", async () => {
    const example = JSON.parse(
      readFileSync(path.join(ROOT, 'examples/kubecost-lens/1.2.0/manifest.json'), 'utf8'),
    ) as Record<string, unknown>;
    // A C1 CSI (U+009B: "clear the screen" with 2J), ESC and a right-to-left override, in a refused name.
    const file = path.join(work, 'escapes.json');
    writeFileSync(file, JSON.stringify({ ...example, name: 'evil\u009b2J\u001b[31m\u202e' }));
    const text = await plugindex('validate', file);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('found "evil\\u009b2J\\u001b[31m\\u202e"');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not be there
    expect(text.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
  });

  it('reads a YAML manifest through the YAML reader it loads only for one, as shipped', async () => {
    const example = JSON.parse(
      readFileSync(path.join(ROOT, 'examples/kubecost-lens/1.2.0/manifest.json'), 'utf8'),
    ) as Record<string, unknown>;
    writeFileSync(path.join(work, 'good.yaml'), `# kept as written\n${YAML.stringify(example)}`);
    const good = await plugindex('validate', path.join(work, 'good.yaml'), '--json');
    expect(good.code, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout)).toEqual({ valid: true, errors: [] });
    // What only the YAML reader refuses: a word YAML 1.1 readers take for a boolean.
    writeFileSync(path.join(work, 'ambiguous.yaml'), `${YAML.stringify(example)}legacy: yes\n`);
    const ambiguous = await plugindex('validate', path.join(work, 'ambiguous.yaml'), '--json');
    expect(ambiguous.code).toBe(1);
    expect(JSON.parse(ambiguous.stdout).errors).toEqual([
      expect.objectContaining({ code: 'MANIFEST_YAML_AMBIGUOUS', path: '/legacy' }),
    ]);
  });

  it('verifies as a client would, and notices a tampered document and a rollback', async () => {
    const state = path.join(work, 'client-state.json');
    const ok = await plugindex(
      'verify',
      '--url',
      base,
      '--key',
      path.join(registryDir, 'public/keys/registry.asc'),
      '--state',
      state,
    );
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/verified .*: generation \d+/);
    expect(ok.stdout).toContain('1 plugins, 1 manifests');

    // The document and its variants (a small registry's hold the document as it is): whichever is served.
    const searchFiles = ['', '.br', '.gz'].map((suffix) =>
      path.join(registryDir, `public/search.json${suffix}`),
    );
    const originals = searchFiles.map((file) => readFileSync(file));
    for (const [i, file] of searchFiles.entries())
      writeFileSync(file, String(originals[i]).replace('E2E Costs', 'E2E C0sts'));
    const tampered = await plugindex('verify', '--url', base, '--state', state);
    for (const [i, file] of searchFiles.entries()) writeFileSync(file, originals[i] as Buffer);
    expect(tampered.code).toBe(3);
    expect(tampered.stdout).toContain('DOCUMENT_MISMATCH');

    writeFileSync(state, JSON.stringify({ generation: 10_000 }));
    const rolledBack = await plugindex('verify', '--url', base, '--state', state);
    expect(rolledBack.code).toBe(3);
    expect(rolledBack.stdout).toContain('SNAPSHOT_ROLLBACK');
  });

  it('re-signs the snapshot with refresh, and re-renders everything with rebuild', async () => {
    const before = (await (await fetch(`${base}/snapshot.json`)).json()) as SnapshotDocument;
    const refreshed = await plugindex('refresh', '--registry', registryDir);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    const after = (await (await fetch(`${base}/snapshot.json`)).json()) as SnapshotDocument;
    expect(after.generation).toBe(before.generation + 1);
    expect(after.documents).toEqual(before.documents);
    const index = await (await fetch(`${base}/index.json`)).json();
    const rebuilt = await plugindex('rebuild', '--registry', registryDir);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toContain(`rebuilt 1 plugins: generation ${after.generation + 1}`);
    const again = (await (await fetch(`${base}/index.json`)).json()) as { plugins: unknown[] };
    expect(again.plugins).toEqual((index as { plugins: unknown[] }).plugins);
  });

  it('restricts publishing once a publisher is added', async () => {
    const outsider = path.join(work, 'outsider');
    await plugindex('keygen', '--out', outsider);
    const added = await plugindex(
      'publishers',
      'add',
      '--registry',
      registryDir,
      path.join(work, 'key/public.asc'),
      '--names',
      'e2e-*',
    );
    expect(added.code, added.stderr).toBe(0);
    writeFileSync(
      path.join(work, 'other.json'),
      JSON.stringify({
        name: 'other-costs',
        version: '1.0.0',
        api_version: 'v1',
        plugin_type: 'aggregator',
        capabilities: ['showback'],
      }),
    );
    await plugindex(
      'pack',
      path.join(work, 'other.json'),
      '--key',
      path.join(outsider, 'secret.asc'),
      '--out',
      path.join(work, 'other.tgz'),
    );
    const refused = await plugindex('publish', path.join(work, 'other.tgz'), '--registry', registryDir);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('PUBLISHER_UNTRUSTED');
  });
});
