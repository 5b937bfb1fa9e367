import { describe, expect, it } from 'vitest';
import { AwsAdapterError } from '../../functions/errors.ts';
import { errorFields, jsonLogger } from '../../functions/logger.ts';
import { StoreError } from '../../index-builder/errors.ts';

describe('when a failure is logged', () => {
  it('gives the name, code, message and stack of the error and of each cause', () => {
    const network = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' });
    const store = new StoreError('STORE_IO', 'index.json', 'cannot write s3://site/index.json', {
      cause: network,
    });

    const { error } = errorFields(store) as { error: Record<string, unknown> };

    expect(error).toEqual({
      name: 'StoreError',
      code: 'STORE_IO',
      message: 'cannot write s3://site/index.json',
      stack: store.stack,
      cause: {
        name: 'Error',
        code: 'ECONNREFUSED',
        message: 'connect ECONNREFUSED 127.0.0.1:443',
        stack: network.stack,
      },
    });
  });

  it('keeps a cause that is not an Error as a value, and one thrown value as text', () => {
    expect(errorFields(new AwsAdapterError('ENV_INVALID', 'bad', { cause: 'a string' }))).toMatchObject({
      error: { name: 'AwsAdapterError', code: 'ENV_INVALID', cause: 'a string' },
    });
    expect(errorFields(new Error('x', { cause: { status: 500 } }))).toMatchObject({
      error: { cause: '[object Object]' },
    });
    expect(errorFields('thrown text')).toEqual({ error: { name: 'string', message: 'thrown text' } });
  });

  it('cuts a cause chain that loops or runs long, and still writes one JSON line', () => {
    const first = new Error('first');
    const second = new Error('second', { cause: first });
    Object.defineProperty(first, 'cause', { value: second });
    let deep: Error = new Error('0');
    for (let i = 1; i <= 20; i++) deep = new Error(String(i), { cause: deep });

    const lines: string[] = [];
    const logger = jsonLogger('test', (line) => lines.push(line));
    logger.error('looped', errorFields(second));
    logger.error('deep', errorFields(deep));

    const looped = JSON.parse(lines[0] as string);
    expect(looped).toMatchObject({
      level: 'ERROR',
      message: 'looped',
      error: { message: 'second', cause: { message: 'first', cause: '(cause chain cut here)' } },
    });
    let depth = 0;
    for (let e = JSON.parse(lines[1] as string).error; typeof e === 'object'; e = e.cause) depth++;
    expect(depth).toBe(8);
  });
});
