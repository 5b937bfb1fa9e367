/**
 * What the lifecycle action commands share (`yank`, `unyank`, `deprecate`, `undeprecate`, `advisory`,
 * `owners add|remove`, `operator`): their arguments read and checked as the registry will check the action
 * (index-builder/actions.ts, so a mistake is a usage error naming the argument, exit 2, before any key or
 * file is read), the key that signs it, the registry URL the action names (from the registry's config),
 * then the signed envelope either written (`--output FILE`, to submit later or from another machine with
 * `plugindex submit`) or submitted the way every submission goes (cli/submit.ts).
 */
import {
  ACTION_SCHEMA,
  type ActionBody,
  actionProblems,
  actionSubject,
  newActionProblems,
  signAction,
} from '../index-builder/actions.ts';
import { parseRegistryConfigAt, readConfigJson } from '../index-builder/config.ts';
import { CONFIG_KEY } from '../index-builder/layout.ts';
import { type Parsed, stringOption } from './args.ts';
import { usage } from './errors.ts';
import {
  readPassphrase,
  readSecretKeyFile,
  readTrustedKeyFile,
  refuseOutputOver,
  registryUrlOptionText,
  serviceUrlOption,
  writeOutput,
} from './inputs.ts';
import { outJson } from './output.ts';
import { refuseBucketOptions, reportOutcome, submit, submitTarget } from './submit.ts';
import { err, out } from './terminal.ts';

/** The options every action command takes, whatever its own. */
const COMMON_OPTIONS = [
  'key',
  'passphrase-file',
  'registry',
  'registry-url',
  'bucket',
  'endpoint',
  'timeout',
  'output',
  'json',
  'help',
];

/** How the command line names each field of an action, for usage errors. */
const ARGUMENTS: Readonly<Record<string, string>> = {
  '/plugin': 'NAME',
  '/version': 'VERSION',
  '/range': 'RANGE',
  '/reason': '--reason',
  '/message': '--message',
  '/replacement': '--replacement',
  '/id': '--id',
  '/advisory/id': '--id',
  '/advisory/severity': '--severity',
  '/advisory/affected': '--affected',
  '/advisory/fixed': '--fixed',
  '/advisory/summary': '--summary',
  '/advisory/url': '--url',
  '/key': 'KEYFILE',
  '/fingerprint': 'FINGERPRINT',
};

/** Stands in for a key file's key while the other fields are checked (the file is read after). */
const KEY_PLACEHOLDER =
  '-----BEGIN PGP PUBLIC KEY BLOCK-----\n(KEYFILE)\n-----END PGP PUBLIC KEY BLOCK-----\n';

/** An action as a command line asks for it, not yet signed. */
export interface ActionRequest {
  readonly body: ActionBody;
  /**
   * The public key file whose key the action carries (`owners add`, `operator transfer`), and whose it is
   * ("the new owner's"), for the message refusing a secret key file: read after every usage check. A secret
   * key there is refused (SECRET_KEY_GIVEN, exit 2), as `publishers add` refuses one: `owners add` took its
   * public part in silence, its KEYFILE being usually the signer's own new key, but a secret key given for a
   * public one is an operator's mistake whoever's it is, and the file it is in is then copied on as the key
   * (into scripts, config, to a co-owner); only the public part ever travelled, and still does.
   */
  readonly keyFile?: { readonly file: string; readonly of: string };
}

/** The positionals a (sub)command takes, exactly; a usage error saying the shape otherwise. */
export function positionals(parsed: Parsed, count: number, shape: string): string[] {
  if (parsed.positionals.length !== count) throw usage(`expected ${shape}`);
  return parsed.positionals;
}

/** A usage error for an option the subcommand does not take (`advisory withdraw --severity`). */
export function allowOnly(parsed: Parsed, command: string, own: readonly string[]): void {
  for (const [name, value] of Object.entries(parsed.values))
    if (value !== undefined && !own.includes(name) && !COMMON_OPTIONS.includes(name))
      throw usage(`--${name} is not an option of ${command}`);
}

/** `NAME@VERSION`: the plugin and the exact version (checked with the rest of the action). */
export function nameAtVersion(text: string): { plugin: string; version: string } {
  const at = text.indexOf('@');
  if (at < 0) throw usage(`expected NAME@VERSION, found ${JSON.stringify(text)}`);
  return { plugin: text.slice(0, at), version: text.slice(at + 1) };
}

