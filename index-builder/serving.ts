/**
 * How the published tree is served: which request path names which key, and the security headers of every
 * response. One policy for both servers: the local server (cli/local/server.ts) calls these functions, and
 * the CloudFront Functions (infra/edge-routing.ts) embed the same constants and apply the same rules in
 * CloudFront's JavaScript; test/infra/edge-routing.test.ts runs both over the same paths and types.
 *
 * - Pages (`text/html`, the registry's own) get a CSP with no `'unsafe-inline'`: their style sheet by
 *   origin and their scripts by hash, nothing else runs. The hashes are every release's
 *   (render/released-page-hashes.ts): a page keeps the script it was published with, the policy is ours.
 * - Hosted artifacts are downloads, whatever they are called: `application/octet-stream`,
 *   `Content-Disposition: attachment`, and a sandboxing CSP, so an `.html` or `.svg` artifact never runs
 *   script on the registry's origin.
 * - Everything else (documents, signatures, keys, errors) is data: `default-src 'none'`.
 */
import {
  CONTENT_ENCODINGS,
  type ContentEncoding,
  ENCODED_DOCUMENTS,
  encodedVariantKey,
  FAVICON_KEY,
  HOME_PAGE_KEY,
  INDEX_JSON_KEY,
  isHostedArtifactKey,
  isPluginDocumentKey,
  manifestKey,
  pluginDocumentKey,
  pluginPageKey,
  variantOfKey,
} from './layout.ts';
import { PAGE_SCRIPT_HASHES } from './render/html.ts';
import { RELEASED_PAGE_SCRIPT_HASHES, RELEASED_PAGE_STYLE_HASHES } from './render/released-page-hashes.ts';
import { SEARCH_PATH } from './search-endpoint.ts';

/** CSP sources for hashes, each once, in order. */
const hashSources = (hashes: readonly string[]): string =>
  [...new Set(hashes)].map((h) => `'${h}'`).join(' ');

/**
 * Pages: their own scripts by hash, this release's and every earlier one's (a page published before an
 * upgrade still carries its release's script, and a blocked script leaves its pager and search dead); the
 * style sheet (`style.css`, served as text/css with nosniff, the only one the registry serves) and the inline
 * style of pages published before it; images (the icon) and `search.json` from the registry.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hashSources([...PAGE_SCRIPT_HASHES, ...RELEASED_PAGE_SCRIPT_HASHES])}`,
  `style-src 'self' ${hashSources(RELEASED_PAGE_STYLE_HASHES)}`,
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Documents, signatures and errors: nothing in them may load or run, nor be framed. */
export const DATA_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Hosted artifacts: opened in a browser anyway, they are a sandboxed document with no origin. */
export const ARTIFACT_CSP = "default-src 'none'; sandbox";

/** Headers every response carries. */
export const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'strict-origin-when-cross-origin',
};

/** The methods every path answers (RFC 9110 §10.2.1 `Allow`): what a 405 lists, and an OPTIONS. */
export const ALLOW = 'GET, HEAD, OPTIONS';

/**
 * The answer to a CORS preflight (an OPTIONS with `Origin` and `Access-Control-Request-Method`), on both
 * servers and for every path: data is readable from any origin (`Access-Control-Allow-Origin: *` on every
 * GET and HEAD answer but a page's), so a browser page elsewhere that sends a header no simple request
 * may (`If-None-Match` set by hand, any header of its own) is let through to the GET, whose own
 * `Access-Control-Allow-Origin` still decides whether the page may read it (a page's has none). Any
 * request header (`*`, which the Fetch standard reads as every name but `Authorization` without credentials:
 * the registry takes none) and GET and HEAD, the only methods served; a preflight asking for another is
 * still 204, and the browser, finding it unlisted, refuses the request itself. No Origin is echoed, so
 * no `Vary: Origin`; and no response to OPTIONS is stored by a cache (RFC 9110 §9.3.7), so nothing varies.
 * Max-Age is a day (Chromium caps it at two hours, Firefox takes it).
 */
export const CORS_PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD',
  'access-control-allow-headers': '*',
  'access-control-max-age': '86400',
};

