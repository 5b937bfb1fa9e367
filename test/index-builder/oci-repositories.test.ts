import { beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { StoreError } from '../../index-builder/errors.ts';
import { filedBinKey } from '../../index-builder/filed-index.ts';
import { binOf, OCI_REPOSITORIES_PREFIX } from '../../index-builder/layout.ts';
import {
  dockerHubHostOf,
  ociRegistryUrl,
  ociRepositoryOf,
  parseOciReference,
} from '../../index-builder/oci.ts';
import {
  OciRepositoryIndex,
  ociRepositoryProblem,
  repositoriesOfFormat2Key,
} from '../../index-builder/oci-repositories.ts';
import { processSubmissions, rebuildRegistry } from '../../index-builder/pipeline/index.ts';
import type { KeyPair } from '../../index-builder/signing.ts';
import { submitAction } from '../support/actions.ts';
import { makeRegistry, ociBundle, type TestRegistry, testKey } from '../support/fixtures.ts';
import { documentOf, intakeKeysUnder, publish, verdicts } from '../support/published.ts';

let publisher: KeyPair;
let squatter: KeyPair;
let operator: KeyPair;
let heir: KeyPair;

beforeAll(async () => {
  publisher = await testKey('publisher');
  squatter = await testKey('squatter');
  operator = await testKey('operator');
  heir = await testKey('heir');
});

const LENS = 'registry.example/acme/kube-lens';

/** A bundle of plugin `name` at `version` whose one artifact is kept at the OCI reference `reference`. */
function ociBundleOf(
  name: string,
  signer: KeyPair,
  reference: string,
  version = '1.0.0',
): Promise<Uint8Array> {
  return ociBundle(name, reference, {
    sha: (version === '1.0.0' ? 'ab' : 'cd').repeat(32),
    size: 42,
    version,
    signer,
  });
}

/** The index's objects in the intake store, by key. */
const indexKeys = (registry: TestRegistry): string[] => intakeKeysUnder(registry, OCI_REPOSITORIES_PREFIX);

const binText = (registry: TestRegistry, repository: string): string =>
  new TextDecoder().decode(
    registry.intake.objects.get(
      filedBinKey(
        { prefix: OCI_REPOSITORIES_PREFIX, header: 'plugindex-oci-repositories 3' },
        binOf(repository),
      ),
    )?.body,
  );

/**
 * A registry (with an operator) where `publisher`'s kube-lens and kube-lens-cli both keep their artifacts
 * in LENS, then the operator gives kube-lens-cli to `heir`: two holders with other owners, as a registry
 * made before the rule may hold. `transferred`: the verdicts of the transfer's batch.
 */
async function sharedThenOneTransferred(): Promise<{
  registry: TestRegistry;
  transferred: [string, string, string][];
}> {
  const registry = await makeRegistry({
    operators: [{ fingerprint: operator.fingerprint, key: operator.publicKey }],
  });
  await publish(
    registry,
    await ociBundleOf('kube-lens', publisher, LENS),
    await ociBundleOf('kube-lens-cli', publisher, LENS),
  );
  const transfer = await submitAction(
    registry.intake,
    { action: 'transfer', plugin: 'kube-lens-cli', key: heir.publicKey },
    operator,
  );
  const transferred = verdicts((await processSubmissions(registry.context, [transfer.key])).outcomes);
  return { registry, transferred };
}

/** Counts the site listings of plugin folders from now on (the index built from the documents lists them). */
function countFolderScans(registry: TestRegistry): () => number {
  const listed: string[] = [];
  const { list } = registry.site;
  registry.site.list = (prefix) => {
    listed.push(prefix);
    return list.call(registry.site, prefix);
  };
  return () => listed.filter((prefix) => prefix.startsWith('plugins/')).length;
}

describe('ociRepositoryOf', () => {
  it('keeps registry and path, without tag or digest, the host lowercase and :443 dropped', () => {
    expect(ociRepositoryOf(`${LENS}:1.0.0`)).toBe(LENS);
    expect(ociRepositoryOf(`Registry.EXAMPLE:443/acme/kube-lens@sha256:${'ab'.repeat(32)}`)).toBe(LENS);
    expect(ociRepositoryOf('registry.example:5000/acme/kube-lens')).toBe(
      'registry.example:5000/acme/kube-lens',
    );
    expect(ociRepositoryOf('index.docker.io/acme/lens:1')).toBe('docker.io/acme/lens');
    expect(ociRepositoryOf('registry-1.docker.io/acme/lens')).toBe('docker.io/acme/lens');
  });

  it("writes Docker Hub's official images with library/ and a port with its leading zeros dropped, one repository however spelled", () => {
    // Docker Hub serves `docker.io/lens` from `library/lens`: one repository, two spellings.
    expect(ociRepositoryOf('docker.io/lens:1')).toBe('docker.io/library/lens');
    expect(ociRepositoryOf('index.docker.io/library/lens')).toBe('docker.io/library/lens');
    expect(ociRepositoryOf('registry.example/lens')).toBe('registry.example/lens');
    // A port is a number: `:0443` is the port 443 every HTTPS registry answers on, `:05000` is 5000.
    expect(ociRepositoryOf('registry.example:0443/acme/kube-lens')).toBe(LENS);
    expect(ociRepositoryOf('registry.example:05000/acme/kube-lens')).toBe(
      'registry.example:5000/acme/kube-lens',
    );
  });

  it('keeps apart repositories that differ in path, or in a port other than 443', () => {
    expect(ociRepositoryOf('registry.example/acme/kube-lens-2')).not.toBe(LENS);
    expect(ociRepositoryOf('registry.example:8443/acme/kube-lens')).not.toBe(LENS);
    expect(ociRepositoryOf('acme/kube-lens')).toBeUndefined();
  });
});

describe('when a reference names a loopback registry, which the client reaches over http:', () => {
  it('keeps :443 apart from no port (http://localhost:443 and http://localhost:80), and drops :80', () => {
    for (const host of ['localhost', '127.0.0.1', '[::1]']) {
      expect(ociRepositoryOf(`${host}:443/acme/lens`), host).not.toBe(ociRepositoryOf(`${host}/acme/lens`));
      expect(ociRepositoryOf(`${host}:80/acme/lens:1`), host).toBe(ociRepositoryOf(`${host}/acme/lens`));
      expect(ociRepositoryOf(`${host}:080/acme/lens`), host).toBe(ociRepositoryOf(`${host}/acme/lens`));
    }
    expect(ociRepositoryOf('LocalHost:443/acme/lens')).toBe('localhost:443/acme/lens');
    expect(ociRepositoryOf('localhost:5000/acme/lens')).toBe('localhost:5000/acme/lens');
  });

  it('compares two spellings as one exactly when the fetcher reaches them at one origin', () => {
    const spellings = [
      'localhost',
      'localhost:80',
      'localhost:443',
      'localhost:5000',
      '127.0.0.1',
      '127.0.0.1:0080',
      '127.0.0.1:443',
      '[::1]',
      '[0:0::1]:443',
      'registry.example',
      'registry.example:443',
      'registry.example:80',
      'REGISTRY.example:0443',
      // IP literals in and out of the parser's form: decimal, hex, octal, one number, IPv6 zeros.
      '10.1:5000',
      '10.0.0.1:5000',
      '0x0A.1:05000',
      '012.0.0.1:5000',
      '167772161:5000',
      '10.0.0.1',
      '10.1:443',
      '[::ffff:a00:1]:5000',
      '[0:0::1]:5000',
      '[::1]:5000',
      '0x7f.1',
      '0177.0.0.1:443',
    ];
    for (const a of spellings)
      for (const b of spellings)
        expect(ociRepositoryOf(`${a}/acme/lens`) === ociRepositoryOf(`${b}/acme/lens`), `${a} ${b}`).toBe(
          ociRegistryUrl(a)?.origin === ociRegistryUrl(b)?.origin,
        );
    // What the fetcher reaches (fetcher.ts ociTarget): http: on a loopback host, https: elsewhere or given a CA.
    expect(ociRegistryUrl('localhost:443')?.href).toBe('http://localhost:443/');
    expect(ociRegistryUrl('localhost')?.href).toBe('http://localhost/');
    expect(ociRegistryUrl('localhost:443', { ca: true })?.href).toBe('https://localhost/');
    expect(ociRegistryUrl('Registry.Example:443')?.href).toBe('https://registry.example/');
  });
});

describe('repositoriesOfFormat2Key', () => {
  it('writes an IP literal as the URL parser does, and any other key as it was', () => {
    expect(repositoriesOfFormat2Key('10.1:5000/acme/x')).toEqual(['10.0.0.1:5000/acme/x']);
    expect(repositoriesOfFormat2Key('0x0a.0x1:5000/acme/x')).toEqual(['10.0.0.1:5000/acme/x']);
    expect(repositoriesOfFormat2Key('[0:0::a00:1]/acme/x')).toEqual(['[::a00:1]/acme/x']);
    for (const key of [LENS, 'registry.example:5000/acme/x', 'docker.io/library/lens', 'localhost:5000/x'])
      expect(repositoriesOfFormat2Key(key), key).toEqual([key]);
    // A port no URL parser takes: no client reaches it, so it names nothing (as ociRepositoryOf says).
    expect(repositoriesOfFormat2Key('registry.example:70000/acme/x')).toEqual([]);
    // A host format 2 filed with neither `.` nor `:`, its `:443` dropped (no reference names a registry so).
    expect(repositoriesOfFormat2Key('registry/acme/x')).toEqual(['registry/acme/x']);
    expect(repositoriesOfFormat2Key('167772161/acme/x')).toEqual(['10.0.0.1/acme/x']);
    expect(repositoriesOfFormat2Key('2130706433/acme/x')).toEqual(['127.0.0.1:443/acme/x']);
    expect(repositoriesOfFormat2Key('acme')).toEqual([]);
  });

  it('files a loopback host without a port at :443 too, which format 2 dropped, and at :80 alone', () => {
    expect(repositoriesOfFormat2Key('127.1/acme/x')).toEqual(['127.0.0.1/acme/x', '127.0.0.1:443/acme/x']);
    expect(repositoriesOfFormat2Key('[0::1]/acme/x')).toEqual(['[::1]/acme/x', '[::1]:443/acme/x']);
    expect(repositoriesOfFormat2Key('localhost/acme/x')).toEqual([
      'localhost/acme/x',
      'localhost:443/acme/x',
    ]);
    expect(repositoriesOfFormat2Key('localhost:80/acme/x')).toEqual(['localhost/acme/x']);
    // Each is what the reference format 2 could have filed so is now.
    for (const written of ['127.1:443/acme/x', '127.1/acme/x', '[0::1]:443/acme/x', 'localhost:443/acme/x'])
      expect(repositoriesOfFormat2Key(written.replace(/:443\//, '/')), written).toContain(
        ociRepositoryOf(written),
      );
  });
});

/**
 * The key format 2 filed a reference under before commit 7ed38b6 (ociRepositoryOf as it was then: the host
 * lowercase as written, the port a number, `:443` dropped on every host); from that commit on, format 2
 * filed what ociRepositoryOf writes now.
 */
function format2KeyBefore7ed38b6(reference: string): string | undefined {
  const parts = parseOciReference(reference);
  if (!parts) return undefined;
  const host = dockerHubHostOf(
    parts.registry
      .toLowerCase()
      .replace(/:([0-9]+)$/, (_, port: string) => `:${Number(port)}`)
      .replace(/:443$/, ''),
  );
  const path =
    host === 'docker.io' && !parts.repository.includes('/')
      ? `library/${parts.repository}`
      : parts.repository;
  return `${host}/${path}`;
}

describe('when a format-2 key is filed anew', () => {
  it('files it under the repository the reference it was filed for names now, whichever rule of format 2 filed it', () => {
    const hosts = [
      ...['registry', 'Registry', 'registry.example', 'REGISTRY.Example', 'a-b', '1.2.3.4', '256.1.1.1'],
      ...[
        'localhost',
        'LocalHost',
        'localhost.',
        'foo.localhost',
        '127.1',
        '127.0.0.1',
        '0x7f.1',
        '2130706433',
      ],
      ...['017700000001', '10.1', '167772161', '0x0a000001', '012.0.0.1', '0', '[::]', '[::1]', '[0:0::1]'],
      ...[
        '[::ffff:127.0.0.1]',
        '[::A00:1]',
        'docker.io',
        'Docker.IO',
        'index.docker.io',
        'registry-1.docker.io',
      ],
    ];
    const ports = ['', ':443', ':0443', ':80', ':080', ':5000', ':05000', ':65535', ':70000', ':0'];
    const lost: string[] = [];
    for (const host of hosts)
      for (const port of ports)
        for (const path of ['acme/x', 'lens']) {
          const reference = `${host}${port}/${path}`;
          const now = ociRepositoryOf(reference);
          if (now === undefined) continue;
          for (const filed of [format2KeyBefore7ed38b6(reference), now])
            if (filed === undefined || !repositoriesOfFormat2Key(filed).includes(now))
              lost.push(`${reference} filed as ${filed}`);
        }
    expect(lost).toEqual([]);
  });
});

describe('ociRepositoryProblem', () => {
  it('names the repository, the plugin holding it and its owners', () => {
    const found = ociRepositoryProblem('/installation/artifacts/0/oci/reference', LENS, [
      { name: 'kube-lens', owners: ['F1'] },
    ]);
    expect(found).toMatchObject({
      code: 'OCI_REPOSITORY_CLAIMED',
      path: '/installation/artifacts/0/oci/reference',
    });
    expect(found.message).toContain(`${LENS} is where "kube-lens" keeps its artifacts`);
    expect(found.expected).toContain('F1');
  });
});

describe("when a plugin names another plugin's OCI repository", () => {
  it("refuses another key's plugin naming it, however written, as its recorded outcome", async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('kube-lens', publisher, `${LENS}:1.0.0`));
    const outcomes = await publish(
      registry,
      await ociBundleOf('other-lens', squatter, `${LENS}:1.0.0`),
      await ociBundleOf('third-lens', squatter, `Registry.Example:443/acme/kube-lens:1.0.0`),
      await ociBundleOf('own-lens', squatter, 'registry.example/squatter/own-lens:1.0.0'),
    );
    expect(verdicts(outcomes)).toEqual([
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
      ['third-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
      ['own-lens', 'accepted', ''],
    ]);
    expect(outcomes[0]?.problems[0]?.path).toBe('/installation/artifacts/0/oci/reference');
    expect(outcomes[0]?.problems[0]?.message).toContain('"kube-lens"');
    // Recorded like every refusal: its status record; no document, and the falcoctl index names one plugin.
    const status = registry.intake.objects.get(`status/${outcomes[0]?.id}.json`);
    expect(JSON.parse(new TextDecoder().decode(status?.body))).toMatchObject({
      status: 'rejected',
      problems: [{ code: 'OCI_REPOSITORY_CLAIMED', path: '/installation/artifacts/0/oci/reference' }],
    });
    expect(documentOf(registry, 'other-lens')).toBeUndefined();
    const falcoctl = YAML.parse(
      new TextDecoder().decode(registry.site.objects.get('falcoctl/index.yaml')?.body),
    ) as { name: string; repository: string }[];
    expect(falcoctl.filter((e) => e.repository === 'acme/kube-lens').map((e) => e.name)).toEqual([
      'kube-lens',
    ]);
  });

  it("refuses another key's plugin naming a Docker Hub official image with or without library/, or a port with leading zeros", async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await ociBundleOf('hub-lens', publisher, 'docker.io/hub-lens:1.0.0'),
      await ociBundleOf('kube-lens', publisher, `${LENS}:1.0.0`),
    );
    const outcomes = await publish(
      registry,
      await ociBundleOf('other-lens', squatter, 'index.docker.io/library/hub-lens:1.0.0'),
      await ociBundleOf('third-lens', squatter, 'registry.example:0443/acme/kube-lens:1.0.0'),
    );
    expect(verdicts(outcomes)).toEqual([
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
      ['third-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
  });

  it('refuses the second of two plugins new in one batch, and a new version of an existing plugin naming it', async () => {
    const registry = await makeRegistry();
    expect(
      verdicts(
        await publish(
          registry,
          await ociBundleOf('kube-lens', publisher, LENS),
          await ociBundleOf('other-lens', squatter, LENS),
          await ociBundleOf('squat-lens', squatter, 'registry.example/squatter/lens'),
        ),
      ),
    ).toEqual([
      ['kube-lens', 'accepted', ''],
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
      ['squat-lens', 'accepted', ''],
    ]);
    expect(
      verdicts(await publish(registry, await ociBundleOf('squat-lens', squatter, LENS, '2.0.0'))),
    ).toEqual([['squat-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED']]);
  });

  it('tells a plugin refused for a holder the batch then refused that the holder never was', async () => {
    const registry = await makeRegistry();
    // The store refuses for good every file of the first plugin's version: refused after the judging.
    const { put } = registry.site;
    registry.site.put = (key, ...rest) => {
      if (key.startsWith('plugins/kube-lens/1.0.0/'))
        throw new StoreError('STORE_REFUSED', key, `cannot write ${key}: refused`);
      return put.call(registry.site, key, ...rest);
    };
    const outcomes = await publish(
      registry,
      await ociBundleOf('kube-lens', publisher, LENS),
      await ociBundleOf('other-lens', squatter, LENS),
    );
    expect(verdicts(outcomes)).toEqual([
      ['kube-lens', 'rejected', 'SUBMISSION_WRITE_FAILED'],
      ['other-lens', 'rejected', 'PUBLISH_DEPENDS_ON_REFUSED'],
    ]);
    expect(outcomes[1]?.problems[0]).toMatchObject({
      path: '/installation/artifacts/0/oci/reference',
      found: 'kube-lens',
    });
    registry.site.put = put;
    expect(verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, LENS)))).toEqual([
      ['other-lens', 'accepted', ''],
    ]);
  });

  it("lets the holder's owners share it, and the holder keep naming it", async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('kube-lens', publisher, LENS));
    expect(
      verdicts(
        await publish(
          registry,
          await ociBundleOf('kube-lens-cli', publisher, `${LENS}:cli`),
          await ociBundleOf('kube-lens', publisher, LENS, '2.0.0'),
        ),
      ),
    ).toEqual([
      ['kube-lens-cli', 'accepted', ''],
      ['kube-lens', 'accepted', ''],
    ]);
    expect(binText(registry, LENS)).toContain(`${LENS}\tkube-lens\n${LENS}\tkube-lens-cli\n`);
  });

  it('leaves plugins that already share it with other owners as they are, and judges new ones against both', async () => {
    const { registry, transferred } = await sharedThenOneTransferred();
    expect(transferred).toEqual([['kube-lens-cli', 'accepted', '']]);
    // Each keeps publishing into it; a third key's plugin is refused, naming both.
    const outcomes = await publish(
      registry,
      await ociBundleOf('kube-lens', publisher, LENS, '2.0.0'),
      await ociBundleOf('kube-lens-cli', heir, LENS, '2.0.0'),
      await ociBundleOf('other-lens', squatter, LENS),
    );
    expect(verdicts(outcomes)).toEqual([
      ['kube-lens', 'accepted', ''],
      ['kube-lens-cli', 'accepted', ''],
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    expect(outcomes[2]?.problems[0]?.message).toContain('"kube-lens", "kube-lens-cli" keep their artifacts');
    // An owner of only one of them is still refused for the other's sake.
    expect(verdicts(await publish(registry, await ociBundleOf('heir-lens', heir, LENS)))).toEqual([
      ['heir-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
  });

  it('frees it of a holder whose versions naming it the operator removed', async () => {
    const { registry } = await sharedThenOneTransferred();
    expect(verdicts(await publish(registry, await ociBundleOf('kube-lens-web', publisher, LENS)))).toEqual([
      ['kube-lens-web', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    const removal = await submitAction(
      registry.intake,
      { action: 'remove', plugin: 'kube-lens-cli', version: '1.0.0', reason: 'impersonation' },
      operator,
    );
    expect(verdicts((await processSubmissions(registry.context, [removal.key])).outcomes)).toEqual([
      ['kube-lens-cli', 'accepted', ''],
    ]);
    expect(verdicts(await publish(registry, await ociBundleOf('kube-lens-web', publisher, LENS)))).toEqual([
      ['kube-lens-web', 'accepted', ''],
    ]);
  });

  it('takes a repository filed for a plugin whose document does not name it (a run that died before it)', async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('kube-lens', publisher, 'registry.example/acme/other'));
    const index = new OciRepositoryIndex(registry.intake, registry.site);
    index.add(LENS, 'kube-lens');
    index.add(LENS, 'ghost-lens');
    await index.save();
    expect(verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, LENS)))).toEqual([
      ['other-lens', 'accepted', ''],
    ]);
  });

  it('takes any repository when ownership is none: no one owns the plugin to be impersonated', async () => {
    const registry = await makeRegistry({ ownership: 'none' });
    await publish(registry, await ociBundleOf('kube-lens', publisher, LENS));
    expect(verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, LENS)))).toEqual([
      ['other-lens', 'accepted', ''],
    ]);
  });
});