/** `NAME[@RANGE]`: the plugin, and the versions when a range is given (none: the whole plugin). */
export function nameAtRange(text: string): { plugin: string; range?: string } {
  const at = text.indexOf('@');
  if (at < 0) return { plugin: text };
  const range = text.slice(at + 1);
  // An empty range would read as every version ("*"), which is not what NAME@ says.
  if (range.trim() === '')
    throw usage(`the range after "@" is empty: give NAME for the whole plugin, or NAME@RANGE`);
  return { plugin: text.slice(0, at), range };
}

/** A key fingerprint as gpg prints it (groups, any case) in the form actions carry: uppercase hex (40 digits, or 64 for a v6 key). */
export function fingerprintArg(text: string): string {
  return text.replace(/\s+/g, '').toUpperCase();
}

/** Optional text options as the action's fields: given (even empty, which the check then refuses) or absent. */
export function optionalFields<K extends string>(
  parsed: Parsed,
  names: readonly K[],
): Partial<Record<K, string>> {
  const fields: Partial<Record<K, string>> = {};
  for (const name of names) {
    const value = stringOption(parsed, name);
    if (value !== undefined) fields[name] = value;
  }
  return fields;
}

/** A required text option: a usage error naming it when absent. */
export function requiredText(parsed: Parsed, name: string, what: string): string {
  const value = stringOption(parsed, name);
  if (value === undefined) throw usage(`--${name} ${what} is required`);
  return value;
}

/**
 * The action's fields checked as the registry checks them (actions.ts), each fault named by its argument.
 * @throws CliError USAGE
 */
export function checkActionFields(body: ActionBody): void {
  const draft = {
    schema: ACTION_SCHEMA,
    registry: 'https://registry.example',
    created: new Date().toISOString(),
    nonce: '0'.repeat(32),
    ...body,
  };
  const malformed = actionProblems(draft);
  // What only a new action may not say (an advisory fixed in a version it affects, say), once it reads.
  const problems = malformed.length > 0 ? malformed : newActionProblems(body);
  if (problems.length === 0) return;
  throw usage(
    problems
      .map((p) => {
        // ACTION_MALFORMED's message is what was expected; another's says what is wrong, and then this.
        const expected = p.expected && !p.message.startsWith('expected ') ? `expected ${p.expected}; ` : '';
        const found = p.found ? ` (${expected}found ${p.found})` : '';
        return `${ARGUMENTS[p.path] ?? (p.path || 'the action')}: ${p.message}${found}`;
      })
      .join('; '),
  );
}

/**
 * A registry URL as a config holds it (`parseRegistryUrl`: http(s), no trailing slash, no credentials, query
 * or fragment): the action's is compared with the config's, so no other can name a registry. One with
 * credentials or a `?token=` was taken, signed into the action and sent with it; a refusal echoed the URL
 * whole. The config's check never shows them.
 */
function registryUrlArg(text: string): string {
  return registryUrlOptionText(text, '--registry-url must be an http(s) URL');
}

/**
 * The URL the action names, which the registry compares with its own: `--registry-url`, else the config
 * of the registry it goes to (`DIR/plugindex.json`, or `config/plugindex.json` in the upload bucket, which
 * the publish function reads too). A deployment that keeps no config there (its URL is the function's
 * `REGISTRY_URL`), or denies publishers reading it, needs `--registry-url`.
 */
async function registryUrlOf(parsed: Parsed): Promise<string> {
  const explicit = stringOption(parsed, 'registry-url');
  const dir = stringOption(parsed, 'registry');
  const bucket = stringOption(parsed, 'bucket');
  const given = explicit !== undefined ? registryUrlArg(explicit) : undefined;
  if (dir !== undefined) {
    const { readConfig } = await import('./local/registry.ts');
    const { url } = await readConfig(dir);
    if (given !== undefined && given !== url)
      throw usage(`the registry at ${dir} is ${url}, not ${given} (--registry-url)`);
    return url;
  }
  if (given !== undefined) return given;
  if (bucket !== undefined) {
    const { readBucketText } = await import('./remote.ts');
    const endpoint = serviceUrlOption(parsed, 'endpoint');
    const text = await readBucketText({ bucket, key: CONFIG_KEY, ...(endpoint ? { endpoint } : {}) });
    const where = `s3://${bucket}/${CONFIG_KEY}`;
    if (text === undefined)
      throw usage(
        `cannot read the registry config ${where} (absent, or not readable by this identity): give the registry's URL with --registry-url URL`,
      );
    return parseRegistryConfigAt(readConfigJson(text, `registry config ${where}`), `registry config ${where}`)
      .url;
  }
  throw usage(
    'the action must name its registry: give --registry-url URL, or --registry DIR to read it from its config',
  );
}

