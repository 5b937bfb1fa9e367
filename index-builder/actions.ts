/**
 * Lifecycle actions: every change to a plugin after its publish (yank, deprecate, advisories, owners) and
 * the operator's (remove a version, transfer a name, revoke a key) is a small JSON document signed by the
 * key that wants it, submitted through `incoming/` like a bundle, judged by the pipeline and recorded in the
 * log. This module is the document: its shape, its reading (every fault with its JSON pointer), its
 * envelope (the exact text, a detached signature, the signer's public key) and its signing. Pure.
 *
 * An action names the registry it is for (one registry's action is not another's) and when it was made
 * (an old one is refused), and carries a nonce: its sha256 is its identity, and one identity is applied
 * once (a replay is refused, `ACTION_REPLAYED`).
 */
import { randomBytes } from 'node:crypto';
import validVersion from 'semver/functions/valid.js';
import validRange from 'semver/ranges/valid.js';
import { ACTION_KINDS, type ActionKind, OPERATOR_ACTIONS } from './action-kinds.ts';
import { manifestUploadProblem } from './bundle.ts';
import { fixedClock } from './clock.ts';
import { sha256Hex } from './digest.ts';
import { escapePointer, type Problem, problem, SubmissionError } from './errors.ts';
import { KEY_FINGERPRINT, KEY_FINGERPRINT_FORM } from './fingerprint.ts';
import { pluginNameFormProblem, shownUnparsedUrl } from './layout.ts';
import { duplicateKeyPointers } from './manifest/json-scan.ts';
import { type Advisory, SEVERITIES, type Severity } from './model.ts';
import { createSigner } from './signing.ts';
import { stringifyJson, textProblem } from './text.ts';
import { advisoryAffects, isPrerelease } from './versions.ts';

export const ACTION_SCHEMA = 'plugindex/action/v1';
export const SIGNED_ACTION_SCHEMA = 'plugindex/signed-action/v1';
/** The envelope's cap: an action is a few hundred bytes, a public key a few kilobytes. */
export const MAX_ACTION_BYTES = 128 * 1024;
/** An action older than this is refused: a leaked, unused action cannot be played much later. */
export const ACTION_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Clocks differ: an action dated up to this far ahead of the registry's clock is still taken. */
export const ACTION_CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Free text (reasons, messages, summaries): one line or a short paragraph. */
const MAX_TEXT = 1024;

interface ActionBase {
  readonly schema: typeof ACTION_SCHEMA;
  /** The registry's URL (its config `url`): an action for one registry is refused by every other. */
  readonly registry: string;
  /** When it was made (ISO 8601). */
  readonly created: string;
  /** 32 hex digits of randomness: two equal requests are two actions. */
  readonly nonce: string;
}

export type ActionBody =
  | { readonly action: 'yank'; readonly plugin: string; readonly version: string; readonly reason?: string }
  | { readonly action: 'unyank'; readonly plugin: string; readonly version: string }
  | {
      readonly action: 'deprecate';
      readonly plugin: string;
      /** The versions deprecated; absent: the whole plugin, later versions too. */
      readonly range?: string;
      readonly message: string;
      readonly replacement?: string;
    }
  | { readonly action: 'undeprecate'; readonly plugin: string; readonly range?: string }
  | {
      readonly action: 'advisory-add';
      readonly plugin: string;
      readonly advisory: Omit<Advisory, 'published' | 'withdrawn'>;
    }
  | {
      readonly action: 'advisory-withdraw';
      readonly plugin: string;
      readonly id: string;
      readonly reason?: string;
    }
  | { readonly action: 'owners-add'; readonly plugin: string; readonly key: string }
  | { readonly action: 'owners-remove'; readonly plugin: string; readonly fingerprint: string }
  | { readonly action: 'remove'; readonly plugin: string; readonly version: string; readonly reason: string }
  | { readonly action: 'transfer'; readonly plugin: string; readonly key: string; readonly reason?: string }
  | { readonly action: 'revoke-key'; readonly fingerprint: string; readonly reason: string };

export type Action = ActionBase & ActionBody;

/** What an action submission carries: the action's exact text, its signature, and the signer's key. */
export interface SignedAction {
  readonly schema: typeof SIGNED_ACTION_SCHEMA;
  /** The action document as signed (UTF-8 JSON): the signature and the identity are over exactly this. */
  readonly action: string;
  /** Armored detached signature over `action`. */
  readonly signature: string;
  /** The signer's armored public key: the registry checks its fingerprint is an owner's (or an operator's). */
  readonly key: string;
}