/**
 * Puts in place of the index one as a release of format 2 wrote it (before ociRepositoryOf wrote the host
 * as the URL parser does, commit 7ed38b6): each repository filed under `key` as that rule wrote it (the
 * host lowercase, the port a number, `:443` dropped on every host), in the bin of that key, then its mark.
 */
async function seedFormat2Index(registry: TestRegistry, entries: readonly [key: string, name: string][]) {
  for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
  const format = { prefix: OCI_REPOSITORIES_PREFIX, header: 'plugindex-oci-repositories 2' };
  const bins = new Map<string, string[]>();
  for (const [key, name] of entries)
    bins.set(binOf(key), [...(bins.get(binOf(key)) ?? []), `${key}\t${name}`]);
  const put = (key: string, text: string) =>
    registry.intake.put(key, new TextEncoder().encode(text), {
      contentType: 'text/tab-separated-values',
      cacheControl: 'no-store',
    });
  for (const [bin, lines] of bins)
    await put(filedBinKey(format, bin), `${[format.header, ...lines.sort()].join('\n')}\n`);
  await put(`${OCI_REPOSITORIES_PREFIX}complete`, `${format.header}\n`);
}

describe('when the OCI repository index was written by format 2, which kept an IP literal as it was written', () => {
  /** [as the holder wrote it, as format 2 filed it, as another key writes it out]. */
  const SPELLINGS = [
    ['10.1:5000/acme/x', '10.1:5000/acme/x', '10.0.0.1:5000/acme/x'],
    ['0x0A.1:5000/acme/x', '0x0a.1:5000/acme/x', '10.0.0.1:5000/acme/x'],
    ['012.0.0.1:5000/acme/x', '012.0.0.1:5000/acme/x', '10.0.0.1:5000/acme/x'],
    ['167772161:05000/acme/x', '167772161:5000/acme/x', '10.0.0.1:5000/acme/x'],
    ['[0:0::1]:5000/acme/x', '[0:0::1]:5000/acme/x', '[::1]:5000/acme/x'],
    ['[::1]:5000/acme/x', '[::1]:5000/acme/x', '[0000::0:1]:5000/acme/x'],
    ['[0:0::A00:1]:443/acme/x', '[0:0::a00:1]/acme/x', '[::a00:1]/acme/x'],
    // A host with neither `.` nor `:` once its `:443` was dropped: no reference, yet a repository.
    ['167772161:443/acme/x', '167772161/acme/x', '10.0.0.1/acme/x'],
    ['Registry:443/acme/x', 'registry/acme/x', 'registry:0443/acme/x'],
  ] as const;

  it.each(SPELLINGS)(
    'refuses another key naming %s written out, %s filed',
    async (written, filed, claimed) => {
      const registry = await makeRegistry();
      await publish(registry, await ociBundleOf('ip-lens', publisher, `${written}:1.0.0`));
      await seedFormat2Index(registry, [[filed, 'ip-lens']]);
      const outcomes = await publish(registry, await ociBundleOf('other-lens', squatter, `${claimed}:1.0.0`));
      expect(verdicts(outcomes)).toEqual([['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED']]);
      expect(outcomes[0]?.problems[0]?.path).toBe('/installation/artifacts/0/oci/reference');
    },
  );

  it('refuses a claim on a loopback registry at :443, which format 2 filed without its port', async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('loop-lens', publisher, '127.1:443/acme/x:1.0.0'));
    await seedFormat2Index(registry, [['127.1/acme/x', 'loop-lens']]);
    expect(
      verdicts(
        await publish(
          registry,
          await ociBundleOf('other-lens', squatter, '127.0.0.1:443/acme/x:1.0.0'),
          // http://127.0.0.1 (port 80) is another server: another repository, which no one holds.
          await ociBundleOf('third-lens', squatter, '127.0.0.1/acme/x:1.0.0'),
        ),
      ),
    ).toEqual([
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
      ['third-lens', 'accepted', ''],
    ]);
  });

  it('files it anew from its own bins, once, without reading the plugin documents', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await ociBundleOf('ip-lens', publisher, '10.1:5000/acme/x:1.0.0'),
      await ociBundleOf('kube-lens', publisher, LENS),
    );
    await seedFormat2Index(registry, [
      ['10.1:5000/acme/x', 'ip-lens'],
      [LENS, 'kube-lens'],
    ]);
    const scans = countFolderScans(registry);
    expect(
      verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, '10.0.0.1:5000/acme/x'))),
    ).toEqual([['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED']]);
    expect(scans()).toBe(0);
    expect(
      new TextDecoder().decode(registry.intake.objects.get(`${OCI_REPOSITORIES_PREFIX}complete`)?.body),
    ).toBe('plugindex-oci-repositories 3\n');
    expect(binText(registry, '10.0.0.1:5000/acme/x')).toContain('10.0.0.1:5000/acme/x\tip-lens\n');
    expect(binText(registry, LENS)).toContain(`${LENS}\tkube-lens\n`);
    // Written whole in format 3: no bin of format 2 is left (the old spelling's filed nothing else).
    for (const key of indexKeys(registry))
      expect(new TextDecoder().decode(registry.intake.objects.get(key)?.body), key).toMatch(
        /^plugindex-oci-repositories 3\n/,
      );
    expect(verdicts(await publish(registry, await ociBundleOf('third-lens', squatter, LENS)))).toEqual([
      ['third-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    expect(scans()).toBe(0);
  });

  it('refuses the claim still after a rekeying that died having written some bins of format 3', async () => {
    const registry = await makeRegistry();
    const ip = '10.1:5000/acme/x';
    // A repository filed in the bin format 2 filed 10.1:5000/acme/x in, so the rekeying writes that bin
    // anew in format 3 (holding it), while 10.0.0.1:5000/acme/x goes to another bin.
    let n = 0;
    while (binOf(`registry.example/acme/r${n}`) !== binOf(ip)) n += 1;
    const neighbour = `registry.example/acme/r${n}`;
    expect(binOf('10.0.0.1:5000/acme/x')).not.toBe(binOf(ip));
    await publish(
      registry,
      await ociBundleOf('ip-lens', publisher, `${ip}:1.0.0`),
      await ociBundleOf('kube-lens', publisher, `${neighbour}:1.0.0`),
    );
    await seedFormat2Index(registry, [
      [ip, 'ip-lens'],
      [neighbour, 'kube-lens'],
    ]);
    // The first batch after the upgrade dies (a Lambda timeout) writing the bin of 10.0.0.1:5000/acme/x,
    // having written the old spelling's bin in format 3: the mark still says format 2.
    const moved = filedBinKey({ prefix: OCI_REPOSITORIES_PREFIX, header: '' }, binOf('10.0.0.1:5000/acme/x'));
    const { put } = registry.intake;
    registry.intake.put = (key, ...rest) => {
      if (key === moved) throw new StoreError('STORE_IO', key, `cannot write ${key}: timed out`);
      return put.call(registry.intake, key, ...rest);
    };
    await publish(registry, await ociBundleOf('third-lens', squatter, 'registry.example/acme/y:1.0.0')).catch(
      () => undefined,
    );
    registry.intake.put = put;
    expect(
      new TextDecoder().decode(registry.intake.objects.get(`${OCI_REPOSITORIES_PREFIX}complete`)?.body),
    ).toBe('plugindex-oci-repositories 2\n');
    expect(binText(registry, ip)).toMatch(/^plugindex-oci-repositories 3\n/);
    expect(
      verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, '10.0.0.1:5000/acme/x'))),
    ).toEqual([['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED']]);
    expect(binText(registry, '10.0.0.1:5000/acme/x')).toContain('10.0.0.1:5000/acme/x\tip-lens\n');
  });

  it('writes format 3 over it in a rebuild, every bin of format 2 gone', async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('ip-lens', publisher, '10.1:5000/acme/x:1.0.0'));
    await seedFormat2Index(registry, [
      ['10.1:5000/acme/x', 'ip-lens'],
      ['registry.example/acme/gone', 'gone-lens'],
    ]);
    await rebuildRegistry(registry.context);
    expect(
      new TextDecoder().decode(registry.intake.objects.get(`${OCI_REPOSITORIES_PREFIX}complete`)?.body),
    ).toBe('plugindex-oci-repositories 3\n');
    for (const key of indexKeys(registry))
      expect(new TextDecoder().decode(registry.intake.objects.get(key)?.body), key).toMatch(
        /^plugindex-oci-repositories 3\n/,
      );
    expect(binText(registry, '10.0.0.1:5000/acme/x')).toBe(
      'plugindex-oci-repositories 3\n10.0.0.1:5000/acme/x\tip-lens\n',
    );
  });

  it('builds it from the documents when a bin of format 2 does not read', async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('ip-lens', publisher, '10.1:5000/acme/x:1.0.0'));
    await seedFormat2Index(registry, [['10.1:5000/acme/x', 'ip-lens']]);
    const bin = filedBinKey({ prefix: OCI_REPOSITORIES_PREFIX, header: '' }, binOf('10.1:5000/acme/x'));
    await registry.intake.put(bin, new TextEncoder().encode('plugindex-oci-repositories 2\nno tab\n'), {
      contentType: 'text/tab-separated-values',
      cacheControl: 'no-store',
    });
    const scans = countFolderScans(registry);
    expect(
      verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, '10.0.0.1:5000/acme/x'))),
    ).toEqual([['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED']]);
    expect(scans()).toBeGreaterThan(0);
  });
});