/**
 * The response headers a page on another origin may read besides the safelisted ones (the Fetch standard's
 * Cache-Control, Content-Language, Content-Length, Content-Type, Expires, Last-Modified, Pragma), sent as
 * `Access-Control-Expose-Headers` wherever `Access-Control-Allow-Origin: *` is: `ETag`, so a browser client
 * can revalidate a document or a search answer with If-None-Match (and tell two answers apart) as any other
 * client does; `Content-Range` and `Accept-Ranges`, so it can resume an artifact's download by range. No
 * header of the registry's own carries anything (a search answer's generation is in its body), and `*`
 * would expose whatever an origin adds (S3's `x-amz-*`) and is read by no browser that predates it.
 */
export const CORS_EXPOSED_HEADER_NAMES: readonly string[] = ['ETag', 'Content-Range', 'Accept-Ranges'];
/** `CORS_EXPOSED_HEADER_NAMES` as the header's value. */
export const CORS_EXPOSED_HEADERS = CORS_EXPOSED_HEADER_NAMES.join(', ');

/**
 * What every response a page on another origin may read carries (data, never a page): leave to read it, and
 * its `CORS_EXPOSED_HEADERS`. The local server and the search function send these; on CloudFront the
 * viewer-response function and the data behaviors' response headers policy send the same.
 */
export const CORS_READ_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': CORS_EXPOSED_HEADERS,
};

/** A CORS preflight: an OPTIONS that names its Origin and the method it asks leave for. */
export function isCorsPreflight(origin: string | undefined, requestMethod: string | undefined): boolean {
  return origin !== undefined && requestMethod !== undefined;
}

/**
 * The headers of the answer to OPTIONS (204, no body, so no Content-Length: RFC 9110 §8.6): `Allow` per
 * §9.3.7, the common headers, and for a preflight `CORS_PREFLIGHT_HEADERS`. The local server sends them;
 * the CloudFront routing and preflight functions embed them (infra/edge-routing.ts), and the search function
 * sends them too, so OPTIONS is answered alike wherever it lands, never 405.
 */
export function optionsHeaders(preflight: boolean): Record<string, string> {
  return { ...COMMON_HEADERS, allow: ALLOW, ...(preflight ? CORS_PREFLIGHT_HEADERS : {}) };
}

