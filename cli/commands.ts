/**
 * The table of `plugindex` commands: what `--help` and `COMMAND --help` print, the options each parses,
 * and a `load()` that imports the command's module only when it runs. Nothing here imports more than
 * types, so help costs no more than this file, and each command pays only for the modules it uses (npm's
 * `cmd-list` and changesets' lazy actions are the model).
 */
import type { Options, Parsed } from './args.ts';

export interface CommandModule {
  /** Runs the command; resolves to the exit code (0 done, 1 rejected or failed; usage errors throw). */
  run(parsed: Parsed): Promise<number>;
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  readonly load: () => Promise<CommandModule>;
  /** The exit code of any failure but a usage error, when the command gives 1 another meaning (diff). */
  readonly failureExit?: number;
  /**
   * The command takes options only: a word given besides them is a usage error (exit 2), never ignored.
   * Ignored, `process --registry DIR incoming/x.tgz` published every upload waiting, not x.tgz, and
   * `serve --registry DIR 9090` served on 8080.
   */
  readonly optionsOnly?: true;
}

const REGISTRY = { registry: { type: 'string' } } as const;
/** Every consumer command: machine output, and never touching the network. */
const CLIENT = { json: { type: 'boolean' }, offline: { type: 'boolean' } } as const;
/** Where plugins are installed and locked. */
const INSTALLS = { dir: { type: 'string' }, lockfile: { type: 'string' } } as const;
/**
 * How a spec is resolved for this host. `--platform` is read as a list so that one given twice is refused
 * (`platformOption`): node:util kept the last value alone, and a command showing one platform showed it.
 */
const RESOLVE = { platform: { type: 'string', multiple: true }, 'api-version': { type: 'string' } } as const;
/** As RESOLVE, for what places files: `--platform` repeated places each. */
const PLACE = { ...RESOLVE, platform: { type: 'string', multiple: true } } as const;
/** A plugin set file (`-c plugins.yaml`). */
const SET = { config: { type: 'string', short: 'c' } } as const;
/** Where a submission goes (cli/submit.ts): a local registry, or a deployed one's upload bucket. */
const SUBMIT = {
  ...REGISTRY,
  bucket: { type: 'string' },
  endpoint: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
} as const;
/** A signed action (cli/action.ts): the key that signs it, and where it goes or is written. */
const ACTION = {
  ...SUBMIT,
  key: { type: 'string' },
  'passphrase-file': { type: 'string' },
  output: { type: 'string' },
  'registry-url': { type: 'string' },
} as const;
/** How an action is signed and sent, as every action command's usage ends. */
const ACTION_USAGE = [
  '  --key SECRET_KEY [--passphrase-file FILE]   (or PLUGINDEX_KEY_PASSPHRASE for an encrypted key)',
  '  (--registry DIR | --bucket UPLOAD_BUCKET [--endpoint URL] [--timeout SECONDS]) [--json]',
  '  or --output FILE [--registry DIR | --bucket UPLOAD_BUCKET [--endpoint URL] | --registry-url URL]: write the signed',
  '     action instead, for plugindex submit (the registry URL it names is read from the config otherwise)',
].join('\n');

