/**
 * A mock of S3's refusals to read an object, which s3rver cannot give: an HTTP proxy on 127.0.0.1 in front of
 * the local S3 server (s3-proxy.ts) that answers a GET of the objects it is told of with the error S3
 * answers there (status, headers and XML body as S3 sends them), and forwards every other request as it
 * came (so its signature still holds). The SDK's own deserializer reads the answer, as it reads S3's: an
 * archived object gives its modelled `InvalidObjectState`, the rest an `S3ServiceException` named by the
 * `<Code>`. Any client reaches it, the SDK's in a test or a bundled function's (`S3_ENDPOINT`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LocalS3 } from './s3.ts';
import { startS3Proxy } from './s3-proxy.ts';

/** One of S3's error answers to a GET. */
export interface S3ErrorAnswer {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** Elements S3 adds after `<Message>` (e.g. `<StorageClass>` for InvalidObjectState). */
  readonly extra?: Readonly<Record<string, string>>;
}

/** S3's answers, as S3 documents and sends them, to a GET the reader cannot be given. */
export const S3_ANSWERS = {
  /** An object in GLACIER (or DEEP_ARCHIVE, or an archive tier of INTELLIGENT_TIERING), not restored. */
  archived: {
    status: 403,
    code: 'InvalidObjectState',
    message: "The operation is not valid for the object's storage class",
    extra: { StorageClass: 'GLACIER' },
  },
  /** An object encrypted with a key of the uploader's own (SSE-C), read without that key. */
  customerKey: {
    status: 400,
    code: 'InvalidRequest',
    message:
      'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.',
  },
  /** An object encrypted with a KMS key the reader's role may not use. */
  foreignKms: {
    status: 403,
    code: 'AccessDenied',
    message:
      'User: arn:aws:sts::111122223333:assumed-role/plugindex-publish/fn is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab because no resource-based policy allows the kms:Decrypt action',
  },
  /** The reader's role may not read the object (a policy being fixed): no fault of the object. */
  deniedByPolicy: {
    status: 403,
    code: 'AccessDenied',
    message:
      'User: arn:aws:sts::111122223333:assumed-role/plugindex-publish/fn is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::fn-intake/incoming/x.tgz" because no identity-based policy allows the s3:GetObject action',
  },
  throttled: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  internal: {
    status: 500,
    code: 'InternalError',
    message: 'We encountered an internal error. Please try again.',
  },
} as const satisfies Record<string, S3ErrorAnswer>;

export interface S3ObjectErrors {
  readonly endpoint: string;
  /** GETs answered with an error, as `<bucket>/<key> <code>`. */
  readonly answered: string[];
  close(): Promise<void>;
}

function xmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A proxy in front of `s3` answering GETs of `answers`' objects (`<bucket>/<key>`) with their errors; the map
 * is read at each request, so a test that deletes an entry has the object read from then on. Or `answers` is
 * a function of the object, for objects whose key is not known ahead (the CLI names its uploads).
 */
export async function startS3ObjectErrors(
  s3: LocalS3,
  answers: ReadonlyMap<string, S3ErrorAnswer> | ((object: string) => S3ErrorAnswer | undefined),
): Promise<S3ObjectErrors> {
  const answerFor = typeof answers === 'function' ? answers : (object: string) => answers.get(object);
  const answered: string[] = [];
  const proxy = await startS3Proxy(s3, (request, response) => {
    const url = new URL(request.url ?? '/', 'http://mock');
    const object = decodeURIComponent(url.pathname.slice(1));
    const answer = request.method === 'GET' ? answerFor(object) : undefined;
    if (!answer) return false;
    answered.push(`${object} ${answer.code}`);
    answerS3Error(request, response, answer, answered.length);
    return true;
  });
  return { ...proxy, answered };
}

/**
 * Answers `request` with `answer` as S3 sends an error (status, headers, XML body), its body read and
 * dropped; `serial` tells the answers apart in their request ids.
 */
export function answerS3Error(
  request: IncomingMessage,
  response: ServerResponse,
  answer: S3ErrorAnswer,
  serial: number,
): void {
  request.resume();
  const extra = Object.entries(answer.extra ?? {})
    .map(([name, value]) => `<${name}>${xmlText(value)}</${name}>`)
    .join('');
  const requestId = `MOCK${String(serial).padStart(12, '0')}`;
  response.writeHead(answer.status, {
    'content-type': 'application/xml',
    'x-amz-request-id': requestId,
    'x-amz-id-2': 'mock-host-id',
    server: 'AmazonS3',
  });
  response.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${answer.code}</Code><Message>${xmlText(answer.message)}</Message>${extra}<RequestId>${requestId}</RequestId><HostId>mock-host-id</HostId></Error>`,
  );
}
