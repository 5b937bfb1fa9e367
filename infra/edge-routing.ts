/**
 * The CloudFront Functions that serve the tree exactly as the local server does (cli/local/server.ts), by
 * the one serving policy (index-builder/serving.ts), whose constants they embed:
 *
 * - viewer request (`EDGE_ROUTING_SOURCE`): the spec's endpoints onto the static files, as `matchRoute`:
 *     /                                   -> /index.html
 *     /plugins                            -> /index.json, or /index.html when Accept prefers HTML
 *     /plugins/{name}                     -> /plugins/{name}/index.json, or index.html by Accept
 *     /plugins/{name}/                    -> /plugins/{name}/index.html
 *     /plugins/{name}/{version}/manifest  -> its manifest.json (the folder drops build metadata)
 *     /favicon.ico                        -> /favicon.svg
 *   `/plugins/` is answered 301 to `/plugins` (`REDIRECTS`, the query kept), and any other path ending in
 *   `/` 404 here: no folder of artifacts has an index page; so is a path that names no safe key (an empty
 *   segment, `//`; a dot-file; a character no key holds), as `routeFor` refuses it. These answers carry every header themselves,
 *   HSTS too: CloudFront returns them without further processing, no policy header counted on. Accept is read as the local server reads it,
 *   a header sent on several lines as one list of them all (CloudFront's `value` holds only the first).
 *   `/search` is the search function's (its own cache behavior, which runs no viewer-request function);
 *   should it ever reach this one, it is answered 404, as `matchRoute` names no key for it.
 *   Then an index document (`ENCODED_DOCUMENTS`) goes to its encoded variant, `<key>.br` or `<key>.gz`, by
 *   `Accept-Encoding` as `negotiateEncoding` reads it (each of them always has both variants, so no
 *   rewrite names a missing key). The rewrite happens before the cache lookup, so JSON and HTML, and each
 *   coding, are cached under different keys. The cache policies enable gzip and brotli, so the header this
 *   function reads is the one CloudFront normalized (`br,gzip`, `gzip`...) and keys the cache on; a raw
 *   header with q-values reads the same way. S3 returns the variant's stored Content-Encoding, and
 *   CloudFront compresses nothing that already has one.
 *   OPTIONS is answered first, whatever the path (`OPTIONS_SOURCE`): 204 with Allow, and a CORS preflight's
 *   leave; `EDGE_PREFLIGHT_SOURCE` answers it alike on the `/search` behavior.
 * - viewer response adds `Vary: Accept-Encoding` for those documents and variants (S3 cannot store it), and
 *   `Vary: Accept` where Accept chose between a page and a document.
 * - viewer response (`EDGE_HEADERS_SOURCE`): the security headers of `securityHeaders`: a hosted artifact
 *   is a download (octet-stream, attachment, sandbox) whatever its stored type, a page gets the hashed CSP,
 *   everything else `default-src 'none'`; `Access-Control-Allow-Origin: *` on everything but pages, as the
 *   local server sends it, with `Access-Control-Expose-Headers` (`CORS_READ_HEADERS`, the ETag among them).
 *   It runs on cached responses too, so objects stored before a rule changed are served by the rule of today. A 304 without a Content-Type gets no policy: the
 *   browser keeps the one it stored with the page; its CORS headers all the same where the answer is no page
 *   (at `/plugins` and `/plugins/{name}`, by the Accept the routing function chose by), as a page reading a
 *   document's ETag and sending it back gets the 304 only with them.
 *
 * Written for the cloudfront-js-2.0 runtime; tests run these same sources in Node beside the TypeScript
 * policy, over the same paths and types.
 */
import {
  CONTENT_ENCODINGS,
  ENCODED_DOCUMENTS,
  encodedVariantKey,
  MAX_KEY_LENGTH,
  SAFE_KEY_PATTERN,
} from '../index-builder/layout.ts';
import {
  ARTIFACT_CSP,
  COMMON_HEADERS,
  CORS_PREFLIGHT_HEADERS,
  CORS_READ_HEADERS,
  DATA_CSP,
  optionsHeaders,
  PAGE_CSP,
  REDIRECTS,
} from '../index-builder/serving.ts';

/**
 * HTTPS only, for two years, subdomains included, preload asked: the distribution's response headers policy
 * sends it (infra/constructs/distribution.ts), and the routing function's own answers (301, 400, 404) carry
 * it too: CloudFront returns a response a viewer-request function makes to the viewer without further
 * processing (its developer guide), so neither the policy nor the viewer-response function can be counted on
 * for it (the function already sends the policy's other headers, `COMMON_HEADERS`). Not the local server's:
 * it serves plain HTTP.
 */
