/**
 * The search function's logic (the entry point, functions/search.ts, only wires it): a Lambda Function URL
 * request (payload 2.0), which CloudFront's `/search` cache behavior sends with the viewer's query string,
 * answered by the endpoint the local server also answers (index-builder/search-endpoint.ts). The
 * `SearchIndex` lives as long as the container, so a warm function parses `search.json` once per version of
 * it and reads only the small snapshot per request.
 */

import {
  answerSearch,
  SEARCH_PATH,
  type SearchIndex,
  searchResponseHeaders,
} from '../index-builder/search-endpoint.ts';
import {
  ALLOW,
  COMMON_HEADERS,
  CORS_READ_HEADERS,
  DATA_CSP,
  isCorsPreflight,
  optionsHeaders,
  tagPrecondition,
} from '../index-builder/serving.ts';
import { errorFields, type Logger } from './logger.ts';

/** What this function reads of a Function URL event (payload format 2.0). */
export interface FunctionUrlEvent {
  readonly rawPath?: string;
  readonly rawQueryString?: string;
  /** Names lowercased, a field sent on several lines joined by commas (as a Function URL passes them). */
  readonly headers?: Readonly<Record<string, string | undefined>>;
  readonly requestContext?: { readonly http?: { readonly method?: string } };
}

export interface FunctionUrlResult {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

function json(
  status: number,
  body: object,
  head: boolean,
  extra: Record<string, string> = {},
): FunctionUrlResult {
  return {
    statusCode: status,
    headers: {
      ...COMMON_HEADERS,
      ...searchResponseHeaders(status),
      ...CORS_READ_HEADERS,
      'content-security-policy': DATA_CSP,
      ...extra,
    },
    body: head ? '' : `${JSON.stringify(body)}\n`,
  };
}

export function createSearchHandler(deps: {
  readonly index: SearchIndex;
  readonly logger: Logger;
}): (event: FunctionUrlEvent) => Promise<FunctionUrlResult> {
  return async (event) => {
    const method = event.requestContext?.http?.method ?? 'GET';
    const head = method === 'HEAD';
    const headers = event.headers ?? {};
    // CloudFront's preflight function answers OPTIONS before any reaches here (infra/edge-routing.ts); should
    // one come, it is answered as there and as the local server answers it, never 405.
    if (method === 'OPTIONS')
      return {
        statusCode: 204,
        headers: optionsHeaders(isCorsPreflight(headers.origin, headers['access-control-request-method'])),
        body: '',
      };
    if (method !== 'GET' && !head)
      return json(405, { error: 'method_not_allowed' }, false, {
        allow: ALLOW,
        'cache-control': 'no-store',
      });
    if (event.rawPath !== SEARCH_PATH)
      return json(404, { error: 'not_found', path: event.rawPath ?? '' }, head, {
        'cache-control': 'no-store',
      });
    try {
      const answer = await answerSearch(deps.index, event.rawQueryString ?? '');
      if (answer.status !== 200) {
        if (answer.status !== 400) deps.logger.warn('search unavailable', { body: answer.body });
        return json(answer.status, answer.body, head);
      }
      const { etag } = answer.tag;
      // Judged as the local server judges them (tagPrecondition): CloudFront revalidates an answer it holds
      // past its 10 s with If-None-Match, and a 304 spares sending the page (up to 4 MiB) again.
      const precondition = tagPrecondition(headers['if-match'], headers['if-none-match'], etag);
      if (precondition === 412)
        return json(412, { error: 'precondition_failed' }, head, { 'cache-control': 'no-store' });
      if (precondition === 304) return { ...json(200, answer.body, true, { etag }), statusCode: 304 };
      return json(200, answer.body, head, { etag });
    } catch (error) {
      // An HTTP function answers rather than throws: a thrown error is a bare 502 from the Function URL.
      deps.logger.error('search failed', errorFields(error));
      return json(500, { error: 'internal' }, head, { 'cache-control': 'no-store' });
    }
  };
}
