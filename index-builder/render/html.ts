import { sha256Base64 } from '../digest.ts';
import { pluginDocumentKey, pluginNameFormProblem } from '../layout.ts';
import {
  type Advisory,
  type ArtifactRecord,
  allArtifacts,
  artifactPlatformText,
  type PluginDocument,
  type RegistryIdentity,
  type SearchEntry,
  type SecurityScan,
  type VersionRecord,
} from '../model.ts';
import { RenderError, showableText } from '../text.ts';
import { advisoryTest } from '../versions.ts';
import {
  HOME_PAGE_SIZE,
  HOME_SCRIPT,
  LOOK_ALIKE_LEAD,
  LOOK_ALIKES_SHOWN,
  NO_STABLE_RELEASE,
  RESULT_CHIPS,
  VERSIONS_PAGE_SIZE,
  VERSIONS_SCRIPT,
} from './page-script.ts';

/** Any character `escapeHtml` escapes (no global flag: a test keeps no position between calls). */
const MARKUP = /[&<>"']/;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes markup, and shows text no reader should get (text.ts) as U+FFFD: a manifest holding it is refused,
 * so this only guards what a check upstream missed.
 */
export function escapeHtml(value: string): string {
  // Tested first: most text holds no markup, and a test costs a fraction of a replace with a callback.
  return showableText(MARKUP.test(value) ? value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string) : value);
}

/**
 * An http(s) URL with no user information: `https://github.com@evil.example/` goes to evil.example and
 * reads as github.com in a link's text. Manifests and actions holding one are refused; this guards what
 * was published before.
 */
const isWebUrl = (url: string): boolean => /^https?:\/\/[^/?#@]*(?:[/?#]|$)/i.test(url);

/** The path of the registry's base URL, without a trailing slash ('' at a host's root). */
function rootPathOf(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/+$/, '');
  } catch {
    return '';
  }
}

/** A link when the URL is http(s), escaped text otherwise. */
function link(url: string, label = url): string {
  return isWebUrl(url)
    ? `<a href="${escapeHtml(url)}" rel="nofollow noopener">${escapeHtml(label)}</a>`
    : `<span>${escapeHtml(label)}</span>`;
}

/**
 * A link only for an https URL (what an advisory or a scan finding may link), escaped text otherwise: a
 * security reference is followed by people deciding what to trust, so not over plain http.
 */
function httpsLink(url: string, label = url): string {
  return /^https:\/\//i.test(url) ? link(url, label) : `<span class="url">${escapeHtml(label)}</span>`;
}

/** The day of an ISO 8601 time, as the pages show dates. */
const day = (time: string): string => escapeHtml(time.slice(0, 10));

/** Another plugin's page on this registry (a deprecation's replacement); text when it is not a plugin name. */
function pluginLink(root: string, name: string): string {
  if (pluginNameFormProblem(name) !== undefined) return `<span class="mono">${escapeHtml(name)}</span>`;
  return `<a class="replacement" href="${root}/plugins/${escapeHtml(name)}/index.html">${escapeHtml(name)}</a>`;
}

/** An advisory with its range parsed once for the page's versions (versions.ts `advisoryTest`). */
interface AdvisoryTest {
  readonly advisory: Advisory;
  readonly affects: (version: string) => boolean;
}

/** The advisories that affect a version, as the client judges them (versions.ts `advisoryAffects`). */
function advisoriesOf(tests: readonly AdvisoryTest[], version: string): Advisory[] {
  return tests.filter((t) => t.affects(version)).map((t) => t.advisory);
}

function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * The pages' one style sheet, published as `style.css` beside `index.html` (`STYLE_KEY`) and linked by every
 * page: inline, it was half of each plugin page's bytes (3.7 of 7 KB), which an import of 10,000 plugins
 * rendered, copied and wrote 10,000 times, and which a browser fetched again with every page it opened.
 */
export const PAGE_STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b636d; --bg: #ffffff; --card: #f5f7f9; --line: #d8dee4;
  --accent: #0b63ce; --warn: #9a5b00; --bad: #b42318; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ed; --muted: #9aa4ae; --bg: #0f1318; --card: #171c22;
  --line: #2a323c; --accent: #6cb0ff; --warn: #f0b35b; --bad: #ff7b72; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 72rem; margin: 0 auto; padding: 1rem 1.25rem; }