export const HSTS_MAX_AGE_SECONDS = 730 * 24 * 60 * 60;
const STRICT_TRANSPORT_SECURITY = `max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains; preload`;

/** `{ '/index.json': { br: '/index.json.br', gzip: '/index.json.gz' }, ... }`: the variants, by URI. */
const VARIANT_URIS = Object.fromEntries(
  [...ENCODED_DOCUMENTS].map((key) => [
    `/${key}`,
    Object.fromEntries(
      CONTENT_ENCODINGS.map((encoding) => [encoding, `/${encodedVariantKey(key, encoding)}`]),
    ),
  ]),
);
/** `{ '/index.json.gz': ['/index.json', 'gzip'], ... }`: each index document's variant, by its own URI. */
const VARIANT_OF = Object.fromEntries(
  Object.entries(VARIANT_URIS).flatMap(([uri, variants]) =>
    Object.entries(variants).map(([encoding, variant]) => [variant, [uri, encoding]]),
  ),
);
/** A plugin document's variant's suffix, by coding: `{ '.br': 'br', '.gz': 'gzip' }`. */
const VARIANT_SUFFIXES = Object.fromEntries(
  CONTENT_ENCODINGS.map((encoding) => [encodedVariantKey('', encoding), encoding]),
);
/**
 * A plugin document's variant by its URI (`/plugins/demo/index.json.gz`, a name as the schema allows one),
 * its suffix captured: both functions read it, the routing one to send the document to a client refusing the
 * coding, the headers one to say Vary for it.
 */
const PLUGIN_VARIANT_URI = `^/plugins/[a-z0-9]+(?:-[a-z0-9]+)*/index\\.json(${Object.keys(VARIANT_SUFFIXES)
  .map((suffix) => suffix.replaceAll('.', '\\.'))
  .join('|')})$`;
/** Every URI whose response depends on Accept-Encoding: the documents and their variants. */
const ENCODING_NEGOTIATED = Object.fromEntries(
  Object.entries(VARIANT_URIS).flatMap(([uri, variants]) => [
    [uri, true],
    ...Object.values(variants).map((variant) => [variant, true]),
  ]),
);

/**
 * OPTIONS, answered at the viewer request as the local server answers it (`optionsHeaders`): 204 with Allow,
 * and to a CORS preflight (Origin and Access-Control-Request-Method sent) leave to GET from any origin. The
 * behaviors allow OPTIONS for it (infra/constructs/distribution.ts); CloudFront refused it 403 before, and a
 * response headers policy only adds headers to what an origin answers, which S3 answers an OPTIONS with
 * 403 without a CORS configuration of the bucket. Answered here, it never reaches an origin or the cache.
 * HSTS too, as every answer a viewer-request function makes carries its headers itself.
 */
const OPTIONS_SOURCE = `
var OPTIONS = ${JSON.stringify({ ...optionsHeaders(false), 'strict-transport-security': STRICT_TRANSPORT_SECURITY })};
var PREFLIGHT = ${JSON.stringify(CORS_PREFLIGHT_HEADERS)};
function options(request) {
  var headers = {};
  var name;
  for (name in OPTIONS) headers[name] = { value: OPTIONS[name] };
  if (request.headers.origin && request.headers['access-control-request-method'])
    for (name in PREFLIGHT) headers[name] = { value: PREFLIGHT[name] };
  return { statusCode: 204, statusDescription: 'No Content', headers: headers };
}
`;

/**
 * The viewer-request function of the `/search` behavior, which runs no routing (`/search` is no key): OPTIONS
 * answered as everywhere else, every other request passed on to the search function as it came.
 */
export const EDGE_PREFLIGHT_SOURCE = `${OPTIONS_SOURCE}
function handler(event) {
  return event.request.method === 'OPTIONS' ? options(event.request) : event.request;
}
`;

/**
 * What both functions read of a header: `listOf`, a header as one list of all its lines (RFC 9110 5.3), as
 * Node gives the local server one sent twice (CloudFront's `value` is the first line alone, and a second one
 * could rank another type or coding first); `quality`, the q-value of the most specific range that matches
 * (RFC 9110 12.5.1), ranges and parameters read case-insensitively, a range with an unreadable q-value
 * dropped (cli/local/server.ts's qualityOf, ported); and `prefersPage`, whether Accept chooses the page over
 * the JSON document at `/plugins` and `/plugins/{name}`, as prefersHtml there: the routing function rewrites
 * those by it, and the headers function reads the same header to tell the 304 of the document (CORS, as its
 * 200 has) from the 304 of the page (none). Said here, not in the sources, whose comments count in the 10 KB.
 */