export const COMMANDS: Readonly<Record<string, Command>> = {
  init: {
    optionsOnly: true,
    summary: 'create a registry: config, signing key, empty signed published state',
    usage: 'plugindex init --registry DIR [--name NAME] [--url URL] [--description TEXT]',
    options: {
      ...REGISTRY,
      name: { type: 'string' },
      url: { type: 'string' },
      description: { type: 'string' },
    },
    load: () => import('./commands/init.ts'),
  },
  keygen: {
    optionsOnly: true,
    summary: 'create a publisher key pair (DIR/secret.asc, DIR/public.asc; never over a key already there)',
    usage:
      'plugindex keygen --output DIR [--name NAME] [--email EMAIL] [--passphrase-file FILE]\n  --out DIR: the same as --output (never both)',
    options: {
      output: { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
      email: { type: 'string' },
      'passphrase-file': { type: 'string' },
    },
    load: () => import('./commands/keygen.ts'),
  },
  validate: {
    summary: 'check a manifest (JSON or YAML) or a submission bundle without publishing',
    usage: 'plugindex validate FILE [--json]',
    options: { json: { type: 'boolean' } },
    load: () => import('./commands/validate.ts'),
  },
  pack: {
    summary: 'make a submission bundle signed by the publisher',
    usage:
      'plugindex pack MANIFEST [--artifact OS/ARCH=PATH ...] --key SECRET_KEY [--passphrase-file FILE] --output FILE.tgz\n  --out FILE.tgz: the same as --output (never both)',
    options: {
      artifact: { type: 'string', multiple: true },
      key: { type: 'string' },
      output: { type: 'string' },
      out: { type: 'string' },
      'passphrase-file': { type: 'string' },
    },
    load: () => import('./commands/pack.ts'),
  },
  publish: {
    summary: 'submit a bundle: to a local registry (runs the pipeline once), or to a deployed one (--bucket)',
    usage:
      'plugindex publish FILE.tgz --registry DIR [--json]\n       plugindex publish FILE.tgz --bucket UPLOAD_BUCKET [--endpoint URL] [--timeout SECONDS] [--json]',
    options: SUBMIT,
    load: () => import('./commands/publish.ts'),
  },
  process: {
    optionsOnly: true,
    summary: 'process every submission waiting in the registry incoming/ folder as one batch',
    usage: 'plugindex process --registry DIR [--json]',
    options: { ...REGISTRY, json: { type: 'boolean' } },
    load: () => import('./commands/process.ts'),
  },
  serve: {
    optionsOnly: true,
    summary: 'serve a registry over HTTP (and publish bundles dropped into incoming/)',
    usage:
      'plugindex serve --registry DIR [--port N] [--host HOST] [--no-watch] [--max-connections N] [--max-connections-per-address N]',
    options: {
      ...REGISTRY,
      port: { type: 'string' },
      host: { type: 'string' },
      'no-watch': { type: 'boolean' },
      'max-connections': { type: 'string' },
      'max-connections-per-address': { type: 'string' },
    },
    load: () => import('./commands/serve.ts'),
  },
  publishers: {
    summary:
      'list trusted publishers, add one (which makes the registry restricted), or remove one (stop trusting it)',
    usage: [
      'plugindex publishers add --registry DIR KEYFILE --names GLOB[,GLOB...] [--label TEXT] [--json]',
      '       plugindex publishers remove --registry DIR FINGERPRINT|LABEL [--json]   (what it published stays: operator revoke marks it)',
      '       plugindex publishers list --registry DIR [--json]',
      '  --json: {"policy","ownership","publishers":[{"fingerprint","names","label"}]} as it is after the action,',
      '     add and remove with the entry they changed ("added", "removed")',
    ].join('\n'),
    options: {
      ...REGISTRY,
      names: { type: 'string', multiple: true },
      label: { type: 'string' },
      json: { type: 'boolean' },
    },
    load: () => import('./commands/publishers.ts'),
  },
  yank: {
    summary: 'take a version out of resolution (a signed action; installs from a lock still find it)',
    usage: `plugindex yank NAME@VERSION [--reason TEXT]\n${ACTION_USAGE}`,
    options: { ...ACTION, reason: { type: 'string' } },
    load: () => import('./commands/yank.ts'),
  },
  unyank: {
    summary: 'put a yanked version back (a signed action)',
    usage: `plugindex unyank NAME@VERSION\n${ACTION_USAGE}`,
    options: ACTION,
    load: () => import('./commands/unyank.ts'),
  },
  deprecate: {
    summary: 'deprecate a plugin, or the versions in RANGE, with a message (a signed action)',
    usage: `plugindex deprecate NAME[@RANGE] --message TEXT [--replacement NAME]\n${ACTION_USAGE}`,
    options: { ...ACTION, message: { type: 'string' }, replacement: { type: 'string' } },
    load: () => import('./commands/deprecate.ts'),
  },
  undeprecate: {
    summary: 'lift a deprecation of a plugin, or of the versions in RANGE (a signed action)',
    usage: `plugindex undeprecate NAME[@RANGE]\n${ACTION_USAGE}`,
    options: ACTION,
    load: () => import('./commands/undeprecate.ts'),
  },
  advisory: {
    summary: 'publish a security advisory for a plugin, or withdraw one (signed actions)',
    usage: [
      'plugindex advisory add NAME --id ID --severity LEVEL --affected RANGE [--fixed VERSION] --summary TEXT [--url URL]',
      '       plugindex advisory withdraw NAME --id ID [--reason TEXT]',
      '  LEVEL: low | moderate | high | critical; RANGE: a SemVer range (">=1.0.0 <1.2.3"); URL: https',
      ACTION_USAGE,
    ].join('\n'),
    options: {
      ...ACTION,
      id: { type: 'string' },
      severity: { type: 'string' },
      affected: { type: 'string' },
      fixed: { type: 'string' },
      summary: { type: 'string' },
      url: { type: 'string' },
      reason: { type: 'string' },
    },
    load: () => import('./commands/advisory.ts'),
  },
  owners: {
    summary: "a plugin's owners: add or remove a key (signed actions by an owner), or list them",
    usage: [
      'plugindex owners add NAME KEYFILE        (a publisher rotating its key: the new public key, signed by the old)',
      '       plugindex owners remove NAME FINGERPRINT   (never the last owner)',
      '       plugindex owners list NAME (--registry DIR | --url URL) [--json]   (--url: a registry added with registry add)',
      ACTION_USAGE,
    ].join('\n'),
    options: { ...ACTION, url: { type: 'string' } },
    load: () => import('./commands/owners.ts'),
  },
  operator: {
    summary:
      "the operator's actions, signed by an operator key: remove a version, transfer a name, revoke a key",
    usage: [
      'plugindex operator remove NAME@VERSION --reason TEXT   (its files deleted; never publishable again)',
      "       plugindex operator transfer NAME KEYFILE [--reason TEXT]   (the new owner's public key)",
      '       plugindex operator revoke FINGERPRINT --reason TEXT   (its later submissions refused; what it published stays, marked)',
      "  --key: an operator's secret key (one `plugindex operators add` listed; never the registry's own key)",
      ACTION_USAGE,
    ].join('\n'),
    options: { ...ACTION, reason: { type: 'string' } },
    load: () => import('./commands/operator.ts'),
  },
  submit: {
    summary: 'submit a signed action written with --output (made on another machine, say)',
    usage:
      'plugindex submit FILE --registry DIR [--json]\n       plugindex submit FILE --bucket UPLOAD_BUCKET [--endpoint URL] [--timeout SECONDS] [--json]',
    options: SUBMIT,
    load: () => import('./commands/submit.ts'),
  },
  operators: {
    summary:
      "list the operator's keys, add one (it may sign every action: remove, transfer, revoke-key too), or remove one",
    usage: [
      'plugindex operators add --registry DIR KEYFILE [--label TEXT] [--json]',
      '       plugindex operators remove --registry DIR FINGERPRINT|LABEL [--json]   (the actions it signed stay applied)',
      '       plugindex operators list --registry DIR [--json]',
      '  --json: {"operators":[{"fingerprint","label"}]} as it is after the action, add and remove with the',
      '     entry they changed ("added", "removed")',
    ].join('\n'),
    options: { ...REGISTRY, label: { type: 'string' }, json: { type: 'boolean' } },
    load: () => import('./commands/operators.ts'),
  },
  rebuild: {
    optionsOnly: true,
    summary:
      're-render and re-sign every document (recovery; a new key: rotate-key): locally, or on AWS through the queue',
    usage:
      'plugindex rebuild --registry DIR\n       plugindex rebuild --queue-url URL   (the deployed submission queue; runs in order with publishes)',
    options: { ...REGISTRY, 'queue-url': { type: 'string' } },
    load: () => import('./commands/rebuild.ts'),
  },
  'rotate-key': {
    optionsOnly: true,
    summary:
      'move the registry to a new signing key: a rotation signed by both keys, then everything signed again',
    usage:
      "plugindex rotate-key --registry DIR --new-key SECRET_KEY [--compromised] [--output FILE] [--json]\n       plugindex rotate-key --bucket UPLOAD_BUCKET --queue-url URL --old-key SECRET_KEY --new-key SECRET_KEY\n         [--compromised] [--new-passphrase-file FILE] [--url REGISTRY_URL] [--endpoint URL] [--timeout SECONDS] [--json]\n         (the new key, and its passphrase, already in the signing secret)\n  Encrypted keys: PLUGINDEX_KEY_PASSPHRASE; --new-passphrase-file: the new key's own. --output: only write the signed rotation.\n  --compromised: the old key is no longer secret; clients that follow the rotation stop trusting it for anything.",
    options: {
      ...REGISTRY,
      'new-key': { type: 'string' },
      'old-key': { type: 'string' },
      'new-passphrase-file': { type: 'string' },
      compromised: { type: 'boolean' },
      output: { type: 'string' },
      bucket: { type: 'string' },
      'queue-url': { type: 'string' },
      url: { type: 'string' },
      endpoint: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    load: () => import('./commands/rotate-key.ts'),
  },
  refresh: {
    optionsOnly: true,
    summary: 're-sign snapshot.json with a fresh expiry (run it on a schedule)',
    usage: 'plugindex refresh --registry DIR',
    options: REGISTRY,
    load: () => import('./commands/refresh.ts'),
  },
  verify: {
    summary:
      'without --url: rehash every installed plugin against its record and the lock, recheck its signatures; with --url: check a served registry whole',
    usage:
      'plugindex verify [--dir DIR] [--lockfile FILE] [--json]\n       plugindex verify -c FILE [--json]   what a plugin set installed, by the keys it pins\n       plugindex verify --url URL [--mirror MIRROR_URL] [--key REGISTRY_KEY.asc] [--state FILE] [--json]\n         (--mirror: read the registry at URL from that mirror)',
    options: {
      ...INSTALLS,
      ...SET,
      json: { type: 'boolean' },
      url: { type: 'string' },
      mirror: { type: 'string' },
      key: { type: 'string' },
      state: { type: 'string' },
    },
    load: () => import('./commands/verify.ts'),
  },
  registry: {
    summary:
      'the registries this client installs from: add (pinning its key), list, remove, update, reset-trust',
    usage: [
      'plugindex registry add NAME URL (--key FILE | --fingerprint FP | --trust-on-first-use) [--priority N]',
      '         [--ca FILE] [--mirror URL ...] [--timeout SECONDS] [--auth TYPE --secret REF [--username U]] [--force] [--json]',
      '       plugindex registry list [--json]',
      '       plugindex registry remove NAME [--force] [--json]   (--force: a trust record that does not read too)',
      '       plugindex registry update [NAME ...] [--offline] [--json]   (--offline: the cached snapshots, checked)',
      '       plugindex registry reset-trust (NAME | URL --key FILE [--ca FILE] [--auth TYPE --secret REF]) [--json]',
      '         a registry its operator rebuilt at a lower generation under the same key (SNAPSHOT_ROLLBACK):',
      '         forgets the generation and log every name of it accepted (configured, plugin sets, mirrors)',
      "         and takes its snapshot now, verified by the key pinned (URL: a plugin set's registry and its key)",
      `  TYPE: bearer_token | api_key | basic_auth; REF: '\${ENV_VAR}' or file:PATH (a secret is never written in config)`,
    ].join('\n'),
    options: {
      ...CLIENT,
      key: { type: 'string' },
      fingerprint: { type: 'string' },
      'trust-on-first-use': { type: 'boolean' },
      priority: { type: 'string' },
      ca: { type: 'string' },
      mirror: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      auth: { type: 'string' },
      secret: { type: 'string' },
      username: { type: 'string' },
      force: { type: 'boolean' },
    },
    load: () => import('./commands/registry.ts'),
  },
  search: {
    summary: 'search the verified search.json of every configured registry',
    usage:
      'plugindex search [TERMS ...] [--type T] [--provider P] [--capability C] [--registry NAME] [--offline] [--json]',
    options: {
      ...CLIENT,
      registry: { type: 'string' },
      // Taken as lists so a repeat is seen and refused as GET /search refuses it (parseArgs keeps the last).
      type: { type: 'string', multiple: true },
      provider: { type: 'string', multiple: true },
      capability: { type: 'string', multiple: true },
    },
    load: () => import('./commands/search.ts'),
  },
  info: {
    summary:
      'a plugin: versions (yanked, removed, deprecated, prerelease, advisories), channels, platforms, capabilities, publisher',
    usage:
      'plugindex info NAME[@SPEC] [--registry NAME] [--platform OS/ARCH[/musl]] [--api-version V] [--offline] [--json]',
    options: { ...CLIENT, ...RESOLVE, registry: { type: 'string' } },
    load: () => import('./commands/info.ts'),
  },
  install: {
    summary:
      'install plugins (verified end to end) and record them in plugindex.lock; no names: what the lock holds',
    usage: [
      'plugindex install [NAME[@SPEC] ...] [--registry NAME] [--platform OS/ARCH[/musl] ...] [--dir DIR] [--lockfile FILE]',
      '         [--locked] [--frozen [--trust-lock]] [--offline] [--accept-permissions] [--deny-yanked] [--allow-vulnerable]',
      '         [--api-version V] [--json]',
      'plugindex install -c FILE [--locked | --frozen] [--accept-permissions] [--deny-yanked] [--allow-vulnerable]',
      'plugindex install URL/…/manifest.json [--key FILE]   a manifest by URL (--key unless under a configured registry)',
      'plugindex install NAME:TAG | REGISTRY/REPO:TAG | REGISTRY/REPO@sha256:…   falcoctl-style references',
      '  SPEC: 1.2.3 | ^1.2.0 | ~1.2 | ">=1 <2" | latest | a channel (beta)',
      '  --frozen: exactly the lock, reading no registry (artifacts from the cache or where the lock found them);',
      '            so no advisory or yank since is checked: `plugindex audit` checks a frozen tree; an entry of a',
      '            source not configured here is refused (SOURCE_NOT_CONFIGURED) unless --trust-lock takes its digests alone',
      '  --allow-vulnerable: install a version a high or critical advisory affects (else refused)',
      '  --deny-yanked: refuse a locked version yanked since (else installed with a warning); with --frozen, read from its registry',
      '  --platform: repeat it to place several platforms (a fleet folder); the version must have a build for each',
    ].join('\n'),
    options: {
      ...CLIENT,
      ...PLACE,
      ...INSTALLS,
      ...SET,
      registry: { type: 'string' },
      locked: { type: 'boolean' },
      frozen: { type: 'boolean' },
      'trust-lock': { type: 'boolean' },
      'accept-permissions': { type: 'boolean' },
      'deny-yanked': { type: 'boolean' },
      'allow-vulnerable': { type: 'boolean' },
      key: { type: 'string' },
    },
    load: () => import('./commands/install.ts'),
  },
  diff: {
    summary:
      'what `install -c FILE` and `clean -c FILE` would add, upgrade, downgrade, remove or find changed (exit 0 none, 1 some, 2 trouble)',
    usage: 'plugindex diff -c FILE [--api-version V] [--offline] [--json]',
    options: { ...CLIENT, ...SET, 'api-version': { type: 'string' } },
    load: () => import('./commands/diff.ts'),
    // As diff(1): 1 means "differs", so trouble (a refusal or a defect alike) is 2.
    failureExit: 2,
  },
  clean: {
    summary:
      'remove installs a plugin set does not name (plugins, other versions, platforms), and cached artifacts nothing uses',
    usage: [
      'plugindex clean -c FILE [--offline] [--json]',
      'plugindex clean --orphans [--dir DIR] [--json]   drop the claims of plugin sets whose file is gone, removing what no one else claims',
    ].join('\n'),
    options: { ...CLIENT, ...SET, dir: { type: 'string' }, orphans: { type: 'boolean' } },
    load: () => import('./commands/clean.ts'),
  },
  'init-config': {
    summary: 'write a commented starter plugin set (default plugins.yaml)',
    usage: 'plugindex init-config [FILE] [--force]',
    options: { force: { type: 'boolean' } },
    load: () => import('./commands/init-config.ts'),
  },
  update: {
    summary: 'move installed plugins to the newest version their spec (or the one given) allows',
    usage: [
      'plugindex update [NAME[@SPEC] ...] [--platform OS/ARCH[/musl] ...] [--dir DIR] [--lockfile FILE] [--api-version V]',
      '         [--accept-permissions] [--allow-vulnerable] [--offline] [--json]',
      'plugindex update -c FILE [--accept-permissions] [--allow-vulnerable]   every plugin of a set',
      'without --platform, each plugin is updated for every platform its old version is installed for in DIR;',
      'with it (repeatable), for the platforms named alone, the old version removed with its other builds',
    ].join('\n'),
    options: {
      ...CLIENT,
      ...PLACE,
      ...INSTALLS,
      ...SET,
      'accept-permissions': { type: 'boolean' },
      'allow-vulnerable': { type: 'boolean' },
    },
    load: () => import('./commands/update.ts'),
  },
  list: {
    summary:
      'installed plugins; --outdated: those with a newer version, yanked, deprecated, removed or under an advisory (exit 1 if any); -c FILE: also those found on disk, verified',
    usage: [
      'plugindex list [--outdated] [--dir DIR] [--lockfile FILE] [--api-version V] [--offline] [--json]',
      "plugindex list -c FILE [--watch] [--json]   the set's filesystem discovery (exit 1 if any does not verify)",
    ].join('\n'),
    options: {
      ...CLIENT,
      ...INSTALLS,
      ...SET,
      'api-version': { type: 'string' },
      outdated: { type: 'boolean' },
      watch: { type: 'boolean' },
    },
    load: () => import('./commands/list.ts'),
  },
  audit: {
    summary:
      "installed plugins' advisories (exit 1 if any affects one); NAME: its history from the registry's verified log",
    usage: [
      'plugindex audit [--dir DIR] [--offline] [--json]   every installed version against its advisories, removals and yanks',
      "plugindex audit NAME [--registry NAME] [--json]   the plugin's log entries (the whole log checked) and advisories",
    ].join('\n'),
    options: { ...CLIENT, dir: { type: 'string' }, registry: { type: 'string' } },
    load: () => import('./commands/audit.ts'),
  },
  remove: {
    summary: 'remove an installed plugin (or one version); --clean also drops its cached downloads',
    usage: 'plugindex remove NAME[@VERSION] [--clean] [--dir DIR] [--lockfile FILE] [--offline] [--json]',
    options: { ...CLIENT, ...INSTALLS, clean: { type: 'boolean' } },
    load: () => import('./commands/remove.ts'),
  },
  enable: {
    summary: 'mark an installed plugin enabled (hosts load it)',
    usage: 'plugindex enable NAME [--dir DIR] [--offline] [--json]',
    // No --lockfile: the switch is installed.json's, and the lock names no switch (it was taken, unused).
    options: { ...CLIENT, dir: INSTALLS.dir },
    load: () => import('./commands/enable.ts'),
  },
  disable: {
    summary: 'mark an installed plugin disabled (it stays installed; hosts skip it)',
    usage: 'plugindex disable NAME [--dir DIR] [--offline] [--json]',
    options: { ...CLIENT, dir: INSTALLS.dir },
    load: () => import('./commands/disable.ts'),
  },
  dev: {
    optionsOnly: true,
    summary: 'the local demo behind `npm start`: create, publish the examples, serve, watch incoming/',
    usage:
      'plugindex dev [--registry DIR] [--port N] [--examples DIR]   (defaults: $PLUGINDEX_HOME or ./.plugindex, $PORT or 8080, ./examples)',
    options: { ...REGISTRY, port: { type: 'string' }, examples: { type: 'string' } },
    load: () => import('./commands/dev.ts'),
  },
};
