/**
 * A stand-in for the Lambda runtime's side of an invocation (a mock: Lambda cannot run here). The SQS event
 * source mapping invokes the function synchronously, and the runtime sends its response back as JSON, which
 * Lambda takes up to 6 MB of (6,291,556 bytes, as its error names the limit: "Response payload size exceeded
 * maximum allowed payload size"). A larger one fails the invocation after the handler returned, everything
 * done: the queue keeps the message and delivers it again after its visibility timeout. The caller gets
 * the response as Lambda hands it on: JSON, parsed again.
 */

/** Lambda's limit on a synchronous invocation's response, in bytes of its JSON. */
export const LAMBDA_MAX_RESPONSE_BYTES = 6_291_556;

/** An invocation Lambda fails, by its error type (`Function.ResponseSizeTooLarge`). */
export class LambdaInvocationError extends Error {
  override readonly name = 'LambdaInvocationError';
  readonly code: 'Function.ResponseSizeTooLarge';

  constructor(code: 'Function.ResponseSizeTooLarge', message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * `handler(event)` as Lambda runs it: its response serialized, refused past Lambda's limit, parsed again.
 * @throws LambdaInvocationError Function.ResponseSizeTooLarge
 */
export async function invokeAsLambda<T>(handler: (event: unknown) => Promise<T>, event: unknown): Promise<T> {
  const text = JSON.stringify(await handler(event)) ?? 'null';
  const bytes = Buffer.byteLength(text);
  if (bytes > LAMBDA_MAX_RESPONSE_BYTES)
    throw new LambdaInvocationError(
      'Function.ResponseSizeTooLarge',
      `Response payload size (${bytes} bytes) exceeded maximum allowed payload size (${LAMBDA_MAX_RESPONSE_BYTES} bytes).`,
    );
  return JSON.parse(text) as T;
}
