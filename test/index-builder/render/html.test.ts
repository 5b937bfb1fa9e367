import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import semver from 'semver';
import { describe, expect, it, vi } from 'vitest';
import { MAX_SCAN_VULNERABILITIES } from '../../../index-builder/manifest/schema.ts';
import type { Advisory, PluginDocument, VersionRecord } from '../../../index-builder/model.ts';
import {
  escapeHtml,
  MAX_PLUGIN_PAGE_LENGTH,
  PAGE_STYLE,
  renderIndexPage,
  renderPluginPage,
} from '../../../index-builder/render/html.ts';

const HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='x"];
const registry = { name: 'Test <Registry>', url: 'https://r.example.com' };

function version(overrides: Partial<VersionRecord> = {}): VersionRecord {
  return {
    version: '1.0.0',
    published: '2026-11-01T00:00:00.000Z',
    prerelease: false,
    yanked: false,
    deprecated: false,
    api_version: 'v1',
    manifest_url: 'https://r.example.com/plugins/p/1.0.0/manifest.json',
    manifest_signature_url: 'https://r.example.com/plugins/p/1.0.0/manifest.json.asc',
    manifest_sha256: 'e'.repeat(64),
    manifest_size: 100,
    source_sha256: 'f'.repeat(64),
    publisher: 'A'.repeat(40),
    artifacts: [
      {
        os: 'linux',
        arch: 'amd64',
        url: 'https://r.example.com/x',
        sha256: '1'.repeat(64),
        size_bytes: 2048,
        hosted: true,
      },
    ],
    ...overrides,
  };
}

function pluginDoc(overrides: Partial<PluginDocument> = {}): PluginDocument {
  return {
    schema: 'plugindex/plugin/v1',
    name: 'p',
    display_name: 'P',
    description: 'desc',
    plugin_type: 'cost_source',
    latest_version: '1.0.0',
    channels: {},
    capabilities: ['actual_cost'],
    supported_providers: ['aws'],
    tags: ['t'],
    owners: [],
    versions: [version()],
    ...overrides,
  };
}

