/**
 * The lifecycle actions' names, the one list both their documents (actions.ts) and the log's entry types
 * (log.ts) are made of. A module of its own, importing nothing: actions.ts loads openpgp.js (it signs and
 * reads signed actions), and log.ts is read by the client's light paths (the log reader, the trust state on
 * disk), which must not load it (test/architecture.test.ts).
 */

/** What a publisher (an owner of the plugin) or the operator may do. */
export const OWNER_ACTIONS = [
  'yank',
  'unyank',
  'deprecate',
  'undeprecate',
  'advisory-add',
  'advisory-withdraw',
  'owners-add',
  'owners-remove',
] as const;
/** What only the registry's operator key may do. */
export const OPERATOR_ACTIONS = ['remove', 'transfer', 'revoke-key'] as const;
export const ACTION_KINDS = [...OWNER_ACTIONS, ...OPERATOR_ACTIONS] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];
