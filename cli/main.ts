/**
 * The `plugindex` command: publisher commands (keygen, validate, pack, publish), operator commands (init,
 * publishers, rebuild, refresh, serve) and the one-command local demo (dev). Each command parses its
 * arguments, reads and writes files, and calls the core; the logic lives in index-builder/.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRegistryConfig } from '../index-builder/config.ts';
import { streamSha256 } from '../index-builder/digest.ts';
import { PlugindexError, type Problem, TrustError } from '../index-builder/errors.ts';
import { INCOMING_PREFIX, statusKey, submissionIdFromDigest } from '../index-builder/layout.ts';
import { ARCH_VALUES, OS_VALUES } from '../index-builder/model.ts';
import {
  processSubmissions,
  rebuildRegistry,
  refreshSnapshot,
  type SubmissionOutcome,
} from '../index-builder/pipeline/index.ts';
import { generateKeyPair, readPublicKey } from '../index-builder/signing.ts';
import { inspectBundle, inspectManifest, packSubmission } from '../index-builder/submission.ts';
import {
  listOption,
  type Options,
  type Parsed,
  parse,
  portOption,
  requiredOption,
  stringOption,
} from './args.ts';
import { runDev } from './dev.ts';
import { CliError, usage } from './errors.ts';
import { initRegistry, openRegistry, readConfig, withRegistryLock, writeConfig } from './local/registry.ts';
import { publishToBucket, requestRebuild } from './remote.ts';
import { serveRegistry } from './serve.ts';
import { verifyRegistry } from './verify.ts';

interface CommandSpec {
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  readonly run: (parsed: Parsed) => Promise<number>;
}

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const err = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function formatProblems(problems: readonly Problem[]): string[] {
  return problems.map((p) => {
    const detail = [p.expected ? `expected ${p.expected}` : '', p.found ? `found ${p.found}` : '']
      .filter(Boolean)
      .join('; ');
    return `  ${p.code} ${p.path || '/'}: ${p.message}${detail ? ` (${detail})` : ''}`;
  });
}

function printOutcome(outcome: SubmissionOutcome): void {
  const what = outcome.plugin ? `${outcome.plugin}@${outcome.version}` : outcome.submission;
  if (outcome.status === 'rejected') {
    out(`rejected ${what} (submission ${outcome.id})`);
    for (const line of formatProblems(outcome.problems)) out(line);
    return;
  }
  out(
    `${outcome.status} ${what} (submission ${outcome.id}${outcome.generation ? `, generation ${outcome.generation}` : ''})`,
  );
  if (outcome.urls) {
    out(`  plugin:   ${outcome.urls.plugin}`);
    out(`  manifest: ${outcome.urls.manifest}`);
    for (const url of outcome.urls.artifacts) out(`  artifact: ${url}`);
  }
}

async function readInput(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (cause) {
    throw new CliError('FILE_NOT_FOUND', `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** SHA-256 (hex) of a file, read as a stream. */
