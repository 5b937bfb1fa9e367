/**
 * The CloudFront Functions, evaluated here from the very source CloudFront runs, against the serving policy
 * the local server applies (index-builder/serving.ts): over the same paths, Accept headers and stored types,
 * both route to the same key and send the same security headers.
 */
import { describe, expect, it } from 'vitest';
import { routeFor } from '../../cli/local/server.ts';
import {
  ARTIFACT_CSP,
  CORS_EXPOSED_HEADERS,
  DATA_CSP,
  encodedRoute,
  optionsHeaders,
  PAGE_CSP,
  securityHeaders,
} from '../../index-builder/serving.ts';
import {
  EDGE_HEADERS_SOURCE,
  EDGE_PREFLIGHT_SOURCE,
  EDGE_ROUTING_SOURCE,
  HSTS_MAX_AGE_SECONDS,
} from '../../infra/edge-routing.ts';

type Headers = Record<string, { value: string }>;
interface EdgeResponse {
  statusCode: number;
  headers: Headers;
}
type RequestHandler = (event: {
  request: { uri: string; headers: Headers };
}) => { uri: string } | EdgeResponse;
type ResponseHandler = (event: {
  request: { uri: string; headers?: Headers };
  response: EdgeResponse;
}) => EdgeResponse;

const requestHandler = new Function(`${EDGE_ROUTING_SOURCE}; return handler;`)() as RequestHandler;
const responseHandler = new Function(`${EDGE_HEADERS_SOURCE}; return handler;`)() as ResponseHandler;
const preflightHandler = new Function(`${EDGE_PREFLIGHT_SOURCE}; return handler;`)() as RequestHandler;

/** The key CloudFront asks S3 for, or undefined when the function answers 404 itself. */
function edgeKey(uri: string, accept?: string): string | undefined {
  const result = requestHandler({ request: { uri, headers: accept ? { accept: { value: accept } } : {} } });
  if ('statusCode' in result) {
    expect(result.statusCode).toBe(404);
    expect(result.headers['content-security-policy']?.value).toBe(DATA_CSP);
    return undefined;
  }
  return result.uri.slice(1);
}

function edgeHeaders(uri: string, contentType: string): Record<string, string> {
  const response = responseHandler({
    request: { uri },
    response: { statusCode: 200, headers: { 'content-type': { value: contentType } } },
  });
  return Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, v.value]));
}

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const ACCEPTS = [
  undefined,
  BROWSER,
  '*/*',
  'application/json',
  'application/json;q=0.5, text/html',
  // Read alike by both: letter case, spaces around `=`, and the most specific range's q-value (RFC 9110).
  'application/json;q=0.5, text/html;q = 0.3',
  'application/json;q=0.5, Text/HTML',
  '*/*;q = 0.3, application/*;q=0',
  'Text/HTML;q=0.5, Text/HTML;q=1',
  'text/html;q=0.4, */*;q=0.9',
];
const PATHS = [
  '/',
  '/plugins',
  '/plugins/kubecost-lens',
  '/plugins/kubecost-lens/',
  '/plugins/kubecost-lens/1.2.0/manifest',
  '/plugins/kubecost-lens/1.2.0+build.7/manifest',
  '/plugins/kubecost-lens/1.2.0/manifest.json',
  '/plugins/kubecost-lens/1.2.0/manifest.json.asc',
  '/plugins/kubecost-lens/1.2.0/',
  '/plugins/kubecost-lens/1.2.0/bin/',
  '/plugins/kubecost-lens/1.2.0/page.html',
  '/plugins/kubecost-lens/1.2.0/bin/image.svg',
  // A first segment in another case: a filesystem that finds names in any case opens the artifact.
  '/Plugins/kubecost-lens/1.2.0/page.html',
  '/PLUGINS/kubecost-lens/1.2.0/manifest.json',
  '/plugins/Bad_Name',
  '/search',
  '/favicon.ico',
  '/index.json',
  '/snapshot.json.asc',
  '/snapshot/bins/0a.json',
  '/keys/registry.asc',
  '/keys/',
];

