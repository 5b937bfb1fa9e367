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
}

const REGISTRY = { registry: { type: 'string' } } as const;

export const COMMANDS: Readonly<Record<string, Command>> = {
  init: {
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
    summary: 'create a publisher key pair (DIR/secret.asc, DIR/public.asc)',
    usage: 'plugindex keygen --out DIR [--name NAME] [--email EMAIL] [--passphrase-file FILE]',
    options: {
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
      'plugindex pack MANIFEST [--artifact OS/ARCH=PATH ...] --key SECRET_KEY [--passphrase-file FILE] --out FILE.tgz',
    options: {
      artifact: { type: 'string', multiple: true },
      key: { type: 'string' },
      out: { type: 'string' },
      'passphrase-file': { type: 'string' },
    },
    load: () => import('./commands/pack.ts'),
  },
  publish: {
    summary: 'submit a bundle: to a local registry (runs the pipeline once), or to a deployed one (--bucket)',
    usage:
      'plugindex publish FILE.tgz --registry DIR [--json]\n       plugindex publish FILE.tgz --bucket UPLOAD_BUCKET [--endpoint URL] [--timeout SECONDS] [--json]',
    options: {
      ...REGISTRY,
      bucket: { type: 'string' },
      endpoint: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    load: () => import('./commands/publish.ts'),
  },
  process: {
    summary: 'process every submission waiting in the registry incoming/ folder as one batch',
    usage: 'plugindex process --registry DIR [--json]',
    options: { ...REGISTRY, json: { type: 'boolean' } },
    load: () => import('./commands/process.ts'),
  },
  serve: {
    summary: 'serve a registry over HTTP (and publish bundles dropped into incoming/)',
    usage: 'plugindex serve --registry DIR [--port N] [--host HOST] [--no-watch]',
    options: {
      ...REGISTRY,
      port: { type: 'string' },
      host: { type: 'string' },
      'no-watch': { type: 'boolean' },
    },
    load: () => import('./commands/serve.ts'),
  },
  publishers: {
    summary: 'list trusted publishers, or add one (which makes the registry restricted)',
    usage:
      'plugindex publishers add --registry DIR KEYFILE --names GLOB[,GLOB...] [--label TEXT]\n       plugindex publishers list --registry DIR',
    options: { ...REGISTRY, names: { type: 'string', multiple: true }, label: { type: 'string' } },
    load: () => import('./commands/publishers.ts'),
  },
  rebuild: {
    summary:
      're-render and re-sign every document (after a key rotation): locally, or on AWS through the queue',
    usage:
      'plugindex rebuild --registry DIR\n       plugindex rebuild --queue-url URL   (the deployed submission queue; runs in order with publishes)',
    options: { ...REGISTRY, 'queue-url': { type: 'string' } },
    load: () => import('./commands/rebuild.ts'),
  },
  refresh: {
    summary: 're-sign snapshot.json with a fresh expiry (run it on a schedule)',
    usage: 'plugindex refresh --registry DIR',
    options: REGISTRY,
    load: () => import('./commands/refresh.ts'),
  },
  verify: {
    summary:
      'check a served registry as a client would: signatures, rollback, expiry, every digest and hosted artifact',
    usage: 'plugindex verify --url URL [--key REGISTRY_KEY.asc] [--state FILE]',
    options: { url: { type: 'string' }, key: { type: 'string' }, state: { type: 'string' } },
    load: () => import('./commands/verify.ts'),
  },
  dev: {
    summary: 'the local demo behind `npm start`: create, publish the examples, serve, watch incoming/',
    usage:
      'plugindex dev [--registry DIR] [--port N] [--examples DIR]   (defaults: $PLUGINDEX_HOME or ./.plugindex, $PORT or 8080, ./examples)',
    options: { ...REGISTRY, port: { type: 'string' }, examples: { type: 'string' } },
    load: () => import('./commands/dev.ts'),
  },
};