const ACCEPT_SOURCE = `
function quality(accept, type) {
  var wanted = type.split('/');
  var best = -1;
  var bestQ = 0;
  var parts = accept.split(',');
  for (var i = 0; i < parts.length; i++) {
    var fields = parts[i].split(';');
    var range = fields[0].trim().toLowerCase().split('/');
    if (range.length !== 2 || !range[0] || !range[1]) continue;
    var q = 1;
    for (var j = 1; j < fields.length; j++) {
      var p = fields[j].trim().toLowerCase();
      if (/^q\\s*=/.test(p)) {
        q = Number(p.slice(p.indexOf('=') + 1).trim());
        break;
      }
    }
    if (!(q >= 0 && q <= 1)) continue;
    var specificity = range[0] === wanted[0] && range[1] === wanted[1] ? 2
      : range[0] === wanted[0] && range[1] === '*' ? 1 : range[0] === '*' && range[1] === '*' ? 0 : -1;
    if (specificity > best) {
      best = specificity;
      bestQ = q;
    }
  }
  return bestQ;
}
function listOf(header) {
  if (!header) return '';
  if (!header.multiValue) return header.value;
  var lines = [];
  for (var i = 0; i < header.multiValue.length; i++) lines.push(header.multiValue[i].value);
  return lines.join(', ');
}
function prefersPage(header) {
  var accept = listOf(header);
  return accept !== '' && quality(accept, 'text/html') > quality(accept, 'application/json');
}
`;