async function fileSha256(file: string): Promise<string> {
  try {
    return await streamSha256(createReadStream(file));
  } catch (cause) {
    throw new CliError('FILE_NOT_FOUND', `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}

async function readPassphrase(parsed: Parsed): Promise<string | undefined> {
  const file = stringOption(parsed, 'passphrase-file');
  if (!file) return undefined;
  return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
}

const commands: Record<string, CommandSpec> = {
  init: {
    summary: 'create a registry: config, signing key, empty signed published state',
    usage: 'plugindex init --registry DIR [--name NAME] [--url URL] [--description TEXT]',
    options: {
      registry: { type: 'string' },
      name: { type: 'string' },
      url: { type: 'string' },
      description: { type: 'string' },
    },
    async run(parsed) {
      const dir = requiredOption(parsed, 'registry');
      const name = stringOption(parsed, 'name') ?? 'plugindex local registry';
      const url = stringOption(parsed, 'url') ?? 'http://127.0.0.1:8080';
      const description = stringOption(parsed, 'description');
      const { fingerprint } = await initRegistry(dir, { name, url, ...(description ? { description } : {}) });
      out(`created registry "${name}" in ${dir}`);
      out(`  url:          ${url}`);
      out(`  signing key:  ${fingerprint} (public key at ${url}/keys/registry.asc)`);
      out('  policy:       open, first-come ownership (restrict with: plugindex publishers add)');
      out(`  submit with:  plugindex publish BUNDLE.tgz --registry ${dir}`);
      return 0;
    },
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
    async run(parsed) {
      const dir = requiredOption(parsed, 'out');
      const passphrase = await readPassphrase(parsed);
      const email = stringOption(parsed, 'email');
      const pair = await generateKeyPair({
        name: stringOption(parsed, 'name') ?? 'plugindex publisher',
        ...(email ? { email } : {}),
        ...(passphrase ? { passphrase } : {}),
      });
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'secret.asc'), pair.secretKey, { mode: 0o600 });
      await writeFile(path.join(dir, 'public.asc'), pair.publicKey);
      out(pair.fingerprint);
      return 0;
    },
  },
  validate: {
    summary: 'check a manifest (JSON or YAML) or a submission bundle without publishing',
    usage: 'plugindex validate FILE [--json]',
    options: { json: { type: 'boolean' } },
    async run(parsed) {
      const file = parsed.positionals[0];
      if (!file || parsed.positionals.length > 1) throw usage('validate takes exactly one FILE');
      const bytes = await readInput(file);
      const isBundle = /\.(tgz|tar\.gz)$/i.test(file) || (bytes[0] === 0x1f && bytes[1] === 0x8b);
      const result = isBundle ? await inspectBundle(bytes) : inspectManifest(bytes, path.basename(file));
      if (parsed.values.json) {
        const errors = result.problems.map((p) => ({ code: p.code, path: p.path, message: p.message }));
        out(JSON.stringify({ valid: result.valid, errors }));
      } else if (result.valid) {
        const m = result.manifest;
        out(
          `valid: ${m ? `${m.name}@${m.version} (${m.plugin_type})` : file}${result.signer ? `, signed by ${result.signer}` : ''}`,
        );
      } else {
        out(`invalid: ${file} (${result.problems.length} problem${result.problems.length === 1 ? '' : 's'})`);
        for (const line of formatProblems(result.problems)) out(line);
      }
      return result.valid ? 0 : 1;
    },
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
    async run(parsed) {
      const manifestFile = parsed.positionals[0];
      if (!manifestFile || parsed.positionals.length > 1) throw usage('pack takes exactly one MANIFEST');
      const keyFile = requiredOption(parsed, 'key');
      const outFile = requiredOption(parsed, 'out');
      const artifacts = [];
      for (const spec of listOption(parsed, 'artifact')) {
        const match = /^([a-z0-9]+)\/([a-z0-9]+)=(.+)$/.exec(spec);
        if (!match) throw usage(`--artifact must look like OS/ARCH=PATH, found ${spec}`);
        const [, os = '', arch = '', file = ''] = match;
        if (!(OS_VALUES as readonly string[]).includes(os))
          throw usage(`--artifact ${spec}: os must be one of ${OS_VALUES.join(', ')}`);
        if (!(ARCH_VALUES as readonly string[]).includes(arch))
          throw usage(`--artifact ${spec}: arch must be one of ${ARCH_VALUES.join(', ')}`);
        artifacts.push({ os, arch, fileName: path.basename(file), body: await readInput(file) });
      }
      const passphrase = await readPassphrase(parsed);
      const packed = await packSubmission({
        manifestName: path.basename(manifestFile),
        manifest: await readInput(manifestFile),
        artifacts,
        secretKey: await readFile(keyFile, 'utf8'),
        ...(passphrase ? { passphrase } : {}),
      });
      await writeFile(outFile, packed.bundle);
      out(
        `packed ${packed.manifest.name}@${packed.manifest.version} -> ${outFile} (${packed.bundle.byteLength} bytes, signed by ${packed.fingerprint})`,
      );
      return 0;
    },
  },
  publish: {
    summary: 'submit a bundle: to a local registry (runs the pipeline once), or to a deployed one (--bucket)',
    usage:
      'plugindex publish FILE.tgz --registry DIR [--json]\n       plugindex publish FILE.tgz --bucket UPLOAD_BUCKET [--endpoint URL] [--timeout SECONDS] [--json]',
    options: {
      registry: { type: 'string' },
      bucket: { type: 'string' },
      endpoint: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(parsed) {
      const file = parsed.positionals[0];
      if (!file || parsed.positionals.length > 1) throw usage('publish takes exactly one FILE');
      const dir = stringOption(parsed, 'registry');
      const bucket = stringOption(parsed, 'bucket');
      if ((dir === undefined) === (bucket === undefined))
        throw usage('give exactly one of --registry DIR or --bucket NAME');
      // Streamed, never read whole: a bundle may be large. The digest names the outcome to wait for.
      const sha256 = await fileSha256(file);
      const key = `${INCOMING_PREFIX}${new Date().toISOString().replace(/[:.]/g, '')}-${randomBytes(4).toString('hex')}-${path.basename(file).replace(/[^A-Za-z0-9._-]/g, '_')}`;
      let outcome: SubmissionOutcome | undefined;
      if (dir !== undefined) {
        const registry = await openRegistry(dir);
        const result = await withRegistryLock(dir, async () => {
          await registry.context.intake.putStream(key, createReadStream(file), {
            contentType: 'application/gzip',
            cacheControl: 'no-store',
          });
          return processSubmissions(registry.context, [key]);
        });
        outcome = result.outcomes[0];
        if (!outcome) throw new Error('the pipeline recorded no outcome');
      } else {
        const timeout = Number(stringOption(parsed, 'timeout') ?? '120');
        if (!Number.isFinite(timeout) || timeout < 0) throw usage('--timeout must be a number of seconds');
        const endpoint = stringOption(parsed, 'endpoint');
        outcome = await publishToBucket({
          bucket: bucket as string,
          key,
          file,
          sha256,
          timeoutSeconds: timeout,
          ...(endpoint ? { endpoint } : {}),
          log: err,
        });
        if (!outcome) {
          err(
            `submitted s3://${bucket}/${key}; no outcome after ${timeout} s: read ${statusKey(submissionIdFromDigest(key, sha256))} later`,
          );
          return 1;
        }
      }
      if (parsed.values.json) out(JSON.stringify(outcome, null, 2));
      else printOutcome(outcome);
      return outcome.status === 'rejected' ? 1 : 0;
    },
  },
  process: {
    summary: 'process every submission waiting in the registry incoming/ folder as one batch',
    usage: 'plugindex process --registry DIR',
    options: { registry: { type: 'string' } },
    async run(parsed) {
      const dir = requiredOption(parsed, 'registry');
      const registry = await openRegistry(dir);
      const result = await withRegistryLock(dir, () => processSubmissions(registry.context));
      for (const outcome of result.outcomes) printOutcome(outcome);
      out(result.generation === null ? 'nothing to rebuild' : `rebuilt: generation ${result.generation}`);
      return result.outcomes.some((o) => o.status === 'rejected') ? 1 : 0;
    },
  },
  serve: {
    summary: 'serve a registry over HTTP (and publish bundles dropped into incoming/)',
    usage: 'plugindex serve --registry DIR [--port N] [--host HOST] [--no-watch]',
    options: {
      registry: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'no-watch': { type: 'boolean' },
    },
    async run(parsed) {
      const dir = requiredOption(parsed, 'registry');
      await serveRegistry({
        dir,
        port: portOption(parsed, 8080),
        host: stringOption(parsed, 'host') ?? '127.0.0.1',
        watch: !parsed.values['no-watch'],
        log: out,
      });
      return 0;
    },
  },
  publishers: {
    summary: 'list trusted publishers, or add one (which makes the registry restricted)',
    usage:
      'plugindex publishers add --registry DIR KEYFILE --names GLOB[,GLOB...]\n       plugindex publishers list --registry DIR',
    options: {
      registry: { type: 'string' },
      names: { type: 'string', multiple: true },
      label: { type: 'string' },
    },
    async run(parsed) {
      const [action, keyFile] = parsed.positionals;
      const dir = requiredOption(parsed, 'registry');
      const config = await readConfig(dir);
      if (action === 'list') {
        out(`policy: ${config.policy}, ownership: ${config.ownership}`);
        for (const p of config.publishers)
          out(`${p.fingerprint} ${p.names.join(',')}${p.label ? ` (${p.label})` : ''}`);
        return 0;
      }
      if (action !== 'add' || !keyFile) throw usage('publishers takes "add KEYFILE --names GLOB" or "list"');
      const names = listOption(parsed, 'names')
        .flatMap((n) => n.split(','))
        .map((n) => n.trim())
        .filter(Boolean);
      if (names.length === 0) throw usage('--names is required (for example --names "acme-*")');
      const key = await readPublicKey(await readFile(keyFile, 'utf8'));
      const registry = await openRegistry(dir);
      if (key.fingerprints.some((fp) => registry.context.signer.fingerprints.includes(fp))) {
        throw usage('that is the registry signing key; it can never be a publisher key');
      }
      const label = stringOption(parsed, 'label') ?? key.userIds[0];
      const publishers = [
        ...config.publishers.filter((p) => p.fingerprint !== key.fingerprint),
        { fingerprint: key.fingerprint, names, key: key.armored, ...(label ? { label } : {}) },
      ];
      await writeConfig(dir, parseRegistryConfig({ ...config, policy: 'restricted', publishers }));
      out(`trusted ${key.fingerprint} for ${names.join(', ')}; policy is now restricted`);
      return 0;
    },
  },
  rebuild: {
    summary:
      're-render and re-sign every document (after a key rotation): locally, or on AWS through the queue',
    usage:
      'plugindex rebuild --registry DIR\n       plugindex rebuild --queue-url URL   (the deployed submission queue; runs in order with publishes)',
    options: { registry: { type: 'string' }, 'queue-url': { type: 'string' } },
    async run(parsed) {
      const dir = stringOption(parsed, 'registry');
      const queueUrl = stringOption(parsed, 'queue-url');
      if ((dir === undefined) === (queueUrl === undefined))
        throw usage('give exactly one of --registry DIR or --queue-url URL');
      if (queueUrl !== undefined) {
        const id = await requestRebuild(queueUrl);
        out(
          `rebuild requested (message ${id}); the publish function runs it after the submissions ahead of it`,
        );
        return 0;
      }
      const registry = await openRegistry(dir as string);
      const result = await withRegistryLock(dir as string, () => rebuildRegistry(registry.context));
      out(`rebuilt ${result.plugins} plugins: generation ${result.generation}`);
      return 0;
    },
  },
  refresh: {
    summary: 're-sign snapshot.json with a fresh expiry (run it on a schedule)',
    usage: 'plugindex refresh --registry DIR',
    options: { registry: { type: 'string' } },
    async run(parsed) {
      const dir = requiredOption(parsed, 'registry');
      const registry = await openRegistry(dir);
      const { generation } = await withRegistryLock(dir, () => refreshSnapshot(registry.context));
      out(`snapshot re-signed: generation ${generation}`);
      return 0;
    },
  },
  verify: {
    summary:
      'check a served registry as a client would: signatures, rollback, expiry, every digest and hosted artifact',
    usage: 'plugindex verify --url URL [--key REGISTRY_KEY.asc] [--state FILE]',
    options: { url: { type: 'string' }, key: { type: 'string' }, state: { type: 'string' } },
    async run(parsed) {
      const url = requiredOption(parsed, 'url');
      const keyFile = stringOption(parsed, 'key');
      const stateFile = stringOption(parsed, 'state');
      try {
        const report = await verifyRegistry({
          url,
          ...(keyFile ? { pinnedKey: await readFile(keyFile, 'utf8') } : {}),
          ...(stateFile ? { stateFile } : {}),
        });
        out(
          `verified ${url}: generation ${report.generation}, expires ${report.expires}, key ${report.fingerprint}`,
        );
        out(
          `  ${report.documents} signed documents, ${report.plugins} plugins, ${report.manifests} manifests, ${report.artifacts} hosted artifacts`,
        );
        if (!keyFile)
          out('  (the key was taken from the registry itself: pin it with --key for real protection)');
        return 0;
      } catch (error) {
        if (!(error instanceof TrustError)) throw error;
        out(`NOT verified ${url}: ${error.code}: ${error.message}`);
        return 1;
      }
    },
  },
  dev: {
    summary: 'the local demo behind `npm start`: create, publish the examples, serve, watch incoming/',
    usage:
      'plugindex dev [--registry DIR] [--port N] [--examples DIR]   (defaults: $PLUGINDEX_HOME or ./.plugindex, $PORT or 8080, ./examples)',
    options: { registry: { type: 'string' }, port: { type: 'string' }, examples: { type: 'string' } },
    async run(parsed) {
      await runDev({
        dir: stringOption(parsed, 'registry') ?? process.env.PLUGINDEX_HOME ?? '.plugindex',
        port: portOption(parsed, Number(process.env.PORT ?? 8080)),
        examples: stringOption(parsed, 'examples') ?? 'examples',
        log: out,
      });
      return 0;
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'plugindex: a signed, static plugin registry',
    '',
    'usage: plugindex COMMAND [options]   (plugindex COMMAND --help for details)',
    '',
    ...Object.entries(commands).map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`),
  ].join('\n');
}

/** Runs the CLI; returns the exit code (0 ok, 1 rejected or failed, 2 usage error). */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(help());
    return name ? 0 : 2;
  }
  const spec = commands[name];
  try {
    if (!spec) throw usage(`unknown command "${name}"\n\n${help()}`);
    const parsed = parse(rest, spec.options);
    if (parsed.values.help) {
      out(`${spec.summary}\n\nusage: ${spec.usage}`);
      return 0;
    }
    return await spec.run(parsed);
  } catch (error) {
    if (error instanceof CliError) {
      err(`plugindex ${name}: ${error.message}`);
      if (error.code === 'USAGE' && spec) err(`usage: ${spec.usage}`);
      return error.exitCode;
    }
    if (error instanceof PlugindexError) {
      err(`plugindex ${name}: ${error.code}: ${error.message}`);
      if ('problems' in error)
        for (const line of formatProblems((error as { problems: Problem[] }).problems)) err(line);
      return 1;
    }
    err(`plugindex ${name}: ${(error as Error).stack ?? String(error)}`);
    return 1;
  }
}
