/**
 * A fake Secrets Manager endpoint (a mock, named as such: the real service cannot run here) for tests of the
 * bundled functions, which carry their own copy of the SDK and so cannot be stubbed in-process. It speaks
 * just enough of the JSON protocol to answer GetSecretValue and take PutSecretValue (what the README has an
 * operator run with the AWS CLI), over a real socket on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeSecretsManager {
  readonly endpoint: string;
  readonly requests: string[];
  /** Each PutSecretValue taken, in order (none when `refusePuts`). */
  readonly puts: { readonly secretId: string; readonly secretString: string }[];
  close(): Promise<void>;
}

export async function startFakeSecretsManager(
  secrets: Readonly<Record<string, string>>,
  options: { readonly refusePuts?: boolean } = {},
): Promise<FakeSecretsManager> {
  const requests: string[] = [];
  const puts: { secretId: string; secretString: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const secretId = (JSON.parse(body || '{}') as { SecretId?: string }).SecretId ?? '';
      requests.push(`${target} ${secretId}`);
      const value = secrets[secretId];
      const reply = (status: number, payload: object): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify(payload));
      };
      if (target === 'secretsmanager.PutSecretValue') {
        if (options.refusePuts) return reply(400, { __type: 'AccessDeniedException', message: 'refused' });
        const { SecretString = '' } = JSON.parse(body) as { SecretString?: string };
        puts.push({ secretId, secretString: SecretString });
        return reply(200, {
          ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${secretId}`,
          Name: secretId,
          VersionId: `v${puts.length + 1}`,
        });
      }
      if (target !== 'secretsmanager.GetSecretValue')
        reply(400, { __type: 'InvalidRequestException', message: target });
      else if (value === undefined)
        reply(400, { __type: 'ResourceNotFoundException', message: `no secret ${secretId}` });
      else
        reply(200, {
          ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${secretId}`,
          Name: secretId,
          SecretString: value,
          VersionId: 'v1',
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    puts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
