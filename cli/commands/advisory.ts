/**
 * `plugindex advisory add NAME --id ID --severity LEVEL --affected RANGE [--fixed VERSION] --summary TEXT
 * [--url URL]` and `plugindex advisory withdraw NAME --id ID [--reason TEXT]`: signed actions that publish
 * a security advisory for a plugin, or withdraw one (it stays listed, marked).
 */

import type { Severity } from '../../index-builder/model.ts';
import { allowOnly, optionalFields, positionals, requiredText, runAction } from '../action.ts';
import { type Parsed, unknownAction } from '../args.ts';
import { usage } from '../errors.ts';

export async function run(parsed: Parsed): Promise<number> {
  const [sub] = parsed.positionals;
  if (sub === 'add') {
    allowOnly(parsed, 'advisory add', ['id', 'severity', 'affected', 'fixed', 'summary', 'url']);
    const [, plugin] = positionals(parsed, 2, 'advisory add NAME');
    return runAction(parsed, {
      body: {
        action: 'advisory-add',
        plugin: plugin as string,
        advisory: {
          id: requiredText(parsed, 'id', 'ID'),
          severity: requiredText(parsed, 'severity', 'LEVEL (low, moderate, high or critical)') as Severity,
          affected: requiredText(parsed, 'affected', 'RANGE (the versions affected)'),
          ...optionalFields(parsed, ['fixed']),
          summary: requiredText(parsed, 'summary', 'TEXT'),
          ...optionalFields(parsed, ['url']),
        },
      },
    });
  }
  if (sub === 'withdraw') {
    allowOnly(parsed, 'advisory withdraw', ['id', 'reason']);
    const [, plugin] = positionals(parsed, 2, 'advisory withdraw NAME');
    return runAction(parsed, {
      body: {
        action: 'advisory-withdraw',
        plugin: plugin as string,
        id: requiredText(parsed, 'id', 'ID'),
        ...optionalFields(parsed, ['reason']),
      },
    });
  }
  if (sub === undefined) throw usage('advisory takes add or withdraw');
  throw unknownAction('advisory', sub, ['add', 'withdraw']);
}