describe('when the OCI repository index is lost or rebuilt', () => {
  it("builds it anew from the documents when it is of format 1, which filed Docker Hub's official images without library/", async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('hub-lens', publisher, 'docker.io/hub-lens:1.0.0'));
    // As a registry before format 2 left it: its header 1, the repository filed as the reference wrote it.
    for (const key of indexKeys(registry)) {
      const object = registry.intake.objects.get(key);
      const text = new TextDecoder()
        .decode(object?.body)
        .replace('plugindex-oci-repositories 3', 'plugindex-oci-repositories 1')
        .replaceAll('docker.io/library/hub-lens', 'docker.io/hub-lens');
      await registry.intake.put(key, new TextEncoder().encode(text), {
        contentType: 'text/tab-separated-values',
        cacheControl: 'no-store',
      });
    }
    expect(
      verdicts(
        await publish(
          registry,
          await ociBundleOf('other-lens', squatter, 'docker.io/library/hub-lens:1.0.0'),
        ),
      ),
    ).toEqual([['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED']]);
    expect(binText(registry, 'docker.io/library/hub-lens')).toContain(
      'docker.io/library/hub-lens\thub-lens\n',
    );
  });

  it('builds it from the published documents when the intake store has none, once', async () => {
    const registry = await makeRegistry();
    await publish(registry, await ociBundleOf('kube-lens', publisher, LENS));
    for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
    const scans = countFolderScans(registry);
    expect(verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, LENS)))).toEqual([
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    const built = scans();
    expect(built).toBeGreaterThan(0);
    expect(registry.intake.objects.has(`${OCI_REPOSITORIES_PREFIX}complete`)).toBe(true);
    expect(binText(registry, LENS)).toContain(`${LENS}\tkube-lens\n`);
    // The next publish naming it reads its bin: no folder is listed again.
    expect(verdicts(await publish(registry, await ociBundleOf('third-lens', squatter, LENS)))).toEqual([
      ['third-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    expect(scans()).toBe(built);
  });

  it('writes it anew in a rebuild, every plugin filed, and still refuses another key', async () => {
    const registry = await makeRegistry();
    await publish(
      registry,
      await ociBundleOf('kube-lens', publisher, LENS),
      await ociBundleOf('gcp-lens', publisher, 'registry.example/acme/gcp-lens'),
    );
    for (const key of indexKeys(registry)) registry.intake.objects.delete(key);
    await rebuildRegistry(registry.context);
    expect(registry.intake.objects.has(`${OCI_REPOSITORIES_PREFIX}complete`)).toBe(true);
    expect(binText(registry, LENS)).toContain(`${LENS}\tkube-lens\n`);
    expect(binText(registry, 'registry.example/acme/gcp-lens')).toContain(
      'registry.example/acme/gcp-lens\tgcp-lens\n',
    );
    // Judged from the index alone: the site's plugin folders are not listed.
    const scans = countFolderScans(registry);
    expect(verdicts(await publish(registry, await ociBundleOf('other-lens', squatter, LENS)))).toEqual([
      ['other-lens', 'rejected', 'OCI_REPOSITORY_CLAIMED'],
    ]);
    expect(scans()).toBe(0);
  });
});
