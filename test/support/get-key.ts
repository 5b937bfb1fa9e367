/**
 * A process that asks the filesystem store at ROOT for KEY, by `get` and by `head`, and prints whether each
 * found an object: `test/adapters/fs-store.test.ts` runs it where a blocked read would stop the test's own
 * thread (a FIFO with no writer). Usage: get-key.ts ROOT KEY
 */
import { FsStore } from '../../adapters/fs-store.ts';

const [root, key] = process.argv.slice(2) as [string, string];
const store = new FsStore(root);
const got = await store.get(key);
const headed = await store.head(key);
const stream = await store.getStream(key);
stream?.cancel();
process.stdout.write(
  `${JSON.stringify({ get: got !== undefined, head: headed !== undefined, stream: stream !== undefined })}\n`,
);