/** An action read from its envelope, with its identity. */
export interface ReadAction {
  readonly action: Action;
  /** The bytes signed. */
  readonly text: Uint8Array;
  readonly signature: string;
  readonly key: string;
  /** sha256 (hex) of `text`: the action's identity, in the log and for replay. */
  readonly digest: string;
}

export function isOperatorAction(kind: ActionKind): boolean {
  return (OPERATOR_ACTIONS as readonly string[]).includes(kind);
}

/**
 * What an action is about, for outcomes, the log and messages: its plugin and version, or for a revoke-key
 * (which names no plugin) the fingerprint of the key it revokes.
 */
export function actionSubject(action: ActionBody): {
  readonly plugin?: string;
  readonly version?: string;
  readonly fingerprint?: string;
} {
  if (action.action === 'revoke-key') return { fingerprint: action.fingerprint };
  return {
    plugin: action.plugin,
    ...('version' in action && action.version !== undefined ? { version: action.version } : {}),
  };
}

const NONCE = /^[0-9a-f]{32}$/;
const ADVISORY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const PUBLIC_KEY_BLOCK = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/** The fields each action has, besides the base ones: required, then optional. */
const FIELDS: Record<
  ActionKind,
  { readonly required: readonly string[]; readonly optional: readonly string[] }
> = {
  yank: { required: ['plugin', 'version'], optional: ['reason'] },
  unyank: { required: ['plugin', 'version'], optional: [] },
  deprecate: { required: ['plugin', 'message'], optional: ['range', 'replacement'] },
  undeprecate: { required: ['plugin'], optional: ['range'] },
  'advisory-add': { required: ['plugin', 'advisory'], optional: [] },
  'advisory-withdraw': { required: ['plugin', 'id'], optional: ['reason'] },
  'owners-add': { required: ['plugin', 'key'], optional: [] },
  'owners-remove': { required: ['plugin', 'fingerprint'], optional: [] },
  remove: { required: ['plugin', 'version', 'reason'], optional: [] },
  transfer: { required: ['plugin', 'key'], optional: ['reason'] },
  'revoke-key': { required: ['fingerprint', 'reason'], optional: [] },
};
const BASE_FIELDS = ['schema', 'registry', 'created', 'nonce', 'action'];
const ADVISORY_FIELDS = { required: ['id', 'severity', 'affected', 'summary'], optional: ['fixed', 'url'] };

type Check = (value: unknown, at: string) => string | undefined;