header { border-bottom: 1px solid var(--line); display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header a.home { font-weight: 700; color: var(--fg); text-decoration: none; }
a { color: var(--accent); }
h1 { margin: .25rem 0; font-size: 1.7rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.muted { color: var(--muted); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
pre { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .75rem; overflow-x: auto; }
.chips { display: flex; flex-wrap: wrap; gap: .35rem; padding: 0; margin: .25rem 0; list-style: none; }
.chips li { background: var(--card); border: 1px solid var(--line); border-radius: 999px; padding: 0 .6rem; font-size: .85em; }
.badge { display: inline-block; border-radius: 4px; padding: 0 .4rem; font-size: .75em; font-weight: 600; border: 1px solid currentColor; }
.badge.prerelease { color: var(--accent); } .badge.deprecated { color: var(--warn); } .badge.yanked { color: var(--bad); }
.badge.removed, .badge.revoked, .badge.critical, .badge.high, .badge.vulnerable { color: var(--bad); }
.badge.moderate, .badge.low, .badge.unknown { color: var(--warn); } .badge.secure { color: var(--accent); }
.badge.withdrawn { color: var(--muted); }
tr.yanked td.version strong, tr.removed td.version strong { text-decoration: line-through; }
.banner { border: 1px solid var(--warn); border-left-width: 6px; border-radius: 6px; padding: .6rem 1rem; margin: .75rem 0; }
.look-alike { color: var(--warn); font-weight: 600; font-size: .9em; }
.note { margin-top: .2rem; font-size: .9em; } .note.removed, .note.revoked { color: var(--bad); }
.advisory { border-left: 4px solid var(--bad); } .advisory.withdrawn { border-left-color: var(--line); color: var(--muted); }
.advisory h3 { margin: 0 0 .25rem; font-size: 1rem; }
ul.vulnerabilities { margin: .25rem 0; padding-left: 1.25rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.digest { word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; margin: .75rem 0; }
input, select { font: inherit; padding: .4rem .6rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
.filters { display: flex; gap: .5rem; flex-wrap: wrap; margin: 1rem 0; }
.filters input[type=search] { flex: 1 1 20rem; }
ul.results { list-style: none; padding: 0; }
ul.results li { border-bottom: 1px solid var(--line); padding: .75rem 0; }
ul.results .name { font-weight: 700; font-size: 1.05rem; }
[hidden] { display: none !important; }
.pager { display: flex; gap: 1rem; align-items: baseline; margin: 1rem 0; }
`;

/**
 * The pages' icon, published as `favicon.svg` beside `index.html`: without one, every page view costs the
 * browser a 404 on `/favicon.ico` (an inline `data:` icon would break the pages' content security policy).
 */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0b63ce"/><path d="M11 25V8h7a5.5 5.5 0 0 1 0 11h-7" fill="none" stroke="#fff" stroke-width="3.2" stroke-linejoin="round"/></svg>
`;

/**
 * A page around `body`; `title` is HTML (escaped by the caller). The markup the pages add themselves is ASCII
 * (`&mdash;`, not the character): one character past Latin-1 makes V8 hold the whole page as a two-byte
 * string, twice the memory to build, copy and encode, and an import of 10,000 plugins renders 10,000 pages.
 */
function page(title: string, body: string, registry: RegistryIdentity, home: string, head = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/svg+xml" href="${home}favicon.svg">${head}
<title>${title}</title>
<link rel="stylesheet" href="${home}style.css">
</head>
<body>
<header><a class="home" href="${home}">${escapeHtml(registry.name)}</a><span class="muted">a signed plugin registry</span></header>
<main>
${body}
</main>
<footer class="muted">Every document is signed: <a href="${home}keys/registry.asc">registry key</a>,
<a href="${home}snapshot.json">snapshot</a>.</footer>
</body>
</html>
`;
}

function chips(values: readonly string[], cls: string): string {
  if (values.length === 0) return '<span class="muted">none</span>';
  return `<ul class="chips ${cls}">${values.map((v) => `<li>${escapeHtml(v)}</li>`).join('')}</ul>`;
}

/** Where an artifact is fetched: a link for a web URL, the reference and digest for an OCI artifact. */
function artifactSource(a: ArtifactRecord): string {
  if (a.oci)
    return `<div class="oci" data-testid="oci">OCI <code class="oci-reference">${escapeHtml(a.oci.reference)}</code><div class="oci-digest digest mono">${escapeHtml(a.oci.digest)}</div></div>`;
  return link(a.url, a.hosted ? 'download' : 'download (external)');
}

function artifactRows(artifacts: readonly ArtifactRecord[], removed = false): string {
  if (artifacts.length === 0) return '<p class="muted">No per-platform artifacts.</p>';
  const rows = artifacts
    .map(
      (a) => `<tr class="artifact" data-platform="${escapeHtml(artifactPlatformText(a))}">
<td>${escapeHtml(artifactPlatformText(a))}</td><td>${escapeHtml(humanSize(a.size_bytes))}</td>
<td class="digest mono">${escapeHtml(a.sha256)}</td><td>${removed ? '<span class="muted">removed</span>' : artifactSource(a)}</td></tr>`,
    )
    .join('\n');
  return `<table class="artifacts"><thead><tr><th>platform</th><th>size</th><th>sha256</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** What a version asks the host to allow and the limits it declares; nothing when it declares neither. */
function policyFacts(v: VersionRecord): string {
  const permissions = v.permissions?.length
    ? `<div class="permissions-line">Permissions: <ul class="chips permissions" data-testid="permissions">${v.permissions.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul></div>`
    : '';
  const limits = Object.entries(v.resources ?? {});
  const resources = limits.length
    ? `<div class="resources-line">Resource limits: <dl class="facts resources" data-testid="resources">${limits.map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd data-resource="${escapeHtml(name)}">${escapeHtml(String(value))}</dd>`).join('')}</dl></div>`
    : '';
  return `${permissions}${resources}`;
}

/** A version's security scan (the manifest's `security_scan_results`): status, scanner, findings. */
function scanFacts(scan: SecurityScan): string {
  const about = [
    scan.scan_version ? escapeHtml(scan.scan_version) : '',
    scan.last_scan ? `scanned ${day(scan.last_scan)}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const findings = scan.vulnerabilities
    .map(
      (f) =>
        `<li class="vulnerability" data-vulnerability="${escapeHtml(f.id)}"><span class="mono vulnerability-id">${escapeHtml(f.id)}</span>${f.severity ? ` <span class="badge ${escapeHtml(f.severity)}">${escapeHtml(f.severity)}</span>` : ''}${f.summary ? ` <span class="vulnerability-summary">${escapeHtml(f.summary)}</span>` : ''}${f.url ? ` ${httpsLink(f.url, 'details')}` : ''}</li>`,
    )
    .join('');
  return `<div class="scan" data-testid="security-scan" data-status="${escapeHtml(scan.status)}">Security scan: <span class="badge ${escapeHtml(scan.status)} scan-status">${escapeHtml(scan.status)}</span>${about ? ` <span class="muted">(${about})</span>` : ''}${findings ? `<ul class="vulnerabilities">${findings}</ul>` : ''}</div>`;
}

function versionRow(v: VersionRecord, advisories: readonly AdvisoryTest[], root: string): string {
  const affecting = advisoriesOf(advisories, v.version);
  const classes = [
    'version',
    v.prerelease ? 'prerelease' : '',
    v.yanked ? 'yanked' : '',
    v.deprecated ? 'deprecated' : '',
    v.removed ? 'removed' : '',
    v.publisher_revoked ? 'revoked' : '',
    affecting.length > 0 ? 'advised' : '',
  ]
    .filter(Boolean)
    .join(' ');
  const badges = [
    v.prerelease ? '<span class="badge prerelease">prerelease</span>' : '',
    // A removed version is yanked too (for clients that read only that); its own mark says more.
    v.removed
      ? '<span class="badge removed">removed</span>'
      : v.yanked
        ? `<span class="badge yanked" title="${escapeHtml(v.yanked_reason ?? '')}">yanked</span>`
        : '',
    v.deprecated
      ? `<span class="badge deprecated" title="${escapeHtml(v.deprecation_message ?? '')}">deprecated</span>`
      : '',
    v.publisher_revoked ? '<span class="badge revoked">publisher key revoked</span>' : '',
    ...affecting.map(
      (a) =>
        `<a class="badge ${escapeHtml(a.severity)} advisory-mark" data-advisory="${escapeHtml(a.id)}" href="#advisory-${escapeHtml(a.id)}">${escapeHtml(a.id)} (${escapeHtml(a.severity)})</a>`,
    ),
  ]
    .filter(Boolean)
    .join(' ');
  const notes = [
    v.removed
      ? `<div class="note removed" data-testid="removed">Removed ${day(v.removed.at)}: ${escapeHtml(v.removed.reason)}. Its files are no longer published.</div>`
      : v.yanked
        ? `<div class="note yanked-reason" data-testid="yanked">Yanked${v.yanked_reason ? `: ${escapeHtml(v.yanked_reason)}` : ''}</div>`
        : '',
    v.deprecated
      ? `<div class="note deprecation" data-testid="deprecated">Deprecated${v.deprecation_message ? `: ${escapeHtml(v.deprecation_message)}` : ''}${v.deprecation_replacement ? ` &mdash; use ${pluginLink(root, v.deprecation_replacement)} instead.` : ''}</div>`
      : '',
    v.publisher_revoked
      ? `<div class="note revoked" data-testid="revoked">The key that published it was revoked ${day(v.publisher_revoked.at)}${v.publisher_revoked.reason ? `: ${escapeHtml(v.publisher_revoked.reason)}` : ''}</div>`
      : '',
  ].join('');
  const api =
    [v.min_api_version, v.max_api_version]
      .filter(Boolean)
      .map((x) => escapeHtml(x as string))
      .join(' &ndash; ') || escapeHtml(v.api_version);
  // A removed version's files are deleted: no link to them, only what was published of them.
  const files = v.removed
    ? '<span class="muted">removed</span>'
    : `${link(v.manifest_url, 'manifest')} · ${link(v.manifest_signature_url, 'signature')}`;
  return `<tr class="${classes}" data-version="${escapeHtml(v.version)}">
<td class="version"><strong>${escapeHtml(v.version)}</strong> ${badges}${notes}</td>
<td>${escapeHtml(v.published.slice(0, 10))}</td><td>${api}</td>
<td>${files}<div class="digest mono">${escapeHtml(v.manifest_sha256)}</div></td>
</tr>
<tr class="platforms" data-version="${escapeHtml(v.version)}"><td colspan="4">${policyFacts(v)}${v.security_scan ? scanFacts(v.security_scan) : ''}${artifactRows(allArtifacts(v), v.removed !== undefined)}</td></tr>`;
}

/** The plugin's advisories, newest first; a withdrawn one stays listed, marked. */
function advisorySection(advisories: readonly Advisory[]): string {
  if (advisories.length === 0) return '';
  const items = [...advisories]
    .reverse()
    .map((a) => {
      const withdrawn = a.withdrawn
        ? `<p class="withdrawn-note" data-testid="withdrawn"><span class="badge withdrawn">withdrawn</span> ${day(a.withdrawn.at)}${a.withdrawn.reason ? `: ${escapeHtml(a.withdrawn.reason)}` : ''}</p>`
        : '';
      const facts = [
        ['affected', `<code class="affected">${escapeHtml(a.affected)}</code>`],
        [
          'fixed in',
          a.fixed
            ? `<code class="fixed">${escapeHtml(a.fixed)}</code>`
            : '<span class="muted">no fix yet</span>',
        ],
        ['published', day(a.published)],
        ...(a.url ? [['details', httpsLink(a.url)]] : []),
      ]
        .map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`)
        .join('');
      return `<div class="card advisory${a.withdrawn ? ' withdrawn' : ''}" id="advisory-${escapeHtml(a.id)}" data-advisory="${escapeHtml(a.id)}">
<h3><span class="mono advisory-id">${escapeHtml(a.id)}</span> <span class="badge ${escapeHtml(a.severity)} severity">${escapeHtml(a.severity)}</span></h3>
<p class="summary">${escapeHtml(a.summary)}</p>${withdrawn}
<dl class="facts">${facts}</dl></div>`;
    })
    .join('\n');
  return `<h2>Advisories</h2>\n${items}`;
}

/**
 * A value as one word of a POSIX shell command, escaped for HTML: the recipes are pasted into a shell, and a
 * URL may hold `&`, `;`, `$` or `'` (a publisher's artifact URL, a pre-signed link), which would run there.
 * Plain words stay as they are, to read; any other is single-quoted, each `'` in it as `'\''`.
 */
function shellWord(value: string): string {
  const word = /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
  return escapeHtml(word);
}

/**
 * The recipe's line that fetches an artifact: curl for a URL; for an OCI artifact, its blob by digest
 * (`registry/repository@digest` from the record's URL), whatever tag the reference names.
 */
function fetchLine(a: ArtifactRecord, file: string): string {
  if (!a.oci) return `curl -fsSL ${shellWord(a.url)} -o ${shellWord(file)}`;
  const pinned = a.url.startsWith('oci://') ? a.url.slice('oci://'.length) : a.oci.reference;
  return `oras blob fetch --output ${shellWord(file)} ${shellWord(pinned)}   # from an OCI registry`;
}

/**
 * Most characters a plugin's page (and its document) may hold when something changes it: 32 Mi, some 45 times
 * a plugin of 500 ordinary versions (0.7 MB). Nothing else bounds them: a version's manifest may carry 256
 * scan findings and 64 artifacts of 2 KB URLs, which its page shows escaped (`<` as `&lt;`), up to 1.2 MB
 * a version, and 500 such versions made a page past the longest string V8 holds: its render threw
 * `RangeError: Invalid string length` after 9 s and 1.2 GB, in a function of 2 GB that publishes for everyone.
 */
export const MAX_PLUGIN_PAGE_LENGTH = 32 * 1024 * 1024;

export interface PluginPageOptions {
  /** Refuse the page past this many characters (RENDER_TOO_LARGE); unbounded when absent. */
  readonly maxLength?: number;
}

/** The RenderError for a plugin whose page (or document, in bytes) would pass `maxLength`. */
export function pageTooLarge(name: string, maxLength: number, what = 'page'): RenderError {
  return new RenderError(
    'RENDER_TOO_LARGE',
    `the ${what} of ${name} would hold more than ${maxLength} ${what === 'page' ? 'characters' : 'bytes'}: its versions carry more than the registry shows on one page`,
  );
}

/**
 * The version table. Up to a page of versions it is the whole table; past that, the table holds the first
 * page and every other page follows as its own table inside a `<noscript>`: without script the browser shows
 * them all, as the page always did; with script it keeps each as one raw text node (no element, style or
 * layout for 480 versions), and the versions script parses a page's text (this server-rendered, escaped
 * markup, nothing else) when someone turns to it (`?versions=N`).
 */
function versionsSection(
  versions: readonly VersionRecord[],
  advisories: readonly Advisory[],
  root: string,
  budget: { left: number; readonly refuse: () => RenderError },
): string {
  const tests = advisories.map((advisory) => ({ advisory, affects: advisoryTest(advisory) }));
  const head =
    '<thead><tr><th>version</th><th>published</th><th>API</th><th>manifest (sha256)</th></tr></thead>';
  // Counted row by row, so a page past its bound stops being rendered as soon as it is (its cost bounded).
  const row = (v: VersionRecord): string => {
    const text = versionRow(v, tests, root);
    budget.left -= text.length;
    if (budget.left < 0) throw budget.refuse();
    return text;
  };
  const pages: string[] = [];
  for (let i = 0; i < versions.length || i === 0; i += VERSIONS_PAGE_SIZE) {
    pages.push(
      versions
        .slice(i, i + VERSIONS_PAGE_SIZE)
        .map(row)
        .join('\n'),
    );
  }
  const table = `<table class="versions">${head}
<tbody id="version-rows">
${pages[0]}
</tbody></table>`;
  if (pages.length === 1) return `<h2 id="versions">Versions</h2>\n${table}`;
  const later = pages
    .slice(1)
    .map(
      (rows, i) =>
        `<noscript class="versions-page" data-page="${i + 2}"><table class="versions">${head}<tbody>${rows}</tbody></table></noscript>`,
    )
    .join('\n');
  return `<h2 id="versions">Versions</h2>
<p class="muted" id="versions-count">${versions.length} versions, newest first, ${VERSIONS_PAGE_SIZE} to a page.</p>
<nav id="versions-pager" class="pager" hidden><a id="versions-prev" rel="prev" href="#versions">newer</a> <span id="versions-at"></span> <a id="versions-next" rel="next" href="#versions">older</a></nav>
${table}
${later}
<script>${VERSIONS_SCRIPT}</script>`;
}

/**
 * `plugins/<name>/index.html`.
 * @throws RenderError (RENDER_TOO_LARGE) past `options.maxLength` characters.
 */
export function renderPluginPage(
  doc: PluginDocument,
  registry: RegistryIdentity,
  options: PluginPageOptions = {},
): string {
  const maxLength = options.maxLength ?? Number.POSITIVE_INFINITY;
  const budget = { left: maxLength, refuse: () => pageTooLarge(doc.name, maxLength) };
  // Root-relative links: the page is reached as /plugins/<name> (by Accept) as well as by its own path.
  const root = escapeHtml(rootPathOf(registry.url));
  // The recipe installs what a client would choose: latest, else the newest that is neither yanked nor
  // removed; a plugin with none gets no recipe.
  const install = doc.latest_version ?? doc.versions.find((v) => !v.yanked && !v.removed)?.version;
  const shown = doc.versions.find((v) => v.version === install && !v.removed);
  const advisories = doc.advisories ?? [];
  const deprecation = doc.deprecation
    ? `<div class="banner deprecated" role="note" data-testid="plugin-deprecation"><strong>This plugin is deprecated</strong> (${day(doc.deprecation.at)}): <span class="message">${escapeHtml(doc.deprecation.message)}</span>${doc.deprecation.replacement ? ` &mdash; use ${pluginLink(root, doc.deprecation.replacement)} instead.` : ''}</div>`
    : '';
  const facts = [
    ['type', escapeHtml(doc.plugin_type)],
    [
      'latest',
      doc.latest_version ? escapeHtml(doc.latest_version) : `<span class="muted">${NO_STABLE_RELEASE}</span>`,
    ],
    ...Object.entries(doc.channels).map(([channel, version]) => [
      `channel ${escapeHtml(channel)}`,
      escapeHtml(version),
    ]),
    ['license', doc.license ? escapeHtml(doc.license) : '<span class="muted">not stated</span>'],
    ...(doc.homepage ? [['homepage', link(doc.homepage)]] : []),
    ...(doc.repository ? [['repository', link(doc.repository)]] : []),
  ]
    .map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`)
    .join('');
  // The client first (it verifies the whole chain and records the lock); beneath it, what works with
  // nothing but curl and gpg: fetch the signed manifest of the version, verify it, and fetch a platform's
  // artifact against its published digest.
  const artifact = shown?.artifacts[0];
  const snippet = shown
    ? `<p class="muted">With the plugindex client, once this registry is added (<code>plugindex registry add NAME ${shellWord(registry.url)} --key registry.asc</code>):</p>
<pre><code class="client-install">plugindex install ${shellWord(`${doc.name}@${shown.version}`)}</code></pre>
<p class="muted">Without it: ${escapeHtml(doc.name)}@${escapeHtml(shown.version)}, verified with the <a href="${root}/keys/registry.asc">registry key</a>:</p>
<pre><code class="install">curl -fsSL ${shellWord(shown.manifest_url)} -o manifest.json
curl -fsSL ${shellWord(shown.manifest_signature_url)} -o manifest.json.asc
gpg --verify manifest.json.asc manifest.json${
        artifact
          ? `
${fetchLine(artifact, doc.name)}
echo "${escapeHtml(artifact.sha256)}  ${escapeHtml(doc.name)}" | sha256sum -c -   # ${escapeHtml(artifact.os)}/${escapeHtml(artifact.arch)}`
          : ''
      }</code></pre>`
    : '';
  const body = `<p class="muted"><a href="${root}/index.html">all plugins</a> · <a href="${root}/${escapeHtml(pluginDocumentKey(doc.name))}">JSON</a></p>
<h1 class="display-name">${escapeHtml(doc.display_name ?? doc.name)}</h1>
<p class="mono name">${escapeHtml(doc.name)}</p>
${lookAlikeNote(doc.look_alikes)}
${doc.description ? `<p class="description">${escapeHtml(doc.description)}</p>` : ''}
${deprecation}
<div class="card"><dl class="facts">${facts}</dl></div>
<h2>Capabilities</h2>${chips(doc.capabilities, 'capabilities')}
<h2>Providers</h2>${chips(doc.supported_providers, 'providers')}
<h2>Tags</h2>${chips(doc.tags, 'tags')}
<h2>Install</h2>${snippet}
${advisorySection(advisories)}
${versionsSection(doc.versions, advisories, root, budget)}`;
  const html = page(
    `${escapeHtml(doc.name)} &mdash; ${escapeHtml(registry.name)}`,
    body,
    registry,
    `${root}/`,
  );
  if (html.length > maxLength) throw budget.refuse();
  return html;
}

/**
 * The signed document's look-alikes under the plugin's name, in the words `plugindex info` prints
 * (cli/commands/search.ts `lookAlikeWarning`: ten at most, the rest counted), a note a screen reader reads.
 */
function lookAlikeNote(alikes: PluginDocument['look_alikes']): string {
  if (!alikes?.length) return '';
  return `<div class="look-alike" role="note" data-testid="plugin-look-alikes">${escapeHtml(lookAlikeText(alikes.map((a) => a.name)))}</div>`;
}

/**
 * A look-alike flag's text: `LOOK_ALIKES_SHOWN` names, the rest counted, as the home script's `item`
 * writes it and `plugindex info` prints it. (Unescaped: the caller escapes it.)
 */
function lookAlikeText(names: readonly string[]): string {
  const more = names.length > LOOK_ALIKES_SHOWN ? ` and ${names.length - LOOK_ALIKES_SHOWN} more` : '';
  return `${LOOK_ALIKE_LEAD}${names.slice(0, LOOK_ALIKES_SHOWN).join(', ')}${more} (other owner${names.length === 1 ? '' : 's'})`;
}

/** A CSP source for an inline element's exact text. */
const cspHash = (text: string): string => `sha256-${sha256Base64(text)}`;

/**
 * The pages' inline scripts, by hash: the pages' CSP (serving.ts) allows exactly these and no other inline
 * code, so markup that slipped past escaping could still not run (nor style itself: styles come only from
 * the registry's own `style.css`).
 */
export const PAGE_SCRIPT_HASHES: readonly string[] = [cspHash(HOME_SCRIPT), cspHash(VERSIONS_SCRIPT)];

/** The first page of the home page's list, rendered into `index.html`: `rows` are search.json's first rows. */
export interface HomeListing {
  /**
   * With the `look_alikes` a search hit has (search.ts `lookAlikesOf` over every row), where known: a
   * listing that names its `generated` must carry them, since the script keeps that list as served.
   */
  readonly rows: readonly HomeRow[];
  /** How many plugins the registry holds. */
  readonly total: number;
  /**
   * The `generated` of the search.json (and home-search.json) rendered with it: when the rows the script
   * fetches say the same, the list as served is already their first page, and the script keeps it.
   */
  readonly generated?: string;
  /** The key of the rows in their compact form (layout.ts HOME_SEARCH_KEY), when they are published. */
  readonly search?: string;
}

/** A row of the home page's list: search.json's, with its look-alikes of other owners, if any. */
export type HomeRow = SearchEntry & { readonly look_alikes?: readonly string[] };

/** One plugin in the home page's list: the same markup the home script builds (page-script.ts `item`). */
function resultItem(row: HomeRow): string {
  const all = [...new Set([...row.providers, ...row.capabilities, ...row.keywords])];
  const chips = all
    .slice(0, RESULT_CHIPS)
    .map((c) => `<li>${escapeHtml(c)}</li>`)
    .join('');
  const more = all.length > RESULT_CHIPS ? `<li class="more">+${all.length - RESULT_CHIPS}</li>` : '';
  const flags = row.look_alikes;
  const alike = flags?.length
    ? `<div class="look-alike" role="note">${escapeHtml(lookAlikeText(flags))}</div>`
    : '';
  return `<li class="plugin" data-name="${escapeHtml(row.name)}"><a class="name" href="plugins/${escapeHtml(encodeURIComponent(row.name))}/index.html">${escapeHtml(row.name)}</a> <span class="version muted">${escapeHtml(row.latest_version ?? NO_STABLE_RELEASE)}</span> <span class="badge">${escapeHtml(row.plugin_type)}</span>${row.deprecated ? ' <span class="badge deprecated">deprecated</span>' : ''}${alike}${row.display_name ? `<div class="display-name">${escapeHtml(row.display_name)}</div>` : ''}${row.description ? `<div class="description muted">${escapeHtml(row.description)}</div>` : ''}<ul class="chips">${chips}${more}</ul></li>`;
}

/**
 * `index.html`: the home page. With `listing`, its first page of plugins (by name, as search.json lists
 * them) is in the page itself, so it shows at once and without script; the script then searches
 * `search.json` and pages through it (page-script.ts). Without `listing`, the list waits for the script.
 */
export function renderIndexPage(registry: RegistryIdentity, listing?: HomeListing): string {
  const types = ['cost_source', 'observability', 'registry', 'aggregator']
    .map((t) => `<option value="${t}">${t}</option>`)
    .join('');
  const first = listing ? listing.rows.slice(0, HOME_PAGE_SIZE) : [];
  const count = listing ? `${listing.total} of ${listing.total} plugins` : 'loading&hellip;';
  const body = `<h1>${escapeHtml(registry.name)}</h1>
${registry.description ? `<p class="muted">${escapeHtml(registry.description)}</p>` : ''}
<form id="search" class="filters" role="search" hidden>
<input id="q" type="search" placeholder="Search plugins by name, keyword, capability, provider" aria-label="search">
<select id="type" aria-label="plugin type"><option value="">any type</option>${types}</select>
<input id="provider" placeholder="provider (aws, gcp...)" aria-label="provider">
<input id="capability" placeholder="capability" aria-label="capability">
</form>
<p id="count" class="muted">${count}</p>
<noscript><p>Searching and the pages after the first need JavaScript; every plugin is listed in <a href="search.json">search.json</a> and <a href="index.json">index.json</a>, and has its page at plugins/NAME/index.html.</p></noscript>
<ul id="results" class="results"${listing ? ` data-total="${listing.total}"` : ''}${listing?.generated ? ` data-generated="${escapeHtml(listing.generated)}"` : ''}${listing?.search ? ` data-search="${escapeHtml(listing.search)}"` : ''}>${first.map(resultItem).join('')}</ul>
<nav id="pager" class="pager" hidden><a id="prev" rel="prev" href="">previous</a> <span id="page-at"></span> <a id="next" rel="next" href="?page=2">next</a></nav>
<h2>For clients</h2>
<p><a href="index.json">index.json</a> · <a href="index.yaml">index.yaml</a> · <a href="search.json">search.json</a> ·
<a href="falcoctl/index.yaml">falcoctl/index.yaml</a> ·
<a href="snapshot.json">snapshot.json</a> · <a href="keys/registry.asc">keys/registry.asc</a></p>
<script>${HOME_SCRIPT}</script>`;
  // The script's rows, fetched while the page is still being read rather than after it.
  const preload = `\n<link rel="preload" href="${escapeHtml(listing?.search ?? 'search.json')}" as="fetch" crossorigin="anonymous">`;
  return page(escapeHtml(registry.name), body, registry, '', preload);
}
