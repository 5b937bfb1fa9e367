/**
 * The registry operator's actions, signed by an operator key (`--key` its secret key): one the registry
 * lists (`plugindex operators add`, or the deployed trust list), never the registry's own signing key, which
 * the registry refuses as a signer. `operator remove NAME@VERSION --reason TEXT` (legal or security: its
 * files deleted, the version listed as removed), `operator transfer NAME KEYFILE [--reason TEXT]` (the name
 * to another key), `operator revoke FINGERPRINT --reason TEXT` (a publisher key's later submissions refused).
 */

import {
  allowOnly,
  fingerprintArg,
  nameAtVersion,
  optionalFields,
  positionals,
  requiredText,
  runAction,
} from '../action.ts';
import { type Parsed, unknownAction } from '../args.ts';
import { usage } from '../errors.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [sub] = parsed.positionals;
  allowOnly(parsed, `operator ${sub ?? ''}`.trim(), ['reason']);
  if (sub === 'remove') {
    const [, spec] = positionals(parsed, 2, 'operator remove NAME@VERSION');
    return runAction(parsed, {
      body: {
        action: 'remove',
        ...nameAtVersion(spec as string),
        reason: requiredText(parsed, 'reason', 'TEXT (why it is removed: people read it)'),
      },
    });
  }
  if (sub === 'transfer') {
    const [, plugin, keyFile] = positionals(parsed, 3, 'operator transfer NAME KEYFILE');
    return runAction(parsed, {
      body: { action: 'transfer', plugin: plugin as string, key: '', ...optionalFields(parsed, ['reason']) },
      keyFile: { file: keyFile as string, of: "the new owner's" },
    });
  }
  if (sub === 'revoke') {
    const [, fingerprint] = positionals(parsed, 2, 'operator revoke FINGERPRINT');
    return runAction(parsed, {
      body: {
        action: 'revoke-key',
        fingerprint: fingerprintArg(fingerprint as string),
        reason: requiredText(parsed, 'reason', 'TEXT (why the key is revoked)'),
      },
    });
  }
  if (sub === undefined) throw usage('operator takes remove, transfer or revoke');
  throw unknownAction('operator', sub, ['remove', 'transfer', 'revoke']);
}