const text: Check = (value) => {
  if (typeof value !== 'string' || value.trim().length === 0) return 'non-empty text';
  if (value.length > MAX_TEXT) return `text of at most ${MAX_TEXT} characters`;
  const bad = textProblem(value);
  return bad ? `text without ${bad.why} (${bad.character})` : undefined;
};
const CHECKS: Record<string, Check> = {
  plugin: (v) =>
    typeof v !== 'string'
      ? 'a plugin name'
      : pluginNameFormProblem(v)
        ? `a plugin name (${pluginNameFormProblem(v)})`
        : undefined,
  replacement: (v) => CHECKS.plugin?.(v, ''),
  version: (v) => (typeof v === 'string' && validVersion(v) === v ? undefined : 'a SemVer version'),
  range: (v) =>
    typeof v === 'string' && v.length <= 256 && validRange(v) !== null ? undefined : 'a SemVer range',
  reason: text,
  message: text,
  id: (v) =>
    typeof v === 'string' && ADVISORY_ID.test(v) ? undefined : 'an advisory id ([A-Za-z0-9._:-], up to 64)',
  fingerprint: (v) => (typeof v === 'string' && KEY_FINGERPRINT.test(v) ? undefined : KEY_FINGERPRINT_FORM),
  key: (v) =>
    typeof v === 'string' && v.length <= 64 * 1024 && v.includes(PUBLIC_KEY_BLOCK)
      ? undefined
      : 'an armored OpenPGP public key (gpg --export --armor)',
};
const ADVISORY_CHECKS: Record<string, Check> = {
  id: CHECKS.id as Check,
  severity: (v) =>
    (SEVERITIES as readonly unknown[]).includes(v) ? undefined : `one of ${SEVERITIES.join(', ')}`,
  affected: CHECKS.range as Check,
  fixed: CHECKS.version as Check,
  summary: text,
  url: (v) => {
    if (typeof v !== 'string' || v.length > 2048) return 'an https URL';
    try {
      const url = new URL(v);
      // User information (`https://github.com@evil.example/`) reads as another host on the page.
      return url.protocol === 'https:' &&
        url.username === '' &&
        url.password === '' &&
        !/^https:\/\/[^/?#]*@/i.test(v)
        ? undefined
        : 'an https URL without user information';
    } catch {
      return 'an https URL';
    }
  },
};

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

function checkFields(
  problems: Problem[],
  object: Record<string, unknown>,
  at: string,
  fields: { readonly required: readonly string[]; readonly optional: readonly string[] },
  checks: Record<string, Check>,
  extra: readonly string[] = [],
): void {
  for (const name of fields.required)
    if (!Object.hasOwn(object, name))
      problems.push(problem('ACTION_MALFORMED', `${at}/${name}`, `the action lacks "${name}"`));
  for (const [name, value] of Object.entries(object)) {
    const pointer = `${at}/${escapePointer(name)}`;
    if (extra.includes(name)) continue;
    if (!fields.required.includes(name) && !fields.optional.includes(name)) {
      problems.push(problem('ACTION_MALFORMED', pointer, `"${name}" is not a field of this action`));
      continue;
    }
    const expected = checks[name]?.(value, pointer);
    // A link refused (an advisory's `url`, `advisory add --url`) shown as every URL in a message is: its
    // password and query values as typed were printed on stderr, in --json and in the submission's outcome.
    const shown = name === 'url' && typeof value === 'string' ? shownUnparsedUrl(value) : value;
    if (expected)
      problems.push(
        problem('ACTION_MALFORMED', pointer, `expected ${expected}`, { expected, found: describe(shown) }),
      );
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every fault of an action document, each with its JSON pointer (an empty list: it is an action). */
export function actionProblems(value: unknown): Problem[] {
  if (!isObject(value)) return [problem('ACTION_MALFORMED', '', 'the action is not a JSON object')];
  const problems: Problem[] = [];
  if (value.schema !== ACTION_SCHEMA)
    problems.push(
      problem('ACTION_MALFORMED', '/schema', 'not an action', {
        expected: JSON.stringify(ACTION_SCHEMA),
        found: describe(value.schema),
      }),
    );
  if (typeof value.registry !== 'string' || value.registry.length === 0 || value.registry.length > 2048)
    problems.push(
      problem('ACTION_MALFORMED', '/registry', 'expected the registry URL', {
        found: describe(value.registry),
      }),
    );
  if (
    typeof value.created !== 'string' ||
    !ISO_TIME.test(value.created) ||
    Number.isNaN(Date.parse(value.created))
  )
    problems.push(
      problem('ACTION_MALFORMED', '/created', 'expected an ISO 8601 time', {
        found: describe(value.created),
      }),
    );
  if (typeof value.nonce !== 'string' || !NONCE.test(value.nonce))
    problems.push(
      problem('ACTION_MALFORMED', '/nonce', 'expected 32 lowercase hex digits', {
        found: describe(value.nonce),
      }),
    );
  const kind = value.action;
  if (!(ACTION_KINDS as readonly unknown[]).includes(kind)) {
    problems.push(
      problem('ACTION_MALFORMED', '/action', 'not an action this registry knows', {
        expected: ACTION_KINDS.join(', '),
        found: describe(kind),
      }),
    );
    return problems;
  }
  checkFields(problems, value, '', FIELDS[kind as ActionKind], CHECKS, BASE_FIELDS);
  if (kind === 'advisory-add') {
    const advisory = value.advisory;
    if (!isObject(advisory))
      problems.push(
        problem(
          'ACTION_MALFORMED',
          '/advisory',
          'expected an object {id, severity, affected, summary, fixed?, url?}',
        ),
      );
    else checkFields(problems, advisory, '/advisory', ADVISORY_FIELDS, ADVISORY_CHECKS);
  }
  return problems;
}

/**
 * What a new action may not say, though it reads as an action: an advisory `fixed` in a version its own
 * `affected` range holds (`ADVISORY_FIXED_AFFECTED`: clients said "fixed in 1.0.0" of a version they then
 * refused to install as vulnerable, telling the user to install a fixed version), a deprecation whose
 * replacement is the plugin itself (`DEPRECATION_REPLACES_ITSELF`: "use demo instead" on demo's page and
 * in each install of it). Apart from `actionProblems`, which reads every envelope, logged ones included: an
 * action a registry took before these were refused is still read by `verify --url`, a rebuild and a retry.
 * The pipeline judges each new action by it; the CLI refuses one before signing (exit 2).
 */
export function newActionProblems(action: ActionBody): Problem[] {
  if (action.action === 'advisory-add') {
    const { affected, fixed } = action.advisory;
    if (fixed !== undefined && advisoryAffects({ affected }, fixed)) {
      // `<2.0.0` holds 2.0.0-rc.1 (versions.ts `advisoryAffects`), which node-semver's default reads
      // otherwise: an operator fixed in a release candidate is told where to end the range.
      const prerelease = isPrerelease(fixed)
        ? ` (a prerelease comes before its release, and clients hold it affected: end the range before it, <${fixed})`
        : '';
      return [
        problem(
          'ADVISORY_FIXED_AFFECTED',
          '/advisory/fixed',
          `${fixed} is in the affected range ${affected}${prerelease}`,
          {
            expected:
              'the first version with the fix, one the affected range leaves out; none while there is none',
            found: fixed,
          },
        ),
      ];
    }
  }
  if (action.action === 'deprecate' && action.replacement === action.plugin)
    return [
      problem('DEPRECATION_REPLACES_ITSELF', '/replacement', `${action.plugin} cannot replace itself`, {
        expected: 'another plugin to use instead, or none',
        found: action.replacement,
      }),
    ];
  return [];
}

/** Refuses JSON with a key repeated within an object: ACTION_MALFORMED at `prefix` + the key's pointer. */
function refuseDuplicateKeys(text: string, prefix: string, fail: (problems: Problem[]) => never): void {
  const repeated = duplicateKeyPointers(text);
  if (repeated.length > 0)
    fail(
      repeated.map((at) =>
        problem('ACTION_MALFORMED', `${prefix}${at}`, `the key at ${at} appears twice`, {
          expected: 'each key once per object (readers disagree on which value a repeated key has)',
        }),
      ),
    );
}

/**
 * Reads an action submission: the envelope, then the action it carries. Nothing is trusted yet: the
 * caller checks the signature, the signer's rights, the registry, the time and replay.
 * @throws SubmissionError INVALID_SUBMISSION with ACTION_TOO_LARGE or ACTION_MALFORMED problems, each with
 *   its pointer (`envelope:/…` for the envelope, `/…` inside the action).
 */
export function readSignedAction(bytes: Uint8Array): ReadAction {
  const fail = (problems: Problem[]): never => {
    throw new SubmissionError('INVALID_SUBMISSION', problems);
  };
  if (bytes.byteLength > MAX_ACTION_BYTES) {
    // A manifest may be twice an action's size: one past it was "the action submission is N bytes".
    const manifest = manifestUploadProblem(bytes);
    if (manifest) fail([manifest]);
    fail([
      problem('ACTION_TOO_LARGE', 'envelope:', `the action submission is ${bytes.byteLength} bytes`, {
        expected: `at most ${MAX_ACTION_BYTES} bytes`,
      }),
    ]);
  }
  let envelope: unknown;
  let envelopeText = '';
  try {
    envelopeText = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    envelope = JSON.parse(envelopeText);
  } catch (error) {
    fail([problem('ACTION_MALFORMED', 'envelope:', `not UTF-8 JSON: ${(error as Error).message}`)]);
  }
  // Not one of an envelope's fields, and a manifest's: said once, with how to pack it, not field by field,
  // nor as a key repeated in an envelope (a manifest's own repeated key is `pack`'s to name).
  if (
    isObject(envelope) &&
    !['schema', 'action', 'signature', 'key'].some((field) => Object.hasOwn(envelope, field))
  ) {
    const manifest = manifestUploadProblem(bytes);
    if (manifest) fail([manifest]);
  }
  refuseDuplicateKeys(envelopeText, 'envelope:', fail);
  if (!isObject(envelope)) return fail([problem('ACTION_MALFORMED', 'envelope:', 'expected a JSON object')]);
  const problems: Problem[] = [];
  if (envelope.schema !== SIGNED_ACTION_SCHEMA)
    problems.push(
      problem('ACTION_MALFORMED', 'envelope:/schema', 'not a signed action', {
        expected: JSON.stringify(SIGNED_ACTION_SCHEMA),
        found: describe(envelope.schema),
      }),
    );
  for (const field of ['action', 'signature', 'key'])
    if (typeof envelope[field] !== 'string')
      problems.push(
        problem(
          'ACTION_MALFORMED',
          `envelope:/${field}`,
          `expected ${field === 'action' ? "the action's text" : field === 'signature' ? 'an armored detached signature' : "the signer's armored public key"}`,
        ),
      );
  for (const field of Object.keys(envelope))
    if (!['schema', 'action', 'signature', 'key'].includes(field))
      problems.push(
        problem(
          'ACTION_MALFORMED',
          `envelope:/${escapePointer(field)}`,
          `"${field}" is not a field of a signed action`,
        ),
      );
  if (problems.length > 0) fail(problems);
  const actionText = envelope.action as string;
  let action: unknown;
  try {
    action = JSON.parse(actionText);
  } catch (error) {
    fail([
      problem('ACTION_MALFORMED', 'envelope:/action', `the action is not JSON: ${(error as Error).message}`),
    ]);
  }
  refuseDuplicateKeys(actionText, '', fail);
  const found = actionProblems(action);
  if (found.length > 0) fail(found);
  const text = new TextEncoder().encode(actionText);
  return {
    action: action as Action,
    text,
    signature: envelope.signature as string,
    key: envelope.key as string,
    digest: sha256Hex(text),
  };
}

/** True when an upload is an action or a rotation (a JSON envelope), not a bundle (gzip). */
export function isJsonSubmission(bytes: Uint8Array): boolean {
  for (const byte of bytes.subarray(0, 64)) {
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
    return byte === 0x7b; // '{'
  }
  return false;
}

/** Why an action cannot be taken now (its registry, its age), or undefined. */
export function actionTimeAndPlaceProblems(action: Action, registryUrl: string, now: Date): Problem[] {
  const problems: Problem[] = [];
  if (action.registry !== registryUrl)
    problems.push(
      problem('ACTION_WRONG_REGISTRY', '/registry', `the action is for ${action.registry}`, {
        expected: registryUrl,
        found: action.registry,
      }),
    );
  const created = Date.parse(action.created);
  if (created > now.getTime() + ACTION_CLOCK_SKEW_MS || created < now.getTime() - ACTION_MAX_AGE_MS)
    problems.push(
      problem('ACTION_EXPIRED', '/created', `the action was made at ${action.created}`, {
        expected: `a time within ${ACTION_MAX_AGE_MS / 86_400_000} days before ${now.toISOString()} (make the action again)`,
        found: action.created,
      }),
    );
  return problems;
}

/**
 * Makes and signs an action: the document (fresh nonce, `created` now), its exact text, the detached
 * signature by `secretKey`, and the signer's public key, as the bytes to submit.
 * @throws KeyError KEY_INVALID / KEY_PASSPHRASE for the key; SubmissionError for a body that is not valid.
 * @example const { bytes, digest } = await signAction({ action: 'yank', plugin: 'x', version: '1.0.0' }, { registry, secretKey });
 */
export async function signAction(
  body: ActionBody,
  options: {
    readonly registry: string;
    readonly secretKey: string;
    readonly passphrase?: string;
    readonly now?: Date;
  },
): Promise<{
  readonly bytes: Uint8Array;
  readonly digest: string;
  readonly action: Action;
  readonly fingerprint: string;
}> {
  const action = {
    schema: ACTION_SCHEMA,
    registry: options.registry,
    created: (options.now ?? new Date()).toISOString(),
    nonce: randomBytes(16).toString('hex'),
    ...body,
  } as Action;
  const problems = actionProblems(action);
  if (problems.length > 0) throw new SubmissionError('INVALID_SUBMISSION', problems);
  const text = new TextEncoder().encode(stringifyJson(action, 2));
  // The signature is dated when the action is: a registry refuses a signature from its future.
  const signer = await createSigner(
    options.secretKey,
    options.passphrase,
    options.now ? fixedClock(options.now) : undefined,
  );
  const signed: SignedAction = {
    schema: SIGNED_ACTION_SCHEMA,
    action: new TextDecoder().decode(text),
    signature: await signer.sign(text),
    key: signer.publicKey,
  };
  return {
    bytes: new TextEncoder().encode(`${stringifyJson(signed, 2)}\n`),
    digest: sha256Hex(text),
    action,
    fingerprint: signer.fingerprint,
  };
}

export type { Severity };