describe('when CloudFront routes a request', () => {
  it.each(PATHS)('routes %s as the local server does, for every Accept header', (uri) => {
    for (const accept of ACCEPTS)
      expect(edgeKey(uri, accept), `${uri} ${accept}`).toBe(routeFor(uri, accept)?.key);
  });

  it('serves JSON to clients and HTML to browsers', () => {
    expect(edgeKey('/plugins/kubecost-lens')).toBe('plugins/kubecost-lens/index.json');
    expect(edgeKey('/plugins/kubecost-lens', BROWSER)).toBe('plugins/kubecost-lens/index.html');
  });

  it('names no key for /search, which the search function answers through its own cache behavior', () => {
    expect(edgeKey('/search')).toBeUndefined();
    expect(routeFor('/search', undefined)).toBeUndefined();
    expect(edgeKey('/search.json')).toBe('search.json');
  });

  it.each([
    '/plugins%2Fevil%2F1.0.0%2Fpage.html',
    '/plugins/evil/1.0.0%2fpage.html',
    '/plugins/x/%2e%2e/manifest',
    '/plugins/x/../index.json',
    '/plugins/x/./index.json',
    '/keys%5Cregistry.asc',
    '/index.json%00',
    // An escape of a letter: S3's key is the artifact plugins/evil/1.0.0/page.html, the headers function
    // would read a first segment other than plugins and send the page as it was stored.
    '/%70lugins/evil/1.0.0/page.html',
    '/plugins/evil/1.0.0/manifest%2Ejson',
    '/%69ndex.html',
  ])('answers 400 for %s, which S3 would decode into a key these rules read as another path', (uri) => {
    const result = requestHandler({ request: { uri, headers: {} } });
    expect(result).toMatchObject({ statusCode: 400 });
    expect((result as EdgeResponse).headers['content-security-policy']?.value).toBe(DATA_CSP);
  });

  it.each(['/plugins/x/..+a/manifest', '/plugins/x/.+a/manifest', '/plugins/x/+1/manifest'])(
    'answers %s 404 as the local server does, never asking S3 for a folder its rewrite made a dot segment or empty',
    (uri) => {
      // The version folder drops build metadata: `..+a` is the folder `..`, which the check of the path as
      // sent cannot see; S3 would be asked for plugins/x/../manifest.json.
      expect(edgeKey(uri)).toBeUndefined();
      expect(routeFor(uri, undefined)).toBeUndefined();
    },
  );

  it.each([
    ['/keys//registry.asc', '/keys/registry.asc'],
    ['//index.json', '/index.json'],
    ['/plugins//kubecost-lens', '/plugins/kubecost-lens'],
    ['/plugins/kubecost-lens//1.2.0/manifest.json', '/plugins/kubecost-lens/1.2.0/manifest.json'],
    ['/plugins/kubecost-lens/1.2.0//bin/image.svg', '/plugins/kubecost-lens/1.2.0/bin/image.svg'],
    ['/snapshot//bins/0a.json', '/snapshot/bins/0a.json'],
  ])(
    'answers %s, a path with an empty segment, 404 itself as the local server does, where %s names a key',
    (uri, single) => {
      // S3 was asked for a key with an empty segment (keys//registry.asc), which no store writes.
      expect(edgeKey(uri)).toBeUndefined();
      expect(routeFor(uri, undefined)).toBeUndefined();
      expect(edgeKey(single)).toBe(routeFor(single, undefined)?.key);
      expect(edgeKey(single)).toBeDefined();
    },
  );

  it.each([
    ['a dot-file', '/.lock'],
    ['a dot-file of a version', '/plugins/kubecost-lens/1.2.0/.hidden'],
    ['a version folder no key holds', '/plugins/kubecost-lens/a~b/manifest'],
    ['a Windows device name', '/plugins/kubecost-lens/1.2.0/nul.txt'],
    ['a key past 1,024 characters', `/plugins/kubecost-lens/1.2.0/${'a/'.repeat(600)}b`],
  ])('answers a path naming %s, which no store writes, 404 itself as the local server does', (_, uri) => {
    expect(edgeKey(uri)).toBeUndefined();
    expect(routeFor(uri, undefined)).toBeUndefined();
  });

  it('keeps names with dots that are no dot segment', () => {
    // Not refused as a dot segment (400), but a dot-file no store writes: 404, as the local server answers.
    expect(edgeKey('/plugins/a/1.0.0/..hidden')).toBeUndefined();
    expect(routeFor('/plugins/a/1.0.0/..hidden', undefined)).toBeUndefined();
    expect(edgeKey('/plugins/a/1.0.0/a..b')).toBe('plugins/a/1.0.0/a..b');
    expect(edgeKey('/plugins/a/1.0.0/tool.tar.gz')).toBe('plugins/a/1.0.0/tool.tar.gz');
  });

  it.each([
    ['accept', ['*/*;q=0.1', 'text/html']],
    ['accept', ['application/json;q=0.1', 'text/html']],
    ['accept', ['text/html;q=0.5', 'application/json']],
    ['accept-encoding', ['br;q=0', 'gzip']],
    ['accept-encoding', ['identity', 'gzip, br']],
  ])('reads %s sent on two lines %j as the local server does: one list of both', (name, lines) => {
    // CloudFront gives a header sent twice as `multiValue`, its `value` being the first line alone; Node
    // joins the lines with ", " (RFC 9110 §5.3: a list sent on several lines is the same list), and the
    // local server reads that.
    const request = {
      uri: '/plugins',
      headers: { [name]: { value: lines[0], multiValue: lines.map((value) => ({ value })) } },
    };
    const result = requestHandler({ request } as never);
    const joined = lines.join(', ');
    const local = routeFor('/plugins', name === 'accept' ? joined : undefined);
    const expected = local && encodedRoute(local.key, name === 'accept-encoding' ? joined : undefined).key;
    expect('uri' in result ? result.uri : result).toBe(`/${expected}`);
  });

  it('answers no folder of artifacts with an index page', () => {
    expect(edgeKey('/plugins/kubecost-lens/1.2.0/')).toBeUndefined();
    expect(routeFor('/plugins/kubecost-lens/1.2.0/', BROWSER)).toBeUndefined();
  });
});

