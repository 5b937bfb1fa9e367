/**
 * The CloudFront distribution in front of the site bucket: HTTPS only, HTTP/2 and HTTP/3, compression,
 * Origin Access Control (the bucket stays private), one cache policy for immutable paths and one for
 * mutable documents (manifest signatures among them: a key rotation rewrites them), security headers, the endpoint-mapping function, and access logs.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import {
  AccessLevel,
  AllowedMethods,
  CachedMethods,
  CachePolicy,
  CacheQueryStringBehavior,
  Distribution,
  Function as EdgeFunction,
  FunctionCode,
  FunctionEventType,
  FunctionRuntime,
  HeadersFrameOption,
  HeadersReferrerPolicy,
  HttpVersion,
  PriceClass,
  ResponseHeadersPolicy,
  SecurityPolicyProtocol,
  ViewerProtocolPolicy,
} from 'aws-cdk-lib/aws-cloudfront';
import { FunctionUrlOrigin, S3BucketOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import type { IFunctionUrl } from 'aws-cdk-lib/aws-lambda';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { MANIFEST_SIGNATURE_FILE } from '../../index-builder/layout.ts';
import { SEARCH_MAX_AGE_SECONDS, SEARCH_PATH } from '../../index-builder/search-endpoint.ts';
import { CORS_EXPOSED_HEADER_NAMES } from '../../index-builder/serving.ts';
import {
  EDGE_HEADERS_SOURCE,
  EDGE_PREFLIGHT_SOURCE,
  EDGE_ROUTING_SOURCE,
  HSTS_MAX_AGE_SECONDS,
} from '../edge-routing.ts';

export interface RegistryDistributionProps {
  readonly siteBucket: Bucket;
  readonly logBucket: Bucket;
  /** The search function's URL (infra/constructs/search.ts), the origin of `/search`. */
  readonly searchUrl: IFunctionUrl;
  /** Optional custom domain and the ARN of its ACM certificate (in us-east-1). */
  readonly domainName?: string;
  readonly certificateArn?: string;
}

export class RegistryDistribution extends Construct {
  public readonly distribution: Distribution;