describe('when rendering a plugin page', () => {
  it('escapes every manifest string', () => {
    for (const evil of HOSTILE) {
      const html = renderPluginPage(
        pluginDoc({
          display_name: evil,
          description: evil,
          tags: [evil],
          license: evil,
          capabilities: [evil],
          versions: [
            version({ yanked: true, yanked_reason: evil, deprecated: true, deprecation_message: evil }),
          ],
        }),
        registry,
      );
      expect(html).not.toContain(evil);
      expect(html).toContain(escapeHtml(evil));
      expect(html).not.toMatch(/<script>alert/);
    }
  });

  it('links no URL with user information, which reads as another host (published before it was refused)', () => {
    const html = renderPluginPage(
      pluginDoc({
        homepage: 'https://github.com@evil.example/acme',
        repository: 'https://github.com/acme/x?by=a@b',
        advisories: [
          {
            id: 'A-1',
            severity: 'high',
            affected: '*',
            summary: 's',
            published: '2026-11-01T00:00:00.000Z',
            url: 'https://nvd.nist.gov@evil.example/1',
          },
        ],
      }),
      registry,
    );
    expect(html).not.toContain('href="https://github.com@evil.example');
    expect(html).not.toContain('href="https://nvd.nist.gov@evil.example');
    expect(html).toContain('<span>https://github.com@evil.example/acme</span>');
    expect(html).toContain('href="https://github.com/acme/x?by=a@b"');
  });

  it('links only http(s) URLs', () => {
    const html = renderPluginPage(
      pluginDoc({ homepage: 'javascript:alert(1)', repository: 'https://github.com/x/y' }),
      registry,
    );
    expect(html).not.toContain('href="javascript:');
    expect(html).toContain('javascript:alert(1)');
    expect(html).toContain('href="https://github.com/x/y"');
  });

  it('marks yanked, deprecated and prerelease versions, and shows every digest', () => {
    const versions = [
      version({ version: '2.0.0-beta.1', prerelease: true }),
      version({ version: '1.1.0', yanked: true, yanked_reason: 'broken build' }),
      version({
        version: '1.0.0',
        deprecated: true,
        deprecation_message: 'use 2.x',
        artifacts: [
          {
            os: 'darwin',
            arch: 'arm64',
            url: 'https://x',
            sha256: '9'.repeat(64),
            size_bytes: 5,
            hosted: false,
          },
        ],
      }),
    ];
    const html = renderPluginPage(
      pluginDoc({ versions, latest_version: '1.0.0', channels: { beta: '2.0.0-beta.1' } }),
      registry,
    );
    expect(html).toMatch(/<tr class="version prerelease" data-version="2\.0\.0-beta\.1">/);
    expect(html).toMatch(/<tr class="version yanked" data-version="1\.1\.0">/);
    expect(html).toMatch(/<tr class="version deprecated" data-version="1\.0\.0">/);
    expect(html).toContain('Yanked: broken build');
    expect(html).toContain('Deprecated: use 2.x');
    expect(html).toContain('9'.repeat(64));
    expect(html).toContain('e'.repeat(64));
    expect(html).toContain('gpg --verify manifest.json.asc manifest.json');
    expect(html).toContain(`echo "${'9'.repeat(64)}  p" | sha256sum -c -`);
  });

  it('links with root-relative paths, so the page works at /plugins/<name> too', () => {
    const html = renderPluginPage(pluginDoc(), { name: 'R', url: 'https://cdn.example.com/registry/' });
    expect(html).toContain('href="/registry/plugins/p/index.json"');
    expect(html).toContain('href="/registry/index.html"');
    expect(html).not.toContain('href="../');
  });

  it("links the registry's one style sheet rather than carrying it: the page is half as large", () => {
    const html = renderPluginPage(pluginDoc(), { name: 'R', url: 'https://cdn.example.com/registry/' });
    expect(html).toContain('<link rel="stylesheet" href="/registry/style.css">');
    expect(html).not.toContain('<style');
    expect(html).not.toContain(PAGE_STYLE.trim().slice(0, 40));
    // The home page links beside itself, as it does its icon.
    expect(renderIndexPage({ name: 'R', url: 'https://r.example.com' })).toContain(
      '<link rel="stylesheet" href="style.css">',
    );
  });

  it("shows a version's permissions and resource limits, and nothing for a version without", () => {
    const html = renderPluginPage(
      pluginDoc({
        versions: [
          version({
            version: '1.1.0',
            permissions: ['filesystem_read', 'network_client'],
            resources: { max_memory_mb: 512, timeout_seconds: 30 },
          }),
          version({ version: '1.0.0' }),
        ],
        latest_version: '1.1.0',
      }),
      registry,
    );
    const row = (v: string) =>
      html.slice(html.indexOf(`<tr class="platforms" data-version="${v}">`)).split('</tr>')[0];
    expect(row('1.1.0')).toContain(
      '<ul class="chips permissions" data-testid="permissions"><li>filesystem_read</li><li>network_client</li></ul>',
    );
    expect(row('1.1.0')).toContain('<dt>max_memory_mb</dt><dd data-resource="max_memory_mb">512</dd>');
    expect(row('1.1.0')).toContain('<dd data-resource="timeout_seconds">30</dd>');
    expect(row('1.0.0')).not.toContain('permissions');
    expect(row('1.0.0')).not.toContain('resources');
  });

  it('quotes every URL of the install recipe for the shell it is pasted into, and runs nothing else', () => {
    // (The digest and the name are hex and [a-z0-9-], checked at intake: the echo line needs no quoting.)
    // A publisher's artifact URL: valid (https, RFC 3986), with `&`, `;`, `$` and `'`, as a pre-signed link has.
    const url = "https://downloads.example/tool.tar.gz?sig=a'b&exp=1;touch$IFS./PWNED;";
    const html = renderPluginPage(
      pluginDoc({
        versions: [
          version({
            artifacts: [
              { os: 'linux', arch: 'amd64', url, sha256: '1'.repeat(64), size_bytes: 10, hosted: false },
            ],
          }),
        ],
      }),
      { name: 'R', url: 'https://r.example.com/a&b' },
    );
    const recipe = /<code class="install">([\s\S]*?)<\/code>/.exec(html)?.[1] ?? '';
    const text = recipe.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) =>
      e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : "'",
    );
    // Pasted into bash, curl, gpg and sha256sum recording their words instead of running.
    const work = mkdtempSync(path.join(tmpdir(), 'plugindex-recipe-'));
    try {
      const stubs = 'curl() { printf "%s\\n" "$@" >> words; }; gpg() { :; }; sha256sum() { cat >> words; }';
      execFileSync('bash', ['-c', `${stubs}\n${text}`], { cwd: work });
      expect(existsSync(path.join(work, 'PWNED'))).toBe(false);
      const words = readFileSync(path.join(work, 'words'), 'utf8').split('\n');
      expect(words).toContain(url);
      expect(words).toContain(`${'1'.repeat(64)}  p`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    expect(html).toContain(
      'plugindex registry add NAME &#39;https://r.example.com/a&amp;b&#39; --key registry.asc',
    );
  });

  it('shows an OCI artifact by reference and digest, and fetches it by digest in the recipe after plugindex install', () => {
    const hex = '1'.repeat(64);
    const html = renderPluginPage(
      pluginDoc({
        versions: [
          version({
            artifacts: [
              {
                os: 'linux',
                arch: 'amd64',
                url: `oci://registry.example:5000/acme/p@sha256:${hex}`,
                sha256: hex,
                size_bytes: 2048,
                hosted: false,
                oci: { reference: 'registry.example:5000/acme/p:1.0.0', digest: `sha256:${hex}` },
              },
            ],
          }),
        ],
      }),
      registry,
    );
    expect(html).toContain('<code class="oci-reference">registry.example:5000/acme/p:1.0.0</code>');
    expect(html).toContain(`<div class="oci-digest digest mono">sha256:${hex}</div>`);
    expect(html).not.toContain('href="oci:');
    const client = html.indexOf('plugindex install p@1.0.0');
    const fetch = html.indexOf(`oras blob fetch --output p registry.example:5000/acme/p@sha256:${hex}`);
    expect(client).toBeGreaterThan(0);
    expect(fetch).toBeGreaterThan(client);
    expect(html).toContain(`echo "${hex}  p" | sha256sum -c -`);
  });

  it('escapes an OCI reference and permission names', () => {
    const evil = HOSTILE[0] as string;
    const html = renderPluginPage(
      pluginDoc({
        versions: [
          version({
            permissions: [evil as 'logging'],
            resources: { [evil]: 1 } as never,
            artifacts: [
              {
                ...version().artifacts[0],
                hosted: false,
                url: `oci://${evil}`,
                oci: { reference: evil, digest: evil },
              } as never,
            ],
          }),
        ],
      }),
      registry,
    );
    expect(html).not.toContain(evil);
    expect(html).toContain(escapeHtml(evil));
  });

  it('writes its own markup in ASCII, so a plugin of Latin-1 text is a one-byte string in V8', () => {
    const deprecated = { at: '2026-11-02T00:00:00.000Z', message: 'old', replacement: 'q' };
    const doc = pluginDoc({
      deprecation: deprecated,
      versions: [
        version({
          min_api_version: 'v1',
          max_api_version: 'v2',
          deprecated: true,
          deprecation_replacement: 'q',
        }),
      ],
    });
    const html = renderPluginPage(doc, registry);
    expect([...html].filter((c) => c.charCodeAt(0) > 0xff)).toEqual([]);
    expect(html).toContain('<title>p &mdash; Test &lt;Registry&gt;</title>');
    expect(html).toContain('v1 &ndash; v2');
    expect(html).toContain('Deprecated &mdash; use <span class="mono">q</span> instead.');
  });

  it('says when there is no stable release', () => {
    expect(renderPluginPage(pluginDoc({ latest_version: null }), registry)).toContain('no stable release');
  });
});