describe('when CloudFront answers', () => {
  const TYPES = [
    'text/html; charset=utf-8',
    'application/json',
    'image/svg+xml',
    'application/pgp-signature',
  ];

  it.each(PATHS)('sends the headers of the serving policy for %s', (uri) => {
    const key = routeFor(uri, BROWSER)?.key ?? uri.slice(1);
    for (const type of TYPES) {
      // The viewer-response event may carry the path as asked or as rewritten: both give the same headers.
      expect(edgeHeaders(`/${key}`, type), `${key} ${type}`).toMatchObject(securityHeaders(key, type));
      expect(edgeHeaders(uri, type), `${uri} ${type}`).toMatchObject(securityHeaders(key, type));
    }
  });

  it.each(PATHS)(
    'lets any origin read what %s answers unless it is a page, as the local server does',
    (uri) => {
      const key = routeFor(uri, BROWSER)?.key ?? uri.slice(1);
      for (const type of TYPES) {
        // cli/local/server.ts: Access-Control-Allow-Origin on every response whose type, as served, is no page.
        const page = securityHeaders(key, type)['content-type']?.toLowerCase().startsWith('text/html');
        const expected = page ? undefined : '*';
        expect(edgeHeaders(`/${key}`, type)['access-control-allow-origin'], `${key} ${type}`).toBe(expected);
        expect(edgeHeaders(uri, type)['access-control-allow-origin'], `${uri} ${type}`).toBe(expected);
        // And what it may read of the headers beyond the safelisted ones (the ETag), as CORS_READ_HEADERS says.
        const exposed = page ? undefined : CORS_EXPOSED_HEADERS;
        expect(edgeHeaders(`/${key}`, type)['access-control-expose-headers'], `${key} ${type}`).toBe(exposed);
        expect(edgeHeaders(uri, type)['access-control-expose-headers'], `${uri} ${type}`).toBe(exposed);
      }
    },
  );

  it('sends a page no Access-Control-Allow-Origin even where the origin did, and data one without an Origin', () => {
    const answered = (uri: string, type: string) =>
      responseHandler({
        request: { uri },
        response: {
          statusCode: 200,
          headers: { 'content-type': { value: type }, 'access-control-allow-origin': { value: '*' } },
        },
      }).headers['access-control-allow-origin'];
    expect(answered('/index.html', 'text/html; charset=utf-8')).toBeUndefined();
    expect(answered('/plugins/x/', 'text/html; charset=utf-8')).toBeUndefined();
    expect(answered('/search', 'application/json')?.value).toBe('*');
    // The request carries no Origin header here: data is readable all the same (a response headers policy's
    // CORS adds it only to a request with one).
    expect(edgeHeaders('/snapshot.json', 'application/json')['access-control-allow-origin']).toBe('*');
    expect(edgeHeaders('/plugins/x/1.0.0/page.html', 'text/html')['access-control-allow-origin']).toBe('*');
    expect(edgeHeaders('/missing.json', 'application/xml')['access-control-allow-origin']).toBe('*');
  });

  it('serves a hosted artifact as a download whatever it is called or was stored as', () => {
    for (const uri of ['/plugins/x/1.0.0/page.html', '/plugins/x/1.0.0/bin/logo.svg']) {
      const headers = edgeHeaders(uri, 'text/html; charset=utf-8');
      expect(headers['content-type']).toBe('application/octet-stream');
      expect(headers['content-disposition']).toMatch(/^attachment; filename="(page\.html|logo\.svg)"$/);
      expect(headers['content-security-policy']).toBe(ARTIFACT_CSP);
      expect(headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it("gives pages the hashed policy, without 'unsafe-inline', and data default-src 'none'", () => {
    expect(edgeHeaders('/index.html', 'text/html; charset=utf-8')['content-security-policy']).toBe(PAGE_CSP);
    expect(PAGE_CSP).not.toContain('unsafe-inline');
    expect(edgeHeaders('/index.json', 'application/json')['content-security-policy']).toBe(DATA_CSP);
    expect(edgeHeaders('/plugins/x/1.0.0/manifest', 'application/json')['content-type']).toBe(
      'application/json',
    );
  });
});

describe('when CloudFront answers a revalidation with 304', () => {
  /** The headers the function gives a response of `status` that carries no Content-Type. */
  function untyped(uri: string, status: number, accept?: string): Record<string, string> {
    const headers: Headers = accept ? { accept: { value: accept } } : {};
    const response = responseHandler({
      request: { uri, headers },
      response: { statusCode: status, headers: {} },
    });
    return Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, v.value]));
  }

  it.each(['/', '/index.html', '/plugins/x/', '/plugins/x/index.html'])(
    "leaves the policy of the page %s as stored: a 304 carries no Content-Type, and the page's own must stand",
    (uri) => {
      // A browser updates its stored response with the headers of the 304 (RFC 9111 4.3.4): the data policy
      // sent here would replace the page's, and its style and scripts would be blocked from then on.
      expect(untyped(uri, 304)['content-security-policy']).toBeUndefined();
      expect(untyped(uri, 304)['x-content-type-options']).toBe('nosniff');
    },
  );

  it.each([
    '/snapshot.signed.json',
    '/index.json',
    '/plugins/x/index.json',
    '/plugins/x/1.0.0/manifest.json.asc',
    '/keys/rotation/1.json',
    '/search',
  ])('lets another origin read the 304 of the document %s, which can be no page, and its ETag', (uri) => {
    // A page that read a document's ETag sends it back itself (If-None-Match): the 304 is what it gets, and
    // without Access-Control-Allow-Origin the browser fails the fetch (the default behavior, which serves
    // these, has no CORS policy to add one). The local server's 304 carries it (cli/local/server.ts).
    expect(untyped(uri, 304)['access-control-allow-origin']).toBe('*');
    expect(untyped(uri, 304)['access-control-expose-headers']).toBe(CORS_EXPOSED_HEADERS);
    expect(untyped(uri, 304)['content-security-policy']).toBeUndefined();
  });

  it.each(['/', '/index.html', '/plugins', '/plugins/x', '/plugins/x/', '/plugins/x/index.html'])(
    'sends the 304 of %s, a page to a browser, no CORS headers, the stored ones standing',
    (uri) => {
      expect(untyped(uri, 304, BROWSER)['access-control-allow-origin']).toBeUndefined();
      expect(untyped(uri, 304, BROWSER)['access-control-expose-headers']).toBeUndefined();
    },
  );

  it.each(ACCEPTS)(
    'lets another origin read the 304 of /plugins/{name} when Accept %s chose its document, never of its page',
    (accept) => {
      // The one URL that is a page or a JSON document by Accept: a page elsewhere fetching the document (any
      // Accept but a browser's navigation) and sending its ETag back got a 304 without CORS, which its browser
      // refused. Which URI the response event carries, the one asked for or the one the routing function
      // rewrote it to, the function tells the two apart alike; the Accept it reads is the routing function's.
      const headers: Headers = accept ? { accept: { value: accept } } : {};
      const routed = requestHandler({ request: { uri: '/plugins/kubecost-lens', headers } });
      if ('statusCode' in routed) throw new Error('the routing function answered a plugin itself');
      const document = routed.uri.endsWith('/index.json');
      for (const uri of ['/plugins/kubecost-lens', routed.uri]) {
        const response = responseHandler({
          request: { uri, headers },
          response: { statusCode: 304, headers: {} },
        });
        const sent = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, v.value]));
        expect(sent['access-control-allow-origin'], `${uri} ${accept}`).toBe(document ? '*' : undefined);
        expect(sent['access-control-expose-headers'], `${uri} ${accept}`).toBe(
          document ? CORS_EXPOSED_HEADERS : undefined,
        );
        expect(sent['content-security-policy'], `${uri} ${accept}`).toBeUndefined();
      }
    },
  );

  it('still sends a 304 of an artifact as a download, and a response of no type without a 304 as data', () => {
    expect(untyped('/plugins/x/1.0.0/page.html', 304)['content-security-policy']).toBe(ARTIFACT_CSP);
    expect(untyped('/index.html', 200)['content-security-policy']).toBe(DATA_CSP);
    expect(untyped('/index.json', 404)['content-security-policy']).toBe(DATA_CSP);
  });
});