  constructor(scope: Construct, id: string, props: RegistryDistributionProps) {
    super(scope, id);
    // Read and list: without s3:ListBucket, S3 answers a key that is not there 403 AccessDenied, which
    // CloudFront passes on, and a client reads a 403 as a failure, not as "not there" (a 404): it follows
    // key rotations by reading keys/rotation/<n>.json until one is not there, and so failed to follow any
    // on AWS; a plugin that does not exist was a 403 too. The site's keys are public, and no viewer request
    // reaches the bucket's listing: the routing function names a key for each, and only `?v=` is forwarded.
    const origin = S3BucketOrigin.withOriginAccessControl(props.siteBucket, {
      originAccessLevels: [AccessLevel.READ, AccessLevel.LIST],
    });
    const routing = new EdgeFunction(this, 'Routing', {
      code: FunctionCode.fromInline(EDGE_ROUTING_SOURCE),
      runtime: FunctionRuntime.JS_2_0,
      comment: 'plugindex: map /plugins endpoints to static files',
    });
    // Content-Type, Content-Disposition and the CSP depend on what a path is (a page, data, a hosted
    // artifact), which a response headers policy cannot tell apart: the viewer-response function sets them,
    // as the local server does (index-builder/serving.ts).
    const securityHeaders = new EdgeFunction(this, 'SecurityHeaders', {
      code: FunctionCode.fromInline(EDGE_HEADERS_SOURCE),
      runtime: FunctionRuntime.JS_2_0,
      comment: 'plugindex: artifacts as downloads, a CSP per kind of response',
    });
    // OPTIONS on `/search`, which runs no routing: answered as the routing function answers it elsewhere.
    const preflight = new EdgeFunction(this, 'Preflight', {
      code: FunctionCode.fromInline(EDGE_PREFLIGHT_SOURCE),
      runtime: FunctionRuntime.JS_2_0,
      comment: 'plugindex: answer OPTIONS and CORS preflights on /search',
    });
    const functionAssociations = [
      { function: routing, eventType: FunctionEventType.VIEWER_REQUEST },
      { function: securityHeaders, eventType: FunctionEventType.VIEWER_RESPONSE },
    ];
    const securityHeadersBehavior = {
      strictTransportSecurity: {
        accessControlMaxAge: Duration.seconds(HSTS_MAX_AGE_SECONDS),
        includeSubdomains: true,
        preload: true,
        override: true,
      },
      contentTypeOptions: { override: true },
      frameOptions: { frameOption: HeadersFrameOption.DENY, override: true },
      referrerPolicy: {
        referrerPolicy: HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
        override: true,
      },
    };
    // Data (documents, signatures, artifacts, search answers, errors) is readable from any origin, pages are
    // not: the local server's rule (cli/local/server.ts). A policy's CORS adds `Access-Control-Allow-Origin`
    // to every response of its behaviors, so the default behavior, which serves the pages beside documents
    // (`/plugins` is either, by Accept), has none: the viewer-response function, which reads the response's
    // type, sends it on everything but pages. That function does not run on an origin's answer of 400 or
    // more, so the behaviors that serve data alone also carry it by policy, their 404s included.
    const headers = new ResponseHeadersPolicy(this, 'Headers', {
      comment: 'plugindex security headers (pages and documents: CORS by the viewer-response function)',
      securityHeadersBehavior,
    });
    const dataHeaders = new ResponseHeadersPolicy(this, 'DataHeaders', {
      comment: 'plugindex security headers and CORS, for behaviors that serve no page',
      securityHeadersBehavior,
      corsBehavior: {
        accessControlAllowOrigins: ['*'],
        accessControlAllowMethods: ['GET', 'HEAD'],
        accessControlAllowHeaders: ['*'],
        accessControlAllowCredentials: false,
        // The headers the viewer-response function exposes (serving.ts), for the answers it does not see.
        accessControlExposeHeaders: [...CORS_EXPOSED_HEADER_NAMES],
        originOverride: true,
      },
    });
    // Mutable documents: the origin's Cache-Control (max-age=60) decides, capped at five minutes. `?v=` is part
    // of the cache key (and nothing else of the query): a client that read the signed snapshot fetches each
    // document as `<path>?v=<its sha256>`, a cache entry per content, so it never gets a document and a
    // signature of two generations from two cache entries (TUF's consistent snapshots, by query). The snapshot
    // is asked for by its name, so for up to max-age after a publish (until its invalidation is through) an
    // edge may answer the one before while a `?v=` it had not cached reaches S3's new bytes: a client whose
    // document does not match reads the snapshot again, and then the document, with a random `v`, which this
    // key and forward make a miss (client/session.ts). Nothing here can check `v` against the object: the
    // routing function runs before the cache and sees no object, so `?v=<a digest not yet published>` asked
    // early keeps the old bytes under it until the invalidation, which clears every query of a path.
    // gzip and brotli enabled: CloudFront normalizes Accept-Encoding, keys the cache on it and shows the
    // routing function that value, which picks an index document's pre-compressed variant by rewriting the
    // URI (edge-routing.ts); the rewritten URI keys the cache too, so each coding is its own entry. What has
    // no variant CloudFront compresses itself, up to the 10,000,000 bytes it compresses at all.
    const mutable = new CachePolicy(this, 'Mutable', {
      comment: 'plugindex mutable documents',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(60),
      maxTtl: Duration.minutes(5),
      queryStringBehavior: CacheQueryStringBehavior.allowList('v'),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // Versioned files never change: cache for a year.
    const immutable = new CachePolicy(this, 'Immutable', {
      comment: 'plugindex immutable versioned files',
      minTtl: Duration.days(1),
      defaultTtl: Duration.days(365),
      maxTtl: Duration.days(365),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    // GET and HEAD, and OPTIONS, which the viewer-request functions answer themselves (204, and a CORS
    // preflight's leave, as the local server answers it: edge-routing.ts): never cached (CloudFront caches
    // GET and HEAD alone here) nor sent to an origin. Refused 403 by CloudFront before, so a browser page on
    // another origin that sent a header no simple request may could read no data, whose GET allows any origin.
    const behavior = {
      origin,
      viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
      cachedMethods: CachedMethods.CACHE_GET_HEAD,
      compress: true,
      responseHeadersPolicy: headers,
      functionAssociations,
    };
    // The search endpoint: its answer depends on the query and nothing else, so every query parameter is
    // in the cache key (a refusal of an unknown one is cached too), for about as long as the function says
    // (10 s), a minute at most. The routing function does not run here: `/search` is no key of the bucket;
    // the preflight function answers OPTIONS as it does. The viewer-response function gives the answer the
    // data CSP as everywhere else. The answer's ETag (the digest of its body) lets CloudFront answer a
    // viewer's If-None-Match from its cache, and revalidate an expired answer with the function (a 304).
    const searchCache = new CachePolicy(this, 'Search', {
      comment: 'plugindex search answers, by query',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(SEARCH_MAX_AGE_SECONDS),
      maxTtl: Duration.minutes(1),
      queryStringBehavior: CacheQueryStringBehavior.all(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    const search = {
      origin: FunctionUrlOrigin.withOriginAccessControl(props.searchUrl),
      viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
      cachedMethods: CachedMethods.CACHE_GET_HEAD,
      compress: true,
      responseHeadersPolicy: dataHeaders,
      functionAssociations: [
        { function: preflight, eventType: FunctionEventType.VIEWER_REQUEST },
        { function: securityHeaders, eventType: FunctionEventType.VIEWER_RESPONSE },
      ],
      cachePolicy: searchCache,
    };
    const custom =
      props.domainName && props.certificateArn
        ? {
            domainNames: [props.domainName],
            certificate: Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
            minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
          }
        : {};
    this.distribution = new Distribution(this, 'Distribution', {
      comment: 'plugindex registry',
      defaultBehavior: { ...behavior, cachePolicy: mutable },
      // plugins/<name>/<version>/<file>: manifests and artifacts (immutable), and manifest signatures.
      // Behaviors are matched in this order. A manifest's signature first, as a mutable document: a key
      // rotation signs every manifest again (index-builder/pipeline/rotate.ts), and under the year-long
      // policy, which ignores `?v=`, an invalidation that failed (only logged, functions/handlers.ts) left
      // the retired key's signatures served for a year: refused by every client holding the new key (an
      // install --frozen from a lock made since, `plugindex verify --url`, anyone checking one by hand).
      // `*` spans `/` too, but no artifact path ends in `.asc` (layout.ts artifactPathProblem).
      // `keys/*` is the default behavior's, but serves data alone: a client follows key rotations to the first
      // `keys/rotation/<n>.json` that is not there, a 404 a browser client can read only with CORS.
      additionalBehaviors: {
        [`plugins/*/*/${MANIFEST_SIGNATURE_FILE}`]: {
          ...behavior,
          cachePolicy: mutable,
          responseHeadersPolicy: dataHeaders,
        },
        'plugins/*/*/*': { ...behavior, cachePolicy: immutable, responseHeadersPolicy: dataHeaders },
        'keys/*': { ...behavior, cachePolicy: mutable, responseHeadersPolicy: dataHeaders },
        [SEARCH_PATH]: search,
      },
      httpVersion: HttpVersion.HTTP2_AND_3,
      priceClass: PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: props.logBucket,
      logFilePrefix: 'cloudfront/',
      ...custom,
    });
    Validations.of(this.distribution).acknowledge({
      id: 'AwsSolutions-CFR1',
      reason: 'A public plugin registry serves every country; there is nothing to geo-restrict.',
    });
    Validations.of(this.distribution).acknowledge({
      id: 'AwsSolutions-CFR2',
      reason:
        'Static, signed, read-only documents behind GET and HEAD only (OPTIONS answered by a CloudFront Function); a WAF would add cost without a threat to filter.',
    });
    if (!props.domainName) {
      Validations.of(this.distribution).acknowledge({
        id: 'AwsSolutions-CFR4',
        reason:
          'Without a custom domain the default CloudFront certificate is used, which fixes the TLS policy; with one, TLSv1.2_2021 is set.',
      });
    }
  }
}
