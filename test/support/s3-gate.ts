/**
 * An S3 endpoint for a principal under a policy: an HTTP proxy on 127.0.0.1 in front of the local S3 server
 * (s3-proxy.ts) that first asks the IAM stand-in (support/iam.ts, a mock) whether the request's action on
 * its object is allowed, with the condition keys S3 gives the request (`If-None-Match`, the storage class
 * and the encryption headers), and answers 403 AccessDenied as S3 does when it is not. It also checks
 * `If-None-Match: *` on the writes that make an object (PutObject, CompleteMultipartUpload), answering
 * 412 PreconditionFailed where an object is, and `If-Match` on them, answering 412 where the object is not
 * the one of that ETag (or there is none): S3 does, and s3rver ignores both headers (another mock, named
 * so; S3 checks them as part of the write, this one just before). A read (GET, HEAD) of an object that is not
 * there is answered 403 AccessDenied, not 404, when the policy allows no `s3:ListBucket` on the bucket, as S3
 * answers it (GetObject: "If you don't have the s3:ListBucket permission, Amazon S3 returns ... 403"): the
 * publisher policy grants none, so a publisher waiting for an outcome not yet recorded meets that 403.
 * Any client reaches it, the SDK's or the AWS CLI's, with the local server's credentials; requests are
 * forwarded as they came, so their signatures still hold.
 */
import type http from 'node:http';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { allows, type RequestContext, type Statement } from './iam.ts';
import type { LocalS3 } from './s3.ts';
import { startS3Proxy } from './s3-proxy.ts';

export interface S3Gate {
  readonly endpoint: string;
  /** Every request refused, as `<action> <resource>`, `412 <resource>` or `409 <resource>`. */
  readonly refused: string[];
  /**
   * How many of the next conditional writes of `<bucket>/<key>` to answer 409 ConditionalRequestConflict, as
   * S3 answers one another request on the key raced (set by a test; each answer counts one down).
   */
  readonly races: Map<string, number>;
  close(): Promise<void>;
}

/** The action, resource and condition keys of a path-style S3 request (S3's documented mapping). */
function actionOf(request: http.IncomingMessage): {
  readonly action: string;
  readonly resource: string;
  readonly creates: boolean;
  readonly context: Record<string, string | undefined>;
} {
  const url = new URL(request.url ?? '/', 'http://gate');
  const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
  const key = decodeURIComponent(rest.join('/'));
  const object = `${bucket}/${key}`;
  const query = url.searchParams;
  const method = request.method ?? 'GET';
  const ifNoneMatch = request.headers['if-none-match'];
  // The condition keys S3 gives a write from its headers (those the policies ask about).
  const headerKeys = Object.fromEntries(
    [
      'x-amz-storage-class',
      'x-amz-server-side-encryption-customer-algorithm',
      'x-amz-server-side-encryption-aws-kms-key-id',
    ].flatMap((header) => {
      const value = request.headers[header];
      return typeof value === 'string' ? [[`s3:${header}`, value]] : [];
    }),
  );
  const write = (creates: boolean) => ({
    action: 's3:PutObject',
    resource: object,
    creates,
    context: {
      's3:ObjectCreationOperation': String(creates),
      ...headerKeys,
      ...(creates && typeof ifNoneMatch === 'string' ? { 's3:if-none-match': ifNoneMatch } : {}),
    },
  });
  const plain = (action: string, resource = object) => ({ action, resource, creates: false, context: {} });
  // A listing's `prefix` is its `s3:prefix` condition key (absent when the request names none).
  if (key === '')
    return {
      ...plain('s3:ListBucket', bucket),
      context: query.has('prefix') ? { 's3:prefix': query.get('prefix') ?? '' } : {},
    };
  switch (method) {
    case 'GET':
    case 'HEAD':
      return plain('s3:GetObject');
    case 'PUT':
      // A part of a multipart upload (or a copy into one) creates nothing: only its completion does.
      return write(!(query.has('uploadId') && query.has('partNumber')));
    case 'POST':
      // `?uploads` creates a multipart upload; `?uploadId` completes one.
      return write(query.has('uploadId'));
    case 'DELETE':
      return query.has('uploadId') ? plain('s3:AbortMultipartUpload') : plain('s3:DeleteObject');
    default:
      return plain(`unmapped:${method}`);
  }
}

function answer(response: http.ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/xml' });
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  );
}

/**
 * A gate in front of `s3` for a principal under `statements`; `principal` gives the condition keys every
 * request of the principal carries (CloudFront's `AWS:SourceArn`, its distribution, which a bucket policy
 * asks about).
 */
export async function startS3Gate(
  s3: LocalS3,
  statements: readonly Statement[],
  principal: RequestContext = {},
): Promise<S3Gate> {
  const refused: string[] = [];
  const races = new Map<string, number>();
  /** The ETag of the object at `<bucket>/<key>`, or undefined when there is none. */
  const etagOf = async (resource: string): Promise<string | undefined> => {
    const [Bucket, ...rest] = resource.split('/');
    return s3.client
      .send(new HeadObjectCommand({ Bucket, Key: rest.join('/') }))
      .then((head) => head.ETag ?? '')
      .catch(() => undefined);
  };
  const exists = async (resource: string) => (await etagOf(resource)) !== undefined;
  const proxy = await startS3Proxy(s3, async (request, response) => {
    const { action, resource, creates, context } = actionOf(request);
    if (!allows(statements, action, resource, { ...principal, ...context })) {
      refused.push(`${action} ${resource}`);
      request.resume();
      answer(response, 403, 'AccessDenied', `not authorized to perform ${action} on ${resource}`);
      return true;
    }
    if (
      action === 's3:GetObject' &&
      !allows(statements, 's3:ListBucket', resource.split('/')[0] ?? '', principal) &&
      !(await exists(resource))
    ) {
      refused.push(`403 missing ${resource}`);
      request.resume();
      answer(response, 403, 'AccessDenied', 'Access Denied');
      return true;
    }
    const ifMatch = request.headers['if-match'];
    if (creates && (request.headers['if-none-match'] === '*' || typeof ifMatch === 'string')) {
      const raced = races.get(resource) ?? 0;
      if (raced > 0) {
        races.set(resource, raced - 1);
        refused.push(`409 ${resource}`);
        request.resume();
        answer(
          response,
          409,
          'ConditionalRequestConflict',
          'A conflicting operation occurred. If using PutObject you can retry the request.',
        );
        return true;
      }
      const found = await etagOf(resource);
      if (typeof ifMatch === 'string' ? found !== ifMatch : found !== undefined) {
        refused.push(`412 ${resource}`);
        request.resume();
        answer(
          response,
          412,
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
        return true;
      }
    }
    return false;
  });
  return { ...proxy, refused, races };
}