describe('when rendering the page of a plugin whose name reads as another owner’s (its look_alikes)', () => {
  const registry = { name: 'R', url: 'https://r.example' };
  it('says so under its name, in the words plugindex info prints, as a note', () => {
    const html = renderPluginPage(
      pluginDoc({ look_alikes: [{ name: 'aws-cost', owners: ['AB'.repeat(20)] }] }),
      registry,
    );
    expect(html).toContain(
      '<div class="look-alike" role="note" data-testid="plugin-look-alikes">looks like: aws-cost (other owner)</div>',
    );
    expect(renderPluginPage(pluginDoc(), registry)).not.toContain('looks like');
  });

  it('escapes the names, and names ten at most', () => {
    const names = ['<img src=x onerror=alert(1)>', ...Array.from({ length: 11 }, (_, i) => `aws-cost-${i}`)];
    const html = renderPluginPage(
      pluginDoc({ look_alikes: names.map((name) => ({ name, owners: [] })) }),
      registry,
    );
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;, aws-cost-0,');
    expect(html).toContain('aws-cost-8 and 2 more (other owners)</div>');
  });
});

describe("when rendering a plugin's lifecycle", () => {
  it('escapes every text an action carries: reasons, messages, summaries, ids, links', () => {
    for (const evil of HOSTILE) {
      const html = renderPluginPage(
        pluginDoc({
          deprecation: { message: evil, replacement: evil, at: evil },
          advisories: [
            {
              id: evil,
              severity: evil as 'high',
              affected: evil,
              fixed: evil,
              summary: evil,
              url: `https://x.example/${evil}`,
              published: evil,
              withdrawn: { at: evil, reason: evil },
            },
          ],
          versions: [
            version({
              deprecated: true,
              deprecation_message: evil,
              deprecation_replacement: evil,
              removed: { reason: evil, at: evil },
              publisher_revoked: { at: evil, reason: evil },
              security_scan: {
                status: evil as 'unknown',
                vulnerabilities: [{ id: evil, severity: evil as 'low', summary: evil, url: evil }],
                last_scan: evil,
                scan_version: evil,
              },
            }),
          ],
        }),
        registry,
      );
      expect(html).not.toContain(evil);
      expect(html).not.toMatch(/<script>alert|<img src=x|' onmouseover=/);
      expect(html).toContain(escapeHtml(evil));
    }
  });

  it('links a replacement only when it is a plugin name, and an advisory only over https', () => {
    const html = renderPluginPage(
      pluginDoc({
        deprecation: { message: 'm', replacement: '../../etc', at: '2026-11-01T00:00:00Z' },
        advisories: [
          {
            id: 'A-1',
            severity: 'low',
            affected: '*',
            summary: 's',
            url: 'http://plain.example/a',
            published: '2026-11-01T00:00:00Z',
          },
        ],
      }),
      registry,
    );
    expect(html).not.toContain('href="/plugins/../../etc');
    expect(html).toContain('<span class="mono">../../etc</span>');
    expect(html).not.toContain('href="http://plain.example/a"');
    expect(html).toContain('http://plain.example/a');
  });

  it('offers no install recipe for a removed version, and the newest installable one when none is latest', () => {
    const removedOnly = renderPluginPage(
      pluginDoc({
        latest_version: null,
        versions: [version({ yanked: true, removed: { reason: 'legal', at: '2026-11-02T00:00:00Z' } })],
      }),
      registry,
    );
    expect(removedOnly).not.toContain('plugindex install p@');
    expect(removedOnly).not.toContain('href="https://r.example.com/plugins/p/1.0.0/manifest.json"');
    const html = renderPluginPage(
      pluginDoc({
        latest_version: null,
        versions: [
          version({ version: '2.0.0-rc.1', prerelease: true, yanked: true }),
          version({ version: '1.0.0-rc.1', prerelease: true }),
        ],
      }),
      registry,
    );
    expect(html).toContain('plugindex install p@1.0.0-rc.1');
  });
});

describe('when rendering the home page', () => {
  it('embeds no plugin data and loads search.json instead', () => {
    const html = renderIndexPage(registry);
    expect(html).toContain('<link rel="preload" href="search.json" as="fetch" crossorigin="anonymous">');
    expect(html).toContain("load('search.json')");
    expect(html).not.toContain('data-search=');
    expect(html).toContain('Test &lt;Registry&gt;');
    expect(html).not.toContain('Test <Registry>');
  });

  it('names its compact rows and their generation when the listing has them, and preloads those rows', () => {
    const html = renderIndexPage(registry, {
      rows: [],
      total: 0,
      generated: '2026-12-01T00:00:00.000Z',
      search: 'home-search.json',
    });
    expect(html).toContain('<link rel="preload" href="home-search.json" as="fetch" crossorigin="anonymous">');
    expect(html).not.toContain('<link rel="preload" href="search.json"');
    expect(html).toMatch(
      /<ul id="results" class="results" data-total="0" data-generated="2026-12-01T00:00:00.000Z" data-search="home-search.json">/,
    );
  });

  it('says "no stable release" for a plugin without one, as its plugin page does (not "prerelease only")', () => {
    const row = {
      name: 'all-yanked',
      latest_version: null,
      plugin_type: 'cost_source',
      providers: [],
      capabilities: [],
      keywords: [],
    };
    const html = renderIndexPage(registry, { rows: [row], total: 1 });
    expect(html).toContain('<span class="version muted">no stable release</span>');
    expect(html).not.toContain('prerelease only');
  });

  it("names ten of a result's look-alikes and counts the rest, as plugindex info and the plugin page do", () => {
    const flags = Array.from({ length: 12 }, (_, i) => `squat-${String(i).padStart(2, '0')}`);
    const row = {
      name: 'squatname',
      latest_version: '1.0.0',
      plugin_type: 'cost_source',
      providers: [],
      capabilities: [],
      keywords: [],
      look_alikes: flags,
    };
    const html = renderIndexPage(registry, { rows: [row], total: 1 });
    expect(html).toContain(
      `<div class="look-alike" role="note">looks like: ${flags.slice(0, 10).join(', ')} and 2 more (other owners)</div>`,
    );
    expect(html).not.toContain('squat-10');
  });

  it('builds the list with DOM calls only', () => {
    expect(renderIndexPage(registry)).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it('lists its first page of plugins in the page, every text of theirs escaped', () => {
    const rows = Array.from({ length: 60 }, (_, i) => ({
      name: `p-${String(i).padStart(2, '0')}`,
      display_name: HOSTILE[0] as string,
      description: HOSTILE[1] as string,
      latest_version: i % 2 ? null : '1.0.0',
      plugin_type: HOSTILE[2] as string,
      providers: [...HOSTILE],
      capabilities: ['a', 'b', 'c', 'd', 'e'],
      keywords: [],
    }));
    const html = renderIndexPage(registry, { rows, total: 1234 });
    expect(html.match(/<li class="plugin"/g)).toHaveLength(50);
    expect(html).toContain('data-name="p-49"');
    expect(html).not.toContain('data-name="p-50"');
    expect(html).toContain('<p id="count" class="muted">1234 of 1234 plugins</p>');
    // Six chips, the other two counted.
    expect(html).toContain('<li class="more">+2</li>');
    for (const text of HOSTILE) {
      expect(html).not.toContain(text);
      expect(html).toContain(escapeHtml(text));
    }
  });
});

describe('when rendering a plugin page of many versions', () => {
  const many = (count: number) =>
    pluginDoc({
      versions: Array.from({ length: count }, (_, i) =>
        version({ version: `1.${count - i}.0`, yanked_reason: HOSTILE[0] as string, yanked: i % 2 === 0 }),
      ),
    });

  it('keeps a short table whole, with no pager or script', () => {
    const html = renderPluginPage(many(20), registry);
    expect(html.match(/<tr class="version/g)).toHaveLength(20);
    expect(html).not.toContain('<template');
    expect(html).not.toContain('<script>');
  });

  it('puts the first 20 in the table and each later page in a noscript of its own, all escaped', () => {
    const html = renderPluginPage(many(45), registry);
    const table = html.slice(html.indexOf('<tbody id="version-rows">'), html.indexOf('<noscript class'));
    expect(table.match(/<tr class="version/g)).toHaveLength(20);
    expect(html.match(/<noscript class="versions-page" data-page="\d+">/g)).toEqual([
      '<noscript class="versions-page" data-page="2">',
      '<noscript class="versions-page" data-page="3">',
    ]);
    expect(html.match(/<tr class="version/g)).toHaveLength(45);
    const last = html.slice(
      html.indexOf('data-page="3"'),
      html.indexOf('</noscript>', html.indexOf('data-page="3"')),
    );
    expect(last.match(/<tr class="version/g)).toHaveLength(5);
    expect(html).not.toContain(HOSTILE[0]);
    expect(html).toContain(escapeHtml(HOSTILE[0] as string));
  });
});

describe('when a plugin of 500 versions carries all a manifest may', () => {
  // 256 findings a version (MAX_SCAN_VULNERABILITIES), ids and summaries of `<` (`&lt;` on the page) and
  // 64 artifacts (the schema's most) at 2 KB URLs of `&`: well over a megabyte of page a version.
  const findings = Array.from({ length: MAX_SCAN_VULNERABILITIES }, (_, i) => ({
    id: `${i}`.padEnd(128, '<'),
    severity: 'critical' as const,
    summary: '<'.repeat(800),
    url: `https://e.example/${'&'.repeat(2000)}`,
  }));
  const artifacts = Array.from({ length: 64 }, (_, i) => ({
    ...(version().artifacts[0] as VersionRecord['artifacts'][number]),
    os: `os${i}`,
    url: `https://e.example/?${'&'.repeat(2000)}`,
  }));
  const huge = pluginDoc({
    versions: Array.from({ length: 500 }, (_, i) =>
      version({
        version: `1.0.${500 - i}`,
        artifacts,
        security_scan: { status: 'vulnerable', vulnerabilities: findings },
      }),
    ),
  });

  it('refuses its page past the bound (RENDER_TOO_LARGE) as soon as it is past, not after rendering it all', () => {
    // Which versions had their row rendered: a row reads its version's scan, nothing before it does.
    const rendered = new Set<number>();
    const counted = {
      ...huge,
      versions: huge.versions.map((v, i) => {
        const { security_scan, ...rest } = v;
        return Object.defineProperty(rest, 'security_scan', {
          enumerable: true,
          get: () => {
            rendered.add(i);
            return security_scan;
          },
        }) as VersionRecord;
      }),
    };
    const row = renderPluginPage(
      { ...huge, versions: huge.versions.slice(0, 1), advisories: [] },
      registry,
    ).length;
    expect(() => renderPluginPage(counted, registry, { maxLength: MAX_PLUGIN_PAGE_LENGTH })).toThrow(
      expect.objectContaining({ name: 'RenderError', code: 'RENDER_TOO_LARGE' }),
    );
    // Before: 9 s and 1.2 GB to a RangeError (past the longest string V8 holds). The rows rendered are the
    // ones within the bound and the one past it, whatever the machine's speed: not the 500.
    expect(rendered.size).toBeGreaterThan(0);
    expect(rendered.size).toBeLessThanOrEqual(Math.ceil(MAX_PLUGIN_PAGE_LENGTH / row) + 1);
  });

  it('renders an ordinary plugin of 500 versions far within the bound', () => {
    const ordinary = pluginDoc({
      versions: Array.from({ length: 500 }, (_, i) => version({ version: `1.0.${500 - i}` })),
    });
    const html = renderPluginPage(ordinary, registry, { maxLength: MAX_PLUGIN_PAGE_LENGTH });
    expect(html.length).toBeLessThan(MAX_PLUGIN_PAGE_LENGTH / 20);
  });
});

describe('when a plugin of 500 versions has hundreds of advisories', () => {
  it("parses each advisory's range once for the page, not once for each version", () => {
    // Ranges that affect none of the versions, each its own: semver's cache of parsed ranges holds 1,000.
    const advisories = Array.from({ length: 1000 }, (_, i) => ({
      id: `PDX-${i}`,
      severity: 'high' as const,
      affected: `>=9.${i}.0 <9.${i}.5 || =8.${i}.1`,
      summary: 's',
      published: '2026-11-01T00:00:00.000Z',
    }));
    const affecting = { ...(advisories[0] as Advisory), id: 'PDX-LIVE', affected: '<1.0.3' };
    const doc = pluginDoc({
      advisories: [...advisories, affecting],
      versions: Array.from({ length: 500 }, (_, i) => version({ version: `1.0.${500 - i}` })),
    });
    // Every parse of a range, cached by semver or not, goes through Range#parseRange, once for each of its
    // `||` alternatives.
    const parses = vi.spyOn(semver.Range.prototype, 'parseRange');
    const alternatives = doc.advisories?.reduce((n, a) => n + a.affected.split('||').length, 0);
    let html: string;
    try {
      html = renderPluginPage(doc, registry);
      // Before: 21 s (43 µs for each version and advisory), a parse for each of the 500,000 pairs.
      expect(parses).toHaveBeenCalledTimes(alternatives as number);
    } finally {
      parses.mockRestore();
    }
    expect(html.match(/class="badge high advisory-mark"/g)).toHaveLength(2);
    expect(html).toContain('data-advisory="PDX-LIVE" href="#advisory-PDX-LIVE"');
  });
});