export const EDGE_ROUTING_SOURCE = `
var DATA_CSP = ${JSON.stringify(DATA_CSP)};
var COMMON = ${JSON.stringify({ ...COMMON_HEADERS, 'strict-transport-security': STRICT_TRANSPORT_SECURITY })};
var VARIANTS = ${JSON.stringify(VARIANT_URIS)};
var VARIANT_OF = ${JSON.stringify(VARIANT_OF)};
var VARIANT_SUFFIXES = ${JSON.stringify(VARIANT_SUFFIXES)};
var PLUGIN_VARIANT = new RegExp(${JSON.stringify(PLUGIN_VARIANT_URI)});
var CODINGS = ${JSON.stringify(CONTENT_ENCODINGS)};
var REDIRECTS = ${JSON.stringify(REDIRECTS)};
var SAFE_KEY = new RegExp(${JSON.stringify(SAFE_KEY_PATTERN)}, 'i');
var MAX_KEY = ${MAX_KEY_LENGTH};
${OPTIONS_SOURCE}${ACCEPT_SOURCE}
function weights(header) {
  var q = {};
  var parts = header.split(',');
  for (var i = 0; i < parts.length; i++) {
    var fields = parts[i].split(';');
    var name = fields[0].trim().toLowerCase();
    if (name === '') continue;
    var weight = 1;
    for (var j = 1; j < fields.length; j++) {
      var p = fields[j].trim().toLowerCase();
      if (/^q\\s*=/.test(p)) weight = /^q\\s*=\\s*[0-9.]+$/.test(p) ? Number(p.slice(p.indexOf('=') + 1)) : NaN;
    }
    if (!(weight >= 0 && weight <= 1)) continue;
    if (name === 'x-gzip') name = 'gzip';
    q[name] = Math.max(weight, q[name] === undefined ? -1 : q[name]);
  }
  return function (coding) {
    return q[coding] !== undefined ? q[coding] : q['*'] !== undefined ? q['*'] : 0;
  };
}
function encoding(header) {
  var weightOf = weights(header);
  var best = null;
  var bestQ = 0;
  for (var k = 0; k < CODINGS.length; k++) {
    if (weightOf(CODINGS[k]) > bestQ) {
      best = CODINGS[k];
      bestQ = weightOf(CODINGS[k]);
    }
  }
  return best !== null && bestQ >= weightOf('identity') ? best : null;
}
// The query as the viewer sent it, for a redirect that keeps it.
function queryOf(querystring) {
  var pairs = [];
  for (var key in querystring) {
    var entry = querystring[key];
    var values = entry.multiValue ? entry.multiValue : [entry];
    for (var i = 0; i < values.length; i++) pairs.push(values[i].value === '' ? key : key + '=' + values[i].value);
  }
  return pairs.length > 0 ? '?' + pairs.join('&') : '';
}
function answer(status, description, error) {
  var headers = { 'content-type': { value: 'application/json' }, 'cache-control': { value: 'no-store' },
    'content-security-policy': { value: DATA_CSP }, 'access-control-allow-origin': { value: '*' } };
  for (var name in COMMON) headers[name] = { value: COMMON[name] };
  return { statusCode: status, statusDescription: description, headers: headers,
    body: { encoding: 'text', data: '{"error":"' + error + '"}' } };
}
function notFound() {
  return answer(404, 'Not Found', 'not_found');
}
function handler(event) {
  var request = event.request;
  // Any path, before it is read, as the local server answers OPTIONS before it reads the target.
  if (request.method === 'OPTIONS') return options(request);
  var uri = request.uri;
  // CloudFront passes the URI as sent, and S3 decodes it into a key: any escape, a backslash or a dot
  // segment would reach a key these rules (and the headers function's) read as another path. No key holds a
  // character needing an escape, so one only spells a key another way: /%70lugins/x/1.0.0/a.html is S3's
  // artifact plugins/x/1.0.0/a.html, which the headers function, reading %70lugins, would not make a download.
  if (/%|\\\\/.test(uri) || /(^|\\/)\\.\\.?(\\/|$)/.test(uri))
    return answer(400, 'Bad Request', 'bad_request');
  var html = prefersPage(request.headers.accept);
  var name = '[a-z0-9]+(?:-[a-z0-9]+)*';
  var plugin = new RegExp('^/plugins/(' + name + ')(/?)$').exec(uri);
  var manifest = new RegExp('^/plugins/(' + name + ')/([^/]+)/manifest$').exec(uri);
  var moved = REDIRECTS[uri];
  if (moved) {
    var response = answer(301, 'Moved Permanently', 'moved_permanently');
    response.headers.location = { value: moved + queryOf(request.querystring || {}) };
    return response;
  }
  if (uri === '/') request.uri = '/index.html';
  else if (uri === '/plugins') request.uri = html ? '/index.html' : '/index.json';
  else if (uri === '/search') return notFound();
  else if (uri === '/favicon.ico') request.uri = '/favicon.svg';
  else if (plugin) request.uri = '/plugins/' + plugin[1] + (plugin[2] || html ? '/index.html' : '/index.json');
  else if (manifest) {
    // The folder drops build metadata, which may leave a dot segment (\`..+a\`) or nothing (\`+a\`): the
    // check of the path as sent above cannot see those, and they name no version's folder.
    var folder = manifest[2].split('+')[0];
    if (folder === '' || folder === '.' || folder === '..') return notFound();
    request.uri = '/plugins/' + manifest[1] + '/' + folder + '/manifest.json';
  } else if (uri.charAt(uri.length - 1) === '/') return notFound();
  // The key named must be one a store writes (isSafeKey, as the local server's routeFor asks): S3 was asked
  // for keys//registry.asc (an empty segment), a dot-file or any other name the local server answers 404.
  var key = request.uri.slice(1);
  if (key.length > MAX_KEY || !SAFE_KEY.test(key)) return notFound();
  var variants = VARIANTS[request.uri];
  var ae = listOf(request.headers['accept-encoding']);
  // A variant asked for by its own name goes as stored (S3 sends its Content-Encoding), except to a client
  // whose header refuses its coding: it gets the document itself, in no coding (RFC 9110 12.5.3), as
  // encodedRoute (serving.ts) answers it. A plugin document's variant too, which S3 holds while it is large.
  var named = VARIANT_OF[request.uri];
  var pluginVariant = named ? null : PLUGIN_VARIANT.exec(request.uri);
  if (pluginVariant) named = [request.uri.slice(0, -pluginVariant[1].length), VARIANT_SUFFIXES[pluginVariant[1]]];
  if (named) {
    if (ae.trim() !== '' && !(weights(ae)(named[1]) > 0)) request.uri = named[0];
    return request;
  }
  var coding = variants && ae !== '' ? encoding(ae) : null;
  if (coding) request.uri = variants[coding];
  return request;
}
`;