/** The key CloudFront asks S3 for, with an Accept-Encoding header as the function sees it. */
function edgeEncodedKey(
  uri: string,
  acceptEncoding: string | undefined,
  accept?: string,
): string | undefined {
  const headers: Headers = {};
  if (accept) headers.accept = { value: accept };
  if (acceptEncoding !== undefined) headers['accept-encoding'] = { value: acceptEncoding };
  const result = requestHandler({ request: { uri, headers } });
  return 'statusCode' in result ? undefined : result.uri.slice(1);
}

describe('when CloudFront picks an encoded variant', () => {
  // Raw headers as browsers and tools send them, and the values CloudFront normalizes them to.
  const ENCODINGS = [
    undefined,
    '',
    'br,gzip',
    'gzip',
    'br',
    'gzip, deflate, br, zstd',
    'gzip, deflate',
    'identity',
    'br;q=0, gzip',
    'gzip;q=0',
    'gzip;q=0, br;q=0',
    'br;q=0.5, gzip;q=0.8',
    '*',
    '*;q=0',
    'br;q=0, *',
    'identity, br;q=0.9',
    'br;q=abc, gzip;q=0.1',
    'X-GZIP',
  ];
  const ENCODED_PATHS = [
    ...PATHS,
    '/index.yaml',
    '/search.json',
    '/falcoctl/index.yaml',
    '/index.json.br',
    // Variants asked for by their own names, an index document's and a plugin document's.
    '/index.json.gz',
    '/search.json.gz',
    '/falcoctl/index.yaml.br',
    '/plugins/demo/index.json.gz',
    '/plugins/demo/index.json.br',
    '/plugins/demo/index.json.zst',
  ];

  it.each(ENCODED_PATHS)(
    'routes %s to the variant the local server serves, for every Accept-Encoding',
    (uri) => {
      for (const accept of ACCEPTS) {
        for (const encoding of ENCODINGS) {
          const local = routeFor(uri, accept);
          const expected = local ? encodedRoute(local.key, encoding).key : undefined;
          expect(edgeEncodedKey(uri, encoding, accept), `${uri} ${accept} ${encoding}`).toBe(expected);
        }
      }
    },
  );

  it('sends brotli when both are accepted, gzip when brotli is refused, and the document otherwise', () => {
    expect(edgeEncodedKey('/plugins', 'br,gzip')).toBe('index.json.br');
    expect(edgeEncodedKey('/search.json', 'gzip')).toBe('search.json.gz');
    expect(edgeEncodedKey('/falcoctl/index.yaml', 'br;q=0, gzip')).toBe('falcoctl/index.yaml.gz');
    expect(edgeEncodedKey('/index.yaml', 'gzip;q=0')).toBe('index.yaml');
    expect(edgeEncodedKey('/index.json', undefined)).toBe('index.json');
    // A plugin document is small and has no variants: CloudFront compresses it itself if it may.
    expect(edgeEncodedKey('/plugins/kubecost-lens', 'br,gzip')).toBe('plugins/kubecost-lens/index.json');
  });

  it('sends a variant asked for by name as stored, but the document to a client that refuses its coding', () => {
    expect(edgeEncodedKey('/index.json.gz', undefined)).toBe('index.json.gz');
    expect(edgeEncodedKey('/index.json.gz', 'gzip')).toBe('index.json.gz');
    expect(edgeEncodedKey('/index.json.gz', 'identity')).toBe('index.json');
    expect(edgeEncodedKey('/search.json.br', 'gzip, deflate')).toBe('search.json');
    expect(edgeEncodedKey('/plugins/demo/index.json.gz', 'br')).toBe('plugins/demo/index.json');
    expect(edgeEncodedKey('/plugins/demo/index.json.gz', 'gzip')).toBe('plugins/demo/index.json.gz');
  });

  // What the plugindex client asks a plugin document over the threshold as (client/fetcher.ts `variant`): the
  // key of that name, its stored Content-Encoding passed on, typed as data (three segments: no artifact).
  it("passes a plugin document's variant asked for by name to the key of that name, as data", () => {
    for (const accept of ['br', 'br,gzip', undefined])
      expect(edgeEncodedKey('/plugins/x/index.json.br', accept)).toBe('plugins/x/index.json.br');
    const headers = edgeHeaders('/plugins/x/index.json.br', 'application/json');
    expect(headers['content-type']).toBe('application/json');
    expect(headers['content-security-policy']).toBe(DATA_CSP);
    expect(headers['content-disposition']).toBeUndefined();
  });

  it('says Vary: Accept-Encoding for the documents and their variants, and Accept where Accept chose', () => {
    for (const uri of ['/search.json.gz', '/falcoctl/index.yaml', '/index.yaml.br']) {
      expect(edgeHeaders(uri, 'application/json').vary, uri).toBe('Accept-Encoding');
    }
    // A plugin document's variant asked for by name: its compressed bytes, or the document to a client that
    // refuses the coding (the local server says the same Vary for it).
    for (const uri of ['/plugins/x/index.json.gz', '/plugins/kubecost-lens/index.json.br']) {
      expect(edgeHeaders(uri, 'application/gzip').vary, uri).toBe('Accept-Encoding');
    }
    for (const uri of [
      '/plugins/x/index.json.zst',
      '/plugins/x/1.0.0/index.json.gz',
      '/plugins/x/a.json.gz',
    ]) {
      expect(edgeHeaders(uri, 'application/gzip').vary, uri).toBeUndefined();
    }
    // /plugins and /plugins/{name}, whichever URI the response event carries: the viewer's or the rewrite.
    for (const uri of ['/index.json', '/index.json.br', '/index.json.gz']) {
      expect(edgeHeaders(uri, 'application/json').vary, uri).toBe('Accept, Accept-Encoding');
    }
    for (const uri of [
      '/plugins',
      '/plugins/x',
      '/plugins/x/index.json',
      '/plugins/x/index.html',
      '/index.html',
    ]) {
      expect(edgeHeaders(uri, 'application/json').vary, uri).toBe('Accept');
    }
    const kept = responseHandler({
      request: { uri: '/search.json.gz' },
      response: { statusCode: 200, headers: { vary: { value: 'Origin' } } },
    });
    expect(kept.headers.vary?.value).toBe('Origin, Accept-Encoding');
    for (const uri of ['/snapshot.json', '/index.json.asc', '/plugins/x/1.0.0/manifest.json']) {
      expect(edgeHeaders(uri, 'application/json').vary, uri).toBeUndefined();
    }
  });

  it('redirects /plugins/ to /plugins (301, the query kept), as the local server does', () => {
    const result = requestHandler({
      request: {
        uri: '/plugins/',
        headers: {},
        querystring: { q: { value: 'cost' }, page: { value: '2', multiValue: [{ value: '2' }] } },
      },
    } as never);
    expect(result).toMatchObject({
      statusCode: 301,
      headers: { location: { value: '/plugins?q=cost&page=2' } },
    });
    expect(routeFor('/plugins/', BROWSER)).toBeUndefined();
  });
});