/** The entity tags of an If-Match or If-None-Match list (RFC 9110 §13.1.1, §13.1.2), each as sent. */
function entityTagsOf(header: string): string[] {
  return header.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

/**
 * If-None-Match (RFC 9110 §13.1.2): `*`, or a list of entity tags compared weakly, so a tag a cache made
 * weak (CloudFront makes an origin's strong tag `W/` when it compresses the body) still matches.
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string): string => tag.replace(/^W\//, '');
  const wanted = opaque(etag);
  return entityTagsOf(header).some((tag) => opaque(tag) === wanted);
}

/**
 * If-Match (RFC 9110 §13.1.1): `*` (there is a current representation, as the caller knows one), or a list
 * of entity tags compared strongly (§8.8.3.2): a weak tag never matches, nor does a field holding no tag at
 * all, so a garbled one fails the request rather than pass it unchecked.
 */
export function ifMatchHits(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return !etag.startsWith('W/') && entityTagsOf(header).includes(etag);
}
/**
 * RFC 9110 §13.2.2 for an answer validated by its entity tag alone (the search endpoint's, computed, with no
 * Last-Modified, so the date conditions have nothing to compare and are ignored, §13.1.3 and §13.1.4):
 * If-Match failing is 412, else If-None-Match matching is 304 (a GET's or a HEAD's), else the answer.
 */
export function tagPrecondition(
  ifMatch: string | undefined,
  ifNoneMatch: string | undefined,
  etag: string,
): 304 | 412 | undefined {
  if (ifMatch !== undefined && !ifMatchHits(ifMatch, etag)) return 412;
  return ifNoneMatchHits(ifNoneMatch, etag) ? 304 : undefined;
}

/**
 * The security headers of a response for `key`, stored as `contentType`: type, disposition and policy by
 * what the key is, never by what its file name suggests.
 */
export function securityHeaders(key: string, contentType: string): Record<string, string> {
  if (isHostedArtifactKey(key)) {
    const file = key.slice(key.lastIndexOf('/') + 1);
    const named = /^[A-Za-z0-9._-]+$/.test(file) ? `; filename="${file}"` : '';
    return {
      ...COMMON_HEADERS,
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment${named}`,
      'content-security-policy': ARTIFACT_CSP,
    };
  }
  const page = contentType.toLowerCase().startsWith('text/html');
  return {
    ...COMMON_HEADERS,
    'content-type': contentType,
    'content-security-policy': page ? PAGE_CSP : DATA_CSP,
  };
}

/** A route: the store key a request path names, and whether the key depended on the Accept header. */
export interface Route {
  readonly key: string;
  readonly negotiated: boolean;
}

/** A plugin name, as the manifest schema (manifest/schema.ts) allows it. */
const NAME = '[a-z0-9]+(?:-[a-z0-9]+)*';
export const PLUGIN_ROUTE = new RegExp(`^/plugins/(${NAME})/?$`);
export const MANIFEST_ROUTE = new RegExp(`^/plugins/(${NAME})/([^/]+)/manifest$`);

/**
 * Paths answered with a permanent redirect (301, the query kept) to another: `/plugins/` is the home page's
 * `/plugins`, but the page's links are relative to its folder, which `/plugins/` would make `plugins/` (its
 * style, its search rows and every plugin link then missed). The local server and the edge both redirect.
 */
export const REDIRECTS: Readonly<Record<string, string>> = { '/plugins/': '/plugins' };

/**
 * Maps a decoded request path (starting with `/`) to the key it names, the spec's endpoints onto the
 * static files (REDIRECTS aside):
 *   /                                    -> index.html
 *   /plugins                             -> index.json, or index.html when the client prefers HTML
 *   /plugins/{name}                      -> plugins/{name}/index.json, or its index.html likewise
 *   /plugins/{name}/                     -> plugins/{name}/index.html
 *   /plugins/{name}/{version}/manifest   -> the manifest (the version's folder drops build metadata)
 *   /favicon.ico                         -> favicon.svg
 * `/search` names no key: it is the search endpoint (index-builder/search-endpoint.ts), which the local
 * server answers before it routes, and CloudFront sends to the search function by its own cache behavior.
 * Any other path ending in `/` names nothing: only the registry's own page folders have an index page, so
 * no folder of artifacts can answer with one. Every other path is the key of the same name.
 */
export function matchRoute(pathname: string, html: boolean): Route | undefined {
  if (!pathname.startsWith('/')) return undefined;
  if (pathname === '/') return { key: HOME_PAGE_KEY, negotiated: false };
  if (pathname === '/plugins') return { key: html ? HOME_PAGE_KEY : INDEX_JSON_KEY, negotiated: true };
  if (pathname === SEARCH_PATH) return undefined;
  if (pathname === '/favicon.ico') return { key: FAVICON_KEY, negotiated: false };
  const plugin = PLUGIN_ROUTE.exec(pathname);
  if (plugin) {
    const name = plugin[1] as string;
    if (pathname.endsWith('/')) return { key: pluginPageKey(name), negotiated: false };
    return { key: html ? pluginPageKey(name) : pluginDocumentKey(name), negotiated: true };
  }
  const manifest = MANIFEST_ROUTE.exec(pathname);
  if (manifest) return { key: manifestKey(manifest[1] as string, manifest[2] as string), negotiated: false };
  if (pathname.endsWith('/')) return undefined;
  return { key: pathname.slice(1), negotiated: false };
}

/**
 * The content coding to answer an `Accept-Encoding` header with (RFC 9110 §12.5.3), or undefined for the
 * document as it is. Codings and their q-values are read case-insensitively; `*` stands for any coding the
 * header does not name; `q=0` refuses. Of brotli and gzip, the one with the higher q-value wins, brotli on
 * a tie; neither is sent when identity, named or through `*`, is wanted more than both. No header, or an
 * empty one, asks for no coding. When everything is refused (`identity;q=0, *;q=0` and neither coding
 * acceptable), the document is sent as it is, as the RFC lets a server do rather than answer 406.
 */
export function negotiateEncoding(header: string | undefined): ContentEncoding | undefined {
  if (header === undefined) return undefined;
  const weightOf = encodingWeights(header);
  // Identity is always acceptable unless refused, but only a q-value the header gives it (by name or
  // through `*`) competes: `gzip;q=0.5` alone still asks for gzip, as every server reads it.
  const identity = weightOf('identity');
  let best: ContentEncoding | undefined;
  let bestQ = 0;
  for (const coding of CONTENT_ENCODINGS) {
    const weight = weightOf(coding);
    if (weight > bestQ) {
      best = coding;
      bestQ = weight;
    }
  }
  return best !== undefined && bestQ >= identity ? best : undefined;
}

/** The q-value an Accept-Encoding header gives each coding: by name, else through `*`, else 0. */
function encodingWeights(header: string): (coding: string) => number {
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.split(';').map((field) => field.trim().toLowerCase());
    if (name === '') continue;
    let weight = 1;
    for (const param of params) {
      // An unreadable q-value drops the coding, as parseAccept drops a media range.
      if (/^q\s*=/.test(param))
        weight = /^q\s*=\s*[0-9.]+$/.test(param) ? Number(param.slice(param.indexOf('=') + 1)) : Number.NaN;
    }
    if (!Number.isFinite(weight) || weight < 0 || weight > 1) continue;
    const coding = name === 'x-gzip' ? 'gzip' : name;
    // The same coding twice: the more favourable reading is kept.
    q.set(coding, Math.max(weight, q.get(coding) ?? -1));
  }
  const any = q.get('*');
  return (coding) => q.get(coding) ?? any ?? 0;
}

/**
 * Whether a non-empty Accept-Encoding refuses `coding`: gives it no q-value above 0, by name or through `*`
 * (RFC 9110 §12.5.3: `identity`, or `br` alone, refuses gzip). No header, or an empty one (which CloudFront
 * cannot tell from none), refuses nothing: a client that states no preference takes any coding.
 */
export function refusesEncoding(header: string | undefined, coding: ContentEncoding): boolean {
  if (header === undefined || header.trim() === '') return false;
  return !(encodingWeights(header)(coding) > 0);
}

/**
 * The key to serve for `key` to a client whose header is `acceptEncoding`, and its coding: an encoded
 * variant for the documents that have them (`ENCODED_DOCUMENTS`), else the key itself. `negotiated` says
 * the answer depended on the header (`Vary: Accept-Encoding`). What the variant holds decides the response's
 * Content-Encoding: below the compression threshold it is the document's own bytes.
 */
export function encodedRoute(
  key: string,
  acceptEncoding: string | undefined,
): { readonly key: string; readonly negotiated: boolean } {
  // A variant asked for by its own name is served as stored, with its Content-Encoding (S3 sends the
  // metadata the publisher put, and curl or wget without --compressed save the compressed bytes as they
  // are), but not to a client whose Accept-Encoding refuses its coding: RFC 9110 §12.5.3 asks for a
  // representation in no coding then, and the document itself is that (see ARCHITECTURE, Serving).
  const variant = variantOfKey(key);
  if (variant)
    return {
      key: refusesEncoding(acceptEncoding, variant.encoding) ? variant.document : key,
      negotiated: true,
    };
  if (!ENCODED_DOCUMENTS.has(key)) return { key, negotiated: false };
  const encoding = negotiateEncoding(acceptEncoding);
  return { key: encoding ? encodedVariantKey(key, encoding) : key, negotiated: true };
}

/**
 * `encodedRoute`, and a plugin document to its variant too: one has variants only while it is over the
 * compression threshold (pipeline/encoded.ts `putSizedVariants`), so a server that routes to one must look
 * for it and serve the document itself when it is missing (the local server does; the edge cannot look).
 */
export function sizedEncodedRoute(
  key: string,
  acceptEncoding: string | undefined,
): { readonly key: string; readonly negotiated: boolean } {
  if (!isPluginDocumentKey(key)) return encodedRoute(key, acceptEncoding);
  const encoding = negotiateEncoding(acceptEncoding);
  return { key: encoding ? encodedVariantKey(key, encoding) : key, negotiated: true };
}