export const EDGE_HEADERS_SOURCE = `
var PAGE_CSP = ${JSON.stringify(PAGE_CSP)};
var DATA_CSP = ${JSON.stringify(DATA_CSP)};
var ARTIFACT_CSP = ${JSON.stringify(ARTIFACT_CSP)};
var COMMON = ${JSON.stringify(COMMON_HEADERS)};
var CORS = ${JSON.stringify(CORS_READ_HEADERS)};
var VERSION_FILES = { 'manifest': true, 'manifest.json': true, 'manifest.json.asc': true };
var ENCODING_NEGOTIATED = ${JSON.stringify(ENCODING_NEGOTIATED)};
var PLUGIN_VARIANT = new RegExp(${JSON.stringify(PLUGIN_VARIANT_URI)});
var HOME_VARIANTS = ${JSON.stringify(Object.fromEntries(Object.values(VARIANT_URIS['/index.json'] ?? {}).map((variant) => [variant, true])))};
${ACCEPT_SOURCE}// The first segment in any letter case, as isHostedArtifactKey (layout.ts) reads it for a filesystem that
// finds a name in any case; S3 does not, so here it only keeps the two policies one.
function isArtifact(uri) {
  var parts = uri.slice(1).split('/');
  if (parts.length < 4 || parts[0].toLowerCase() !== 'plugins') return false;
  return !(parts.length === 4 && VERSION_FILES[parts[3]] === true);
}
// A response /plugins or /plugins/{name} may give, as the viewer asked for it or as the routing function
// rewrote it (which of the two this event carries is not something a test here can settle): it depends on
// Accept. Also a document asked for by its own name, which Vary: Accept costs nothing.
function acceptNegotiated(uri) {
  return /^\\/plugins(\\/[a-z0-9]+(-[a-z0-9]+)*)?$/.test(uri) ||
    /^\\/(plugins\\/[a-z0-9]+(-[a-z0-9]+)*\\/)?index\\.(html|json)$/.test(uri) || HOME_VARIANTS[uri] === true;
}
// An index document or its variant; also a plugin document's variant asked for by its name, which the routing
// function sends as the document to a client refusing its coding: a cache that stored the compressed bytes
// without Vary would give them to that client (the local server says Vary: Accept-Encoding for it too).
function encodingNegotiated(uri) {
  return ENCODING_NEGOTIATED[uri] === true || PLUGIN_VARIANT.test(uri);
}
function addVary(headers, name) {
  var vary = headers.vary ? headers.vary.value : '';
  if (vary.toLowerCase().split(/\\s*,\\s*/).indexOf(name.toLowerCase()) < 0)
    headers.vary = { value: vary ? vary + ', ' + name : name };
}
function cors(headers, readable) {
  for (var name in CORS) {
    if (readable) headers[name] = { value: CORS[name] };
    else delete headers[name];
  }
}
function handler(event) {
  var response = event.response;
  var headers = response.headers;
  var uri = event.request.uri;
  for (var name in COMMON) headers[name] = { value: COMMON[name] };
  if (isArtifact(uri)) {
    var file = uri.slice(uri.lastIndexOf('/') + 1);
    var named = /^[A-Za-z0-9._-]+$/.test(file) ? '; filename="' + file + '"' : '';
    headers['content-type'] = { value: 'application/octet-stream' };
    headers['content-disposition'] = { value: 'attachment' + named };
    headers['content-security-policy'] = { value: ARTIFACT_CSP };
    cors(headers, true);
    return response;
  }
  if (acceptNegotiated(uri)) addVary(headers, 'Accept');
  if (encodingNegotiated(uri)) addVary(headers, 'Accept-Encoding');
  var type = headers['content-type'] ? headers['content-type'].value.toLowerCase() : '';
  // A 304 need carry no Content-Type (RFC 9110 15.4.5), and a browser updates its stored response with the
  // headers a 304 does carry (RFC 9111 4.3.4): a policy chosen here from the missing type (data) replaced a
  // revalidated page's own, whose style and scripts were blocked from then on. The stored one stands.
  // Its CORS headers stand on what the URI tells, though: a page that read a document's ETag and sends it back
  // gets this 304, which a browser refuses to the page without them (the default behavior has no CORS policy
  // to add them). Never to a page's: one is at '/' or '.html', and at '/plugins' or '/plugins/x' if Accept chose
  // it, as the routing function chose by the same header (whether this URI is the one it rewrote or not).
  if (type === '' && response.statusCode === 304) {
    var chosen = /^\\/plugins(\\/[^/]+)?$/i.test(uri) && prefersPage(event.request.headers.accept);
    if (!chosen && !/(\\/|\\.html?)$/i.test(uri)) cors(headers, true);
    return response;
  }
  var page = type.indexOf('text/html') === 0;
  headers['content-security-policy'] = { value: page ? PAGE_CSP : DATA_CSP };
  // Data (documents, signatures, errors, search answers) is public and readable from any origin, whether or
  // not the request said its Origin; a page is no data, and no origin needs to read it (cli/local/server.ts
  // sends the same), nor its headers (CORS_READ_HEADERS: the ETag exposed too). Set here, not by the response
  // headers policy, which cannot tell a page from data.
  cors(headers, !page);
  return response;
}
`;