describe('when the routing function answers a request itself', () => {
  it('sends HSTS with its 301, 400 and 404, as the response headers policy sends it with every other', () => {
    // CloudFront returns what a viewer-request function makes as it is: the distribution's response headers
    // policy, which sends Strict-Transport-Security, does not apply to it, nor does the viewer-response
    // function.
    const answers = ['/plugins/', '/plugins/%70x', '/search', '/plugins/x/1.0.0/'].map((uri) =>
      requestHandler({ request: { uri, headers: {}, querystring: {} } } as never),
    );
    expect(answers.map((a) => ('statusCode' in a ? a.statusCode : a.uri))).toEqual([301, 400, 404, 404]);
    // And Access-Control-Allow-Origin, as the local server's JSON answers (no response headers policy sends it).
    for (const answer of answers)
      expect((answer as EdgeResponse).headers['access-control-allow-origin']?.value).toBe('*');
    for (const answer of answers)
      expect((answer as EdgeResponse).headers['strict-transport-security']?.value).toBe(
        `max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains; preload`,
      );
    expect(HSTS_MAX_AGE_SECONDS).toBe(63_072_000); // the policy's, as the template says it (stack.test.ts)
  });
});

describe('when a viewer sends OPTIONS', () => {
  const PREFLIGHT = {
    origin: { value: 'https://docs.example.org' },
    'access-control-request-method': { value: 'GET' },
    'access-control-request-headers': { value: 'if-none-match' },
  };
  const plain = (answer: { uri: string } | EdgeResponse) => {
    expect(answer).toMatchObject({ statusCode: 204, statusDescription: 'No Content' });
    expect((answer as EdgeResponse & { body?: unknown }).body).toBeUndefined();
    return Object.fromEntries(Object.entries((answer as EdgeResponse).headers).map(([k, v]) => [k, v.value]));
  };
  const hsts = { 'strict-transport-security': `max-age=${HSTS_MAX_AGE_SECONDS}; includeSubDomains; preload` };

  it("answers it 204 with Allow on every path, and a CORS preflight with the local server's leave, where CloudFront refused it 403", () => {
    // Whatever the path, before it is read, as the local server answers OPTIONS before it reads the target:
    // a page, data, an escape the routing function answers 400 to a GET, and /search on the default behavior.
    for (const uri of [
      '/',
      '/index.json',
      '/plugins/x/1.0.0/page.html',
      '/plugins/%70x',
      '/search',
      '/nothing',
    ])
      for (const [headers, preflight] of [
        [{}, false],
        [PREFLIGHT, true],
        [{ origin: PREFLIGHT.origin }, false],
      ] as const) {
        const answer = requestHandler({
          request: { method: 'OPTIONS', uri, headers, querystring: {} },
        } as never);
        // The very headers the local server sends (test/cli/local/server.test.ts), and HSTS, as every answer of
        // a viewer-request function carries it itself.
        expect(plain(answer), `${uri} ${preflight}`).toEqual({ ...optionsHeaders(preflight), ...hsts });
      }
    expect(optionsHeaders(true)).toMatchObject({
      allow: 'GET, HEAD, OPTIONS',
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, HEAD',
      'access-control-allow-headers': '*',
    });
  });

  it('answers it alike on /search, whose behavior runs the preflight function alone, and passes every GET on', () => {
    for (const [headers, preflight] of [
      [{}, false],
      [PREFLIGHT, true],
    ] as const) {
      const answer = preflightHandler({ request: { method: 'OPTIONS', uri: '/search', headers } } as never);
      expect(plain(answer)).toEqual({ ...optionsHeaders(preflight), ...hsts });
    }
    for (const method of ['GET', 'HEAD']) {
      const request = { method, uri: '/search', headers: PREFLIGHT, querystring: { q: { value: 'x' } } };
      expect(preflightHandler({ request } as never)).toBe(request);
    }
  });
});

describe('when the CloudFront Functions are deployed', () => {
  it("keeps each function's code within the 10 KB CloudFront takes", () => {
    // CloudFront refuses a function whose code passes 10 KB (its quota, not adjustable) when the stack is
    // deployed; the tests run the sources in Node, which takes any size. The constants they embed (the
    // policies, the variants) grow them.
    for (const source of [EDGE_ROUTING_SOURCE, EDGE_HEADERS_SOURCE, EDGE_PREFLIGHT_SOURCE])
      expect(Buffer.byteLength(source)).toBeLessThanOrEqual(10 * 1024);
  });
});
