/**
 * The configured entries the publish function has checked (`checkConfiguredKeys`), kept so a cold start
 * reads again only the entries that changed: in the intake bucket (`state/checked-keys.json`, read once per
 * cold start, written only when the list changes) and in memory for the container's life, so a warm
 * invocation checks nothing it checked before. Without it each cold start read every configured key (about
 * 1 ms each: seconds at thousands of publishers) before judging its upload.
 */
import type { S3Store } from '../adapters/s3-store.ts';
import type { RegistryConfig } from '../index-builder/config.ts';
import { CACHE_PRIVATE } from '../index-builder/store.ts';
import {
  type CheckedKeys,
  checkConfiguredKeys,
  checkedKeysChanged,
  checkedKeysText,
  parseCheckedKeys,
} from '../index-builder/trust.ts';
import { errorFields, type Logger } from './logger.ts';

/**
 * The object under the intake bucket's `state/`, as a local registry keeps `DIR/state/checked-keys.json`.
 * It widens no trust: it lists digests (`configuredKeyDigest`: the check's version, the entry's fingerprint
 * and key text), so a list written by anyone else can only skip the checks of entries whose exact digest it
 * holds, and beside each the (sub)key IDs of its key, by which a signature no entry's fingerprint names finds
 * its key without reading every one (a stranger's at each cold start, about 7 s at 5,000 publishers): IDs that
 * lie only make a signature read the wrong key and be refused, as it is verified by the key read. And whoever
 * may write `state/` may write the config object beside it (or the log, the catalog).
 */
export const CHECKED_KEYS_KEY = 'state/checked-keys.json';

/** The checked entries known per intake store (one per bucket for the container's life: `storeFor`). */
const known = new WeakMap<S3Store, Promise<CheckedKeys>>();

/**
 * `checkConfiguredKeys` of `config`, skipping the entries checked before (this container's, else those the
 * bucket's list holds), and keeping the digests when they changed. The list unread (missing, not as written,
 * S3 failing) means every entry is checked; unwritten, a warning, and the next cold start checks again:
 * slower, never less checked, so neither fails the invocation.
 * @throws ConfigError CONFIG_INVALID, as `checkConfiguredKeys`: nothing is kept then
 */
export async function checkConfiguredKeysKept(
  intake: S3Store,
  config: Pick<RegistryConfig, 'publishers' | 'operators'>,
  where: string,
  logger: Logger,
): Promise<void> {
  let kept = known.get(intake);
  if (!kept) {
    kept = intake.get(CHECKED_KEYS_KEY).then(
      (stored) => parseCheckedKeys(stored && new TextDecoder().decode(stored.body)),
      (): CheckedKeys => new Map(),
    );
    known.set(intake, kept);
  }
  const checked = await kept;
  const passed = await checkConfiguredKeys(config, where, { checked });
  if (!checkedKeysChanged(checked, passed)) return;
  known.set(intake, Promise.resolve(passed));
  await intake
    .put(CHECKED_KEYS_KEY, new TextEncoder().encode(checkedKeysText(passed)), {
      contentType: 'application/json',
      cacheControl: CACHE_PRIVATE,
    })
    .catch((error: unknown) =>
      logger.warn('checked keys not kept', { key: CHECKED_KEYS_KEY, ...errorFields(error) }),
    );
}