/** What an action is about, as messages name it: `yank demo@1.0.0`, `revoke-key FINGERPRINT`. */
function labelOf(body: ActionBody): string {
  const { plugin, version, fingerprint } = actionSubject(body);
  const range = 'range' in body && body.range !== undefined ? `@${body.range}` : '';
  if (plugin) return `${body.action} ${plugin}${version ? `@${version}` : range}`;
  // A revoke-key names no plugin: the key it revokes, as its outcome does (cli/output.ts).
  return fingerprint ? `${body.action} ${fingerprint}` : body.action;
}

/**
 * Checks, signs and writes or submits an action; resolves to the exit code (publish's: 0 accepted or
 * already published, 1 rejected or no outcome; `--output`: 0 once written).
 * @throws CliError USAGE (exit 2) for every mistake on the command line, before any file is read.
 */
export async function runAction(parsed: Parsed, request: ActionRequest): Promise<number> {
  const draft =
    request.keyFile !== undefined ? ({ ...request.body, key: KEY_PLACEHOLDER } as ActionBody) : request.body;
  checkActionFields(draft);
  const keyFile = stringOption(parsed, 'key');
  if (keyFile === undefined || keyFile === '')
    throw usage(
      "--key SECRET_KEY is required: the key that signs the action (an owner's; for operator actions an operator key, never the registry's own)",
    );
  const output = stringOption(parsed, 'output');
  if (output === undefined) submitTarget(parsed);
  else if (stringOption(parsed, 'registry') !== undefined && stringOption(parsed, 'bucket') !== undefined)
    throw usage('give at most one of --registry DIR or --bucket NAME');
  // Written, not submitted: no outcome is waited for, and the bucket's endpoint serves only to read its config.
  else
    refuseBucketOptions(
      parsed,
      stringOption(parsed, 'bucket') === undefined ? ['endpoint', 'timeout'] : ['timeout'],
    );
  if (stringOption(parsed, 'registry-url') !== undefined)
    registryUrlArg(stringOption(parsed, 'registry-url') as string);

  if (output !== undefined)
    await refuseOutputOver(
      'output',
      output,
      [keyFile, stringOption(parsed, 'passphrase-file'), request.keyFile?.file],
      stringOption(parsed, 'registry'),
      'plugindex submit FILE',
    );

  let body = request.body;
  if (request.keyFile !== undefined) {
    // Only the public part travels; a key the registry would refuse
    // (PUBLISHER_KEY_INVALID: weak or costly) is refused here, before anything is signed or sent.
    const key = await readTrustedKeyFile(request.keyFile.file, request.keyFile.of, 'the key');
    body = { ...body, key: key.armored } as ActionBody;
  }
  const secretKey = await readSecretKeyFile(keyFile, '--key');
  const passphrase = (await readPassphrase(parsed)) ?? process.env.PLUGINDEX_KEY_PASSPHRASE;
  const registry = await registryUrlOf(parsed);
  const signed = await signAction(body, {
    registry,
    secretKey,
    ...(passphrase ? { passphrase } : {}),
  });
  const label = labelOf(body);

  if (output !== undefined) {
    await writeOutput(output, signed.bytes);
    if (parsed.values.json)
      outJson({ file: output, digest: signed.digest, signer: signed.fingerprint, action: signed.action });
    else
      out(
        `signed ${label} for ${registry} by ${signed.fingerprint} -> ${output} (action sha256 ${signed.digest}); submit it with plugindex submit`,
      );
    return 0;
  }
  err(`signed ${label} for ${registry} by ${signed.fingerprint} (action sha256 ${signed.digest})`);
  const plugin = actionSubject(body).plugin;
  const outcome = await submit(submitTarget(parsed), {
    name: `${body.action}${plugin ? `-${plugin}` : ''}`,
    contentType: 'application/json',
    body: { bytes: signed.bytes },
  });
  return reportOutcome(parsed, outcome);
}
