/**
 * Lambda entry point of the search function (behind CloudFront's `/search`): wiring only. The S3 client
 * and the search index are made once per container, so a warm function keeps `search.json` in memory.
 */
import { createS3Client, S3Store } from '../adapters/s3-store.ts';
import { SearchIndex } from '../index-builder/search-endpoint.ts';
import { readSearchFunctionConfig } from './env.ts';
import { jsonLogger } from './logger.ts';
import { createSearchHandler } from './search-handler.ts';

const config = readSearchFunctionConfig(process.env);

export const handler = createSearchHandler({
  index: new SearchIndex(
    new S3Store({ client: createS3Client(config.s3Endpoint, 'interactive'), bucket: config.siteBucket }),
  ),
  logger: jsonLogger('plugindex-search'),
});
