/**
 * The plugin set file: a version-controlled list of the plugins a team installs and where each comes from
 * (the Optimus plugin manager's `plugins:` config: an install location, providers of several types, and
 * plugins naming a provider), the PulumiCost spec's `discovery:` block as the spec writes it, and the
 * team's `policy:` (client/policy.ts). One YAML file, read strictly: every key this version does not know is
 * refused (a misspelt `key` or `auth` silently dropped would install without the trust the team meant), and
 * every problem is reported at once, each as `FILE#/json/pointer (line N): expected X, found Y`.
 *
 * Paths in the file are relative to the file's folder (so a checked-in set means the same on every
 * machine); `~` and `~/…` name the home folder. Secrets are never written in it: `auth` holds references,
 * `${ENV_NAME}` or `file:PATH` (a relative PATH is taken from the file's folder too).
 *
 * Pure: the caller reads the file and passes its text, its absolute path and the home folder.
 *
 * @example
 * const set = parsePluginSet(await readFile(file, 'utf8'), file, { home: os.homedir() });
 * for (const plugin of set.plugins) install(plugin.provider, `${plugin.name}@${plugin.version}`);
 */
import path from 'node:path';
import semver from 'semver';
import YAML, { LineCounter } from 'yaml';
import { escapePointer } from '../index-builder/errors.ts';
import { KEY_FINGERPRINT } from '../index-builder/fingerprint.ts';
import { keyProblem, pluginNameFormProblem, pluginNameProblem } from '../index-builder/layout.ts';
import { MAX_YAML_ALIASES } from '../index-builder/manifest/parse.ts';
import {
  findDeepYamlNesting,
  isAliasLoop,
  MAX_YAML_NESTING,
  STRICT_YAML,
  YamlAnchors,
  yamlPointerOf,
} from '../index-builder/manifest/parse-yaml.ts';
import {
  PERMISSIONS,
  type Permission,
  RESOURCE_LIMITS,
  type ResourceName,
  type Resources,
} from '../index-builder/model.ts';
import {
  HEADER_NAME,
  normalizeRegistryUrl,
  type RegistryAuth,
  registryUrlProblem,
  secretRefProblem,
} from './config.ts';
import {
  describe,
  describeSecretField,
  isNonNegativeInteger,
  isObject,
  Problems,
  REGISTRY_NAME,
} from './json-input.ts';
import type { Policy } from './policy.ts';
import { isVersionSpec, type Platform, parsePlatform, platformKey } from './resolve.ts';

export interface PluginSet {
  /** The absolute path of the set file. */
  readonly file: string;
  /** Absolute; default `<file dir>/plugins`. */
  readonly installLocation: string;
  readonly providers: readonly SetProvider[];
  readonly plugins: readonly SetPlugin[];
  readonly policy?: Policy;
  readonly discovery?: Discovery;
}

export type SetProvider =
  | {
      readonly type: 'registry';
      readonly name: string;
      /** Normalized; absent: the registry already configured by that name, reached as configured. */
      readonly url?: string;
      /** Absolute path of the armored registry key, pinned by the set. */
      readonly key?: string;
      /** Integer >= 0, lower tried first (default 0). */
      readonly priority: number;
      readonly timeout_seconds?: number;
      readonly auth?: RegistryAuth;
      /** Absolute. */
      readonly ca_file?: string;
      readonly mirrors: readonly string[];
      readonly pointer: string;
    }
  | {
      readonly type: 'url';
      readonly name: string;
      /** An http(s) base, normalized. */
      readonly url: string;
      readonly key: string;
      readonly auth?: RegistryAuth;
      readonly ca_file?: string;
      readonly pointer: string;
    }
  | {
      readonly type: 's3';
      readonly name: string;
      readonly bucket: string;
      /** '' or `a/b`, without slashes at the ends. */
      readonly prefix: string;
      readonly region?: string;
      /** A custom S3 endpoint URL (a local S3 server, another S3-compatible store), normalized. */
      readonly endpoint?: string;
      readonly key: string;
      readonly pointer: string;
    }
  | {
      readonly type: 'file';
      readonly name: string;
      /** Absolute folder. */
      readonly path: string;
      readonly key: string;
      readonly pointer: string;
    };

/** A provider of type `registry`: what `plugins.providers` may hold and all `discovery.registries` are. */
export type RegistryProvider = Extract<SetProvider, { readonly type: 'registry' }>;

export interface SetPlugin {
  /** The name of a provider of `plugins.providers` or `discovery.registries`. */
  readonly provider: string;
  readonly name: string;
  /** A spec as `install NAME@SPEC` takes: exact, range, `latest` or a channel; default 'latest'. */
  readonly version: string;
  /** Unique; absent: the host's platform. */
  readonly platforms?: readonly Platform[];
  /** The installed file name: one safe path segment. */
  readonly output?: string;
  /** Absolute; absent: the set's install location. */
  readonly install_location?: string;
  /** An exact manifest path relative to the provider (Optimus's `path`); a `url` provider needs it or an exact version. */
  readonly path?: string;
  /** Where the plugin is in the file, e.g. '/plugins/plugins/0'. */
  readonly pointer: string;
}

/** The spec's "Filesystem Discovery": folders a host scans for plugins. */
export interface FilesystemDiscovery {
  readonly enabled: boolean;
  /** Absolute: `~` expanded with the home folder, relative paths taken from the file's folder. */
  readonly paths: readonly string[];
  readonly recursive: boolean;
  readonly watch_for_changes: boolean;
}

/** The spec's `discovery:` block. */
export interface Discovery {
  /**
   * The spec's "Registry Discovery", each a registry provider with a `url`. One without `key` must be
   * configured already (`plugindex registry add`): the caller checks.
   */
  readonly registries: readonly RegistryProvider[];
  readonly filesystem?: FilesystemDiscovery;
}

/** Largest set file read, in characters: a set lists plugins, not data. */
export const MAX_SET_FILE_CHARS = 1_048_576;

const TOP_FIELDS = ['plugins', 'discovery', 'policy'] as const;
const PLUGINS_BLOCK_FIELDS = ['install_location', 'providers', 'plugins'] as const;
const PROVIDER_TYPES = ['registry', 'url', 's3', 'file'] as const;
const PROVIDER_FIELDS: Readonly<Record<SetProvider['type'], readonly string[]>> = {
  registry: ['type', 'name', 'url', 'key', 'priority', 'timeout', 'auth', 'ca_file', 'mirrors'],
  url: ['type', 'name', 'url', 'key', 'auth', 'ca_file'],
  s3: ['type', 'name', 'bucket', 'prefix', 'region', 'endpoint', 'key'],
  file: ['type', 'name', 'path', 'key'],
};
/** The spec's registry fields, and `key`, `ca_file` and `mirrors` as a configured registry has them. */
const DISCOVERY_REGISTRY_FIELDS = ['name', 'url', 'key', 'priority', 'timeout', 'auth', 'ca_file', 'mirrors'];
/** What a registry provider without `url` may not set: it is the configured registry, reached as configured. */
const REACH_FIELDS = ['key', 'timeout', 'auth', 'ca_file', 'mirrors'] as const;
const PLUGIN_FIELDS = [
  'provider',
  'name',
  'version',
  'platforms',
  'output',
  'install_location',
  'path',
] as const;
const DISCOVERY_FIELDS = ['registries', 'filesystem'] as const;
const FILESYSTEM_FIELDS = ['enabled', 'paths', 'recursive', 'watch_for_changes'] as const;
const POLICY_FIELDS = ['permissions', 'publishers', 'registries', 'prereleases', 'resources'] as const;
const PERMISSION_FIELDS = ['allow', 'deny'] as const;
const AUTH_TYPES = ['none', 'bearer_token', 'api_key', 'basic_auth'] as const;
const AUTH_FIELDS: Readonly<Record<(typeof AUTH_TYPES)[number], readonly string[]>> = {
  none: ['type'],
  bearer_token: ['type', 'bearer_token'],
  api_key: ['type', 'api_key', 'header'],
  basic_auth: ['type', 'username', 'password'],
};

/** A channel, as index-builder/versions.ts reads one: `latest`, `beta`. */
const VERSION_SPEC =
  'a version spec: an exact version ("1.2.3"), a range ("^1.1", "~1.2", ">=1 <2"), "latest" or a channel ("beta")';
/** A duration as the spec writes it (Go's form): `30s`, `2m`, `1m30s`, `500ms`, `1h`. */
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
const SECONDS_PER_UNIT: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600 };
/** S3's bucket naming rules: 3 to 63 lowercase letters, digits, dots and hyphens, a letter or digit at each end. */
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_REGION = /^[a-z0-9][a-z0-9-]{0,63}$/;

/**
 * Reads a plugin set file (see the module comment; `initConfigText` writes a commented example).
 * @param file the file's absolute path: named in every message, and relative paths are taken from its folder.
 * @param options.home the home folder, for `~` in paths.
 * @throws ClientError PLUGIN_SET_INVALID listing every problem as `FILE#/pointer (line N): expected X,
 *   found Y`: text that is not one YAML document, YAML tags, a repeated key, an alias bomb, unknown keys at
 *   any level, a missing or ill-typed field, a provider or plugin named twice, a plugin naming no provider,
 *   a literal secret, and each check of the fields themselves.
 */
export function parsePluginSet(text: string, file: string, options: { readonly home: string }): PluginSet {
  const value = readYaml(text, file);
  const { problems } = value;
  const context: Context = { problems, base: path.dirname(file), home: options.home };
  const root = value.value;
  if (!isObject(root)) {
    problems.expect('', 'a plugin set (a mapping with plugins, discovery or policy)', root);
    throw problems.error();
  }
  problems.unknownFields('', root, TOP_FIELDS);
  if (root.plugins === undefined && root.discovery === undefined && root.policy === undefined)
    problems.add('', 'at least one of plugins, discovery or policy', 'none of them');

  const block = root.plugins === undefined ? undefined : readPluginsBlock(context, '/plugins', root.plugins);
  const discovery =
    root.discovery === undefined ? undefined : readDiscovery(context, '/discovery', root.discovery);
  const policy = root.policy === undefined ? undefined : readPolicy(context, '/policy', root.policy);

  const providers = block?.providers ?? [];
  const plugins = block?.plugins ?? [];
  checkProviderNames(context, [...providers, ...(discovery?.registries ?? [])]);
  // Names as written, so a provider with problems of its own does not also make its plugins unknown ones.
  const written = [
    ...writtenNames(isObject(root.plugins) ? root.plugins.providers : undefined),
    ...writtenNames(isObject(root.discovery) ? root.discovery.registries : undefined),
  ];
  checkPlugins(
    context,
    block?.references ?? [],
    plugins,
    [...providers, ...(discovery?.registries ?? [])],
    written,
  );
  if (problems.any()) throw problems.error();
  return {
    file,
    installLocation: block?.installLocation ?? path.join(context.base, 'plugins'),
    providers,
    plugins,
    ...(policy === undefined ? {} : { policy }),
    ...(discovery === undefined ? {} : { discovery }),
  };
}

/**
 * A commented starter plugin set, for `plugindex init-config`: one registry provider and one plugin live,
 * every other provider type, a policy and a discovery block shown commented out. `parsePluginSet` reads it.
 * `localUrl`: the URL a registry configured here as `local` has, written for the provider of that name (the
 * default, `plugindex serve`'s 127.0.0.1:8080, was refused ECONNREFUSED by `install -c` where `local` is
 * served elsewhere).
 */
export function initConfigText(localUrl?: string): string {
  const url =
    localUrl === undefined
      ? 'http://127.0.0.1:8080     # https: anywhere; http: only on this machine'
      : `${JSON.stringify(localUrl)}     # the URL \`plugindex registry add\` configured local at`;
  return `# A plugin set: the plugins this project installs, and where each comes from.
# Check it in; \`plugindex install -c <this file>\` installs exactly this, and the lock written beside it
# (plugins.lock for plugins.yaml) pins it: check that in too.
# Paths are relative to this file's folder ("~/" is your home folder). Never write a secret here:
# credentials are references, "\${ENV_NAME}" or "file:PATH".
plugins:
  install_location: ./plugins

  # Where plugins come from. Every provider but a configured registry pins the key that signs it.
  providers:
    - type: registry                 # a plugindex registry
      name: local
      url: ${url}
      key: ./registry.asc            # its armored public key (plugindex serve prints where it is)
      # priority: 0                  # lower is tried first
      # timeout: 30s
      # mirrors: [https://mirror.registry.example]
      # ca_file: ./ca.pem
      # auth:                        # sent only where a configured registry sends the same secret
      #   type: bearer_token         # or api_key (api_key, header), basic_auth (username, password)
      #   bearer_token: \${REGISTRY_TOKEN}

    # - type: registry               # a registry already configured with \`plugindex registry add\`
    #   name: shared

    # - type: url                    # a web folder of signed manifests: <name>/<version>/manifest.json(.asc)
    #   name: releases
    #   url: https://releases.registry.example/plugins
    #   key: ./releases.asc

    # - type: s3                     # a bucket laid out the same way
    #   name: team-bucket
    #   bucket: team-plugins
    #   prefix: plugins
    #   region: eu-west-1
    #   # endpoint: http://127.0.0.1:4569   # an S3-compatible server (signed if AWS_ENDPOINT_URL_S3 names it)
    #   key: ./team.asc

    # - type: file                   # a folder laid out the same way
    #   name: vendored
    #   path: ./vendor/plugins
    #   key: ./vendored.asc

  # The plugins, each from one provider.
  plugins:
    - provider: local
      name: kubecost-lens
      version: "^1.1"                # exact ("1.2.3"), a range, "latest" (the default) or a channel ("beta")
      # platforms: [linux/amd64, darwin/arm64]   # default: this machine's
      # output: kubecost-lens        # the installed file's name
      # install_location: ./tools
    # - provider: releases           # a url provider needs an exact version, or the manifest's path
    #   name: cost-rollup
    #   path: cost-rollup/1.0.0/manifest.json

# What a team allows (each line optional; without a policy block anything signed may be installed).
# policy:
#   permissions:
#     allow: [filesystem_read, network_client]   # only these may be asked for
#     deny: [process_spawn, host_device]
#   publishers: [0123456789ABCDEF0123456789ABCDEF01234567]   # publisher key fingerprints
#   registries: [local]                          # providers versions may come from
#   prereleases: false                           # the default once a policy is written
#   resources: { max_memory_mb: 512 }            # the highest limits a plugin may declare

# The PulumiCost spec's discovery block, read as the spec writes it.
# discovery:
#   registries:
#     - name: community
#       url: https://registry.example
#       priority: 1
#       timeout: 30s
#       key: ./community.asc         # optional: without it, the registry must be configured already
#       auth:
#         type: api_key
#         api_key: \${REGISTRY_API_KEY}
#   filesystem:
#     enabled: true
#     paths: [~/.pulumicost/plugins, ./plugins]
#     recursive: true
#     watch_for_changes: false
`;
}

interface Context {
  readonly problems: SetProblems;
  /** The set file's folder: relative paths are taken from it. */
  readonly base: string;
  readonly home: string;
}

/**
 * Problems as `FILE#/pointer (line N): expected X, found Y`: json-input's Problems, with the line where the
 * pointer is written (or its nearest written ancestor, for a field that is missing).
 */
class SetProblems extends Problems {
  readonly #lines: ReadonlyMap<string, number>;

  constructor(file: string, lines: ReadonlyMap<string, number>) {
    super(file, 'PLUGIN_SET_INVALID');
    this.#lines = lines;
  }

  override add(pointer: string, expected: string, found: string): void {
    this.atLine(this.line(pointer), pointer, expected, found);
  }

  atLine(line: number, pointer: string, expected: string, found: string): void {
    super.add(`${pointer} (line ${line})`, expected, found);
  }

  line(pointer: string): number {
    let at = pointer;
    for (;;) {
      const line = this.#lines.get(at);
      if (line !== undefined) return line;
      if (at === '') return 1;
      at = at.slice(0, at.lastIndexOf('/'));
    }
  }
}

/**
 * The file's one YAML document as plain values, with the line of every pointer. Read with the YAML 1.2
 * core schema, keys unique, no merge keys, no tags (a tag would make a value something other than what is
 * written), and alias expansion capped.
 */
function readYaml(text: string, file: string): { readonly value: unknown; readonly problems: SetProblems } {
  if (text.length > MAX_SET_FILE_CHARS) {
    const problems = new SetProblems(file, new Map());
    problems.add('', `a plugin set of at most ${MAX_SET_FILE_CHARS} characters`, `${text.length} characters`);
    throw problems.error();
  }
  // Before parsing, as a manifest is: nesting a level a byte or two ('[[[...', '- - - ...') cost the parser
  // seconds and overflowed its stack partway, and the refusal quoted a pointer as deep as the nesting.
  const deep = findDeepYamlNesting(text);
  if (deep !== undefined) {
    const problems = new SetProblems(file, new Map());
    problems.atLine(
      text.slice(0, deep).split('\n').length,
      '',
      `at most ${MAX_YAML_NESTING} levels of brackets or compact items`,
      'deeper nesting (found before parsing the file)',
    );
    throw problems.error();
  }
  const counter = new LineCounter();
  const doc = YAML.parseDocument(text, { ...STRICT_YAML, lineCounter: counter });
  const { lines, pointerAt } = locate(doc, counter);
  const problems = new SetProblems(file, lines);
  for (const error of [...doc.errors, ...doc.warnings]) {
    const line = error.linePos?.[0].line ?? 1;
    const pointer = pointerAt.get(error.pos[0]) ?? '';
    // The library's message ends with its own position ("at line 2, column 1:"), said here already.
    const message = (error.message.split('\n')[0] ?? error.message).replace(
      / at line \d+, column \d+:?$/,
      '',
    );
    const expected =
      error.code === 'DUPLICATE_KEY'
        ? 'each key once in a mapping'
        : error.code === 'MULTIPLE_DOCS'
          ? 'one YAML document'
          : 'YAML';
    problems.atLine(line, pointer, expected, `${message} (${error.code})`);
  }
  let aliases = false;
  const anchors = new YamlAnchors();
  YAML.visit(doc, {
    Node(_key, node, ancestors) {
      anchors.note(node);
      if ((YAML.isScalar(node) || YAML.isMap(node) || YAML.isSeq(node)) && node.tag) {
        const line = node.range ? counter.linePos(node.range[0]).line : 1;
        problems.atLine(line, yamlPointerOf(ancestors, node), 'plain YAML (no tags)', `the tag ${node.tag}`);
      }
    },
    Alias(_key, node, ancestors) {
      // Found here, at its place: left to toJS it is a ReferenceError at the top of the file, read as an
      // alias bomb. Its name is not repeated: `password: *…` may be a secret that starts with '*'.
      if (node.resolve(doc) === undefined) {
        const line = node.range ? counter.linePos(node.range[0]).line : 1;
        problems.atLine(
          line,
          yamlPointerOf(ancestors, node),
          'an alias of an anchor set before it (&name ... *name)',
          'an alias no anchor before it names (quote a value that starts with "*")',
        );
      } else if (isAliasLoop(ancestors, node, anchors)) {
        // No JSON holds a loop: refused where it is, not left to each reader to call an array misplaced
        // (and the expansion below is measured on a tree).
        problems.atLine(
          node.range ? counter.linePos(node.range[0]).line : 1,
          yamlPointerOf(ancestors, node),
          'an alias outside the node its anchor names',
          'an alias within the node it names (a loop)',
        );
      }
      aliases = true;
    },
  });
  if (problems.any()) throw problems.error();
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    problems.add(
      '',
      `YAML of at most ${MAX_YAML_ALIASES} alias expansions`,
      error instanceof ReferenceError
        ? `more (an alias bomb?): ${error.message}`
        : `YAML that cannot be read: ${(error as Error).message}`,
    );
    throw problems.error();
  }
  // The alias cap counts uses, not what each copies: 260 KB naming a 20,000-item list 49 times was a million
  // items to read, 13 s and a million problems. Without aliases the text's cap bounds the value; with them,
  // the value is held to the same cap, so no set is more to read than a file the cap allows.
  if (aliases && expandsPast(value, MAX_SET_FILE_CHARS)) {
    problems.add(
      '',
      `a plugin set of at most ${MAX_SET_FILE_CHARS} characters once its aliases are expanded`,
      'more (aliases copying large nodes)',
    );
    throw problems.error();
  }
  return { value, problems };
}

/**
 * Whether `value` (a tree, no loops), written out, passes `limit` characters, near enough: each string and
 * key by its length, each number, boolean or null and each item or entry as a few. Stops as soon as it does,
 * so what aliases multiply is never walked whole.
 */
function expandsPast(value: unknown, limit: number): boolean {
  let size = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') size += next.length + 2;
    else if (Array.isArray(next)) {
      size += 2;
      for (const item of next) {
        size += 1;
        if (size > limit) return true;
        pending.push(item);
      }
    } else if (typeof next === 'object' && next !== null) {
      size += 2;
      for (const [key, item] of Object.entries(next)) {
        size += key.length + 4;
        if (size > limit) return true;
        pending.push(item);
      }
    } else size += 4;
    if (size > limit) return true;
  }
  return false;
}

/** The line of every pointer written in the document, and the pointer of every key and item by offset. */
function locate(
  doc: YAML.Document,
  counter: LineCounter,
): { lines: Map<string, number>; pointerAt: Map<number, string> } {
  const lines = new Map<string, number>();
  const pointerAt = new Map<number, string>();
  const mark = (pointer: string, node: unknown): void => {
    if (!YAML.isNode(node) || !node.range) return;
    if (!lines.has(pointer)) lines.set(pointer, counter.linePos(node.range[0]).line);
    pointerAt.set(node.range[0], pointer);
  };
  const walk = (node: unknown, pointer: string): void => {
    if (YAML.isMap(node)) {
      for (const pair of node.items) {
        const key = YAML.isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const child = `${pointer}/${escapePointer(key)}`;
        mark(child, pair.key);
        mark(child, pair.value);
        walk(pair.value, child);
      }
    } else if (YAML.isSeq(node)) {
      node.items.forEach((item, index) => {
        mark(`${pointer}/${index}`, item);
        walk(item, `${pointer}/${index}`);
      });
    }
  };
  mark('', doc.contents);
  walk(doc.contents, '');
  return { lines, pointerAt };
}

function readPluginsBlock(
  context: Context,
  at: string,
  value: unknown,
):
  | {
      installLocation?: string;
      providers: SetProvider[];
      plugins: SetPlugin[];
      references: PluginReference[];
    }
  | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, 'a mapping with install_location, providers and plugins', value);
    return undefined;
  }
  problems.unknownFields(at, value, PLUGINS_BLOCK_FIELDS);
  const installLocation =
    value.install_location === undefined
      ? undefined
      : localPath(context, `${at}/install_location`, value.install_location, 'the install folder');
  const providers = list(
    context,
    `${at}/providers`,
    value.providers,
    'a list of providers',
    readProvider,
    true,
  );
  const plugins = list(context, `${at}/plugins`, value.plugins, 'a list of plugins', readPlugin, false);
  // What each plugin names, even one with problems of its own: a duplicate or an unknown provider is reported with them.
  const references: PluginReference[] = Array.isArray(value.plugins)
    ? value.plugins.flatMap((item: unknown, index) =>
        isObject(item)
          ? [
              {
                pointer: `${at}/plugins/${index}`,
                ...(typeof item.provider === 'string' ? { provider: item.provider } : {}),
                ...(typeof item.name === 'string' ? { name: item.name } : {}),
              },
            ]
          : [],
      )
    : [];
  return { ...(installLocation === undefined ? {} : { installLocation }), providers, plugins, references };
}

/** Each item of a list read by `read`, those with problems left out; a missing list is [] when `optional`. */
function list<T>(
  context: Context,
  at: string,
  value: unknown,
  expected: string,
  read: (context: Context, at: string, item: unknown) => T | undefined,
  optional: boolean,
): T[] {
  if (value === undefined && optional) return [];
  if (!Array.isArray(value)) {
    context.problems.expect(at, expected, value);
    return [];
  }
  return value.flatMap((item: unknown, index) => {
    const read_ = read(context, `${at}/${index}`, item);
    return read_ === undefined ? [] : [read_];
  });
}

function readProvider(context: Context, at: string, value: unknown): SetProvider | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, 'a provider (a mapping with type and name)', value);
    return undefined;
  }
  const type = value.type;
  if (!(PROVIDER_TYPES as readonly unknown[]).includes(type)) {
    problems.expect(`${at}/type`, `a provider type: one of ${PROVIDER_TYPES.join(', ')}`, type);
    return undefined;
  }
  const kind = type as SetProvider['type'];
  const before = problems.count();
  problems.unknownFields(at, value, PROVIDER_FIELDS[kind]);
  const name = providerName(context, `${at}/name`, value.name);
  let provider: SetProvider | undefined;
  switch (kind) {
    case 'registry':
      provider = readRegistryFields(context, at, value, false);
      break;
    case 'url': {
      const url = httpUrl(context, `${at}/url`, value.url, 'the base URL of the manifests');
      const key = keyFile(context, `${at}/key`, value.key);
      const auth = value.auth === undefined ? undefined : readAuth(context, `${at}/auth`, value.auth);
      const caFile =
        value.ca_file === undefined
          ? undefined
          : localPath(context, `${at}/ca_file`, value.ca_file, 'a CA bundle');
      provider = {
        type: kind,
        name: name as string,
        url: url as string,
        key: key as string,
        ...(auth === undefined ? {} : { auth }),
        ...(caFile === undefined ? {} : { ca_file: caFile }),
        pointer: at,
      };
      break;
    }
    case 's3':
      provider = readS3Fields(context, at, value);
      break;
    case 'file': {
      const folder = localPath(
        context,
        `${at}/path`,
        value.path,
        'the folder of plugin versions (<name>/<version>/manifest.json)',
      );
      const key = keyFile(context, `${at}/key`, value.key);
      provider = {
        type: kind,
        name: name as string,
        path: folder as string,
        key: key as string,
        pointer: at,
      };
      break;
    }
  }
  return problems.count() > before || provider === undefined ? undefined : provider;
}

/**
 * A registry's fields, in `plugins.providers` (`type: registry`, url optional: absent, the registry
 * configured by that name) or in `discovery.registries` (the spec's form: no type, url required, key
 * optional). Adds its problems; the caller tells by the count whether it may use the result.
 */
function readRegistryFields(
  context: Context,
  at: string,
  value: Record<string, unknown>,
  discovery: boolean,
): RegistryProvider | undefined {
  const { problems } = context;
  const name = discovery ? providerName(context, `${at}/name`, value.name) : (value.name as string);
  let url: string | undefined;
  if (value.url === undefined && !discovery) {
    // Named only: the configured registry, reached and trusted as configured.
    for (const field of REACH_FIELDS) {
      if (value[field] !== undefined)
        problems.add(
          `${at}/${field}`,
          `no ${field} without url (a registry named without url is the one configured by that name, reached and trusted as configured)`,
          `a ${field}`,
        );
    }
  } else {
    url = registryUrl(context, `${at}/url`, value.url, 'the registry URL');
  }
  const key =
    value.key === undefined && (discovery || value.url === undefined)
      ? undefined
      : keyFile(context, `${at}/key`, value.key);
  const priority = value.priority ?? 0;
  if (!isNonNegativeInteger(priority))
    problems.expect(`${at}/priority`, 'an integer >= 0 (lower is tried first)', priority);
  const timeout = value.timeout === undefined ? undefined : seconds(context, `${at}/timeout`, value.timeout);
  const auth = value.auth === undefined ? undefined : readAuth(context, `${at}/auth`, value.auth);
  const caFile =
    value.ca_file === undefined
      ? undefined
      : localPath(context, `${at}/ca_file`, value.ca_file, 'a CA bundle');
  const mirrors: string[] = [];
  if (value.mirrors !== undefined && !Array.isArray(value.mirrors)) {
    problems.expect(`${at}/mirrors`, 'a list of mirror URLs', value.mirrors);
  } else {
    ((value.mirrors as unknown[] | undefined) ?? []).forEach((item: unknown, index) => {
      const mirror = registryUrl(context, `${at}/mirrors/${index}`, item, 'a mirror URL');
      if (mirror === undefined) return;
      if (mirror === url || mirrors.includes(mirror)) {
        problems.add(`${at}/mirrors/${index}`, 'a URL not already the registry or another mirror', mirror);
        return;
      }
      mirrors.push(mirror);
    });
  }
  return {
    type: 'registry',
    name: name as string,
    ...(url === undefined ? {} : { url }),
    ...(key === undefined ? {} : { key }),
    priority: priority as number,
    ...(timeout === undefined ? {} : { timeout_seconds: timeout }),
    ...(auth === undefined ? {} : { auth }),
    ...(caFile === undefined ? {} : { ca_file: caFile }),
    mirrors,
    pointer: at,
  };
}

function readS3Fields(context: Context, at: string, value: Record<string, unknown>): SetProvider {
  const { problems } = context;
  const { bucket, prefix, region, endpoint } = value;
  if (typeof bucket !== 'string' || !S3_BUCKET.test(bucket) || bucket.includes('..'))
    problems.expect(
      `${at}/bucket`,
      'an S3 bucket name (3 to 63 lowercase letters, digits, "." and "-", a letter or digit at each end)',
      bucket,
    );
  let cleanPrefix = '';
  if (prefix !== undefined) {
    if (typeof prefix !== 'string') {
      problems.expect(`${at}/prefix`, 'a key prefix (a string such as "registry/prod")', prefix);
    } else {
      cleanPrefix = prefix.replace(/^\/+|\/+$/g, '');
      const problem = cleanPrefix === '' ? undefined : keyProblem(cleanPrefix);
      if (problem)
        problems.add(
          `${at}/prefix`,
          'a key prefix of safe path segments',
          `${JSON.stringify(prefix)} (${problem})`,
        );
    }
  }
  if (region !== undefined && (typeof region !== 'string' || !S3_REGION.test(region)))
    problems.expect(
      `${at}/region`,
      'a region name (lowercase letters, digits and "-", e.g. "eu-west-1")',
      region,
    );
  const url =
    endpoint === undefined ? undefined : httpUrl(context, `${at}/endpoint`, endpoint, 'an S3 endpoint URL');
  const key = keyFile(context, `${at}/key`, value.key);
  return {
    type: 's3',
    name: value.name as string,
    bucket: bucket as string,
    prefix: cleanPrefix,
    ...(region === undefined ? {} : { region: region as string }),
    ...(url === undefined ? {} : { endpoint: url }),
    key: key as string,
    pointer: at,
  };
}

function readPlugin(context: Context, at: string, value: unknown): SetPlugin | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, 'a plugin (a mapping with provider, name and version)', value);
    return undefined;
  }
  const before = problems.count();
  problems.unknownFields(at, value, PLUGIN_FIELDS);
  const { provider, name, version, platforms, output } = value;
  if (typeof provider !== 'string' || provider === '')
    problems.expect(`${at}/provider`, 'the name of a provider', provider);
  if (typeof name !== 'string') {
    problems.expect(`${at}/name`, 'a plugin name', name);
  } else {
    const problem = pluginNameFormProblem(name) ?? pluginNameProblem(name);
    if (problem) problems.add(`${at}/name`, `a plugin name (${problem})`, JSON.stringify(name));
  }
  const spec = version ?? 'latest';
  if (typeof spec !== 'string') {
    problems.expect(
      `${at}/version`,
      `${VERSION_SPEC}, as a string (quote it: version: "1.10" is not the number 1.1)`,
      spec,
    );
  } else if (specProblem(spec)) {
    problems.add(`${at}/version`, VERSION_SPEC, JSON.stringify(spec));
  }
  const readPlatforms =
    platforms === undefined ? undefined : platformList(context, `${at}/platforms`, platforms);
  if (output !== undefined) {
    const problem =
      typeof output !== 'string' ? describe(output) : output.includes('/') ? 'a "/"' : keyProblem(output);
    if (problem)
      problems.add(
        `${at}/output`,
        'a file name (one safe path segment: letters, digits, ".", "_", "-")',
        typeof output === 'string' ? `${JSON.stringify(output)} (${problem})` : problem,
      );
  }
  const installLocation =
    value.install_location === undefined
      ? undefined
      : localPath(context, `${at}/install_location`, value.install_location, 'the install folder');
  if (value.path !== undefined) {
    const problem = typeof value.path !== 'string' ? describe(value.path) : keyProblem(value.path);
    if (problem)
      problems.add(
        `${at}/path`,
        'a manifest path relative to the provider (safe segments joined by "/")',
        typeof value.path === 'string' ? `${JSON.stringify(value.path)} (${problem})` : problem,
      );
  }
  if (problems.count() > before) return undefined;
  return {
    provider: provider as string,
    name: name as string,
    version: (spec as string).trim(),
    ...(readPlatforms === undefined ? {} : { platforms: readPlatforms }),
    ...(output === undefined ? {} : { output: output as string }),
    ...(installLocation === undefined ? {} : { install_location: installLocation }),
    ...(value.path === undefined ? {} : { path: value.path as string }),
    pointer: at,
  };
}

/** Why `spec` is none of the forms `install NAME@SPEC` takes, or undefined (client/resolve.ts reads the same). */
function specProblem(spec: string): string | undefined {
  const trimmed = spec.trim();
  if (trimmed === '') return 'an empty version';
  if (isVersionSpec(trimmed)) return undefined;
  return 'not a version, range or channel';
}

function platformList(context: Context, at: string, value: unknown): Platform[] | undefined {
  const { problems } = context;
  const expected =
    'a list of platforms, OS/ARCH each (e.g. [linux/amd64, darwin/arm64]); leave it out for this host';
  if (!Array.isArray(value) || value.length === 0) {
    problems.expect(at, expected, value);
    return undefined;
  }
  const platforms: Platform[] = [];
  const first = new Map<string, number>();
  value.forEach((item: unknown, index) => {
    if (typeof item !== 'string') {
      problems.expect(`${at}/${index}`, 'a platform, OS/ARCH (e.g. linux/amd64)', item);
      return;
    }
    let platform: Platform;
    try {
      platform = parsePlatform(item);
    } catch (error) {
      problems.add(`${at}/${index}`, 'a platform, OS/ARCH (e.g. linux/amd64)', (error as Error).message);
      return;
    }
    const key = platformKey(platform);
    const earlier = first.get(key);
    if (earlier !== undefined) {
      problems.add(
        `${at}/${index}`,
        'each platform once',
        `${JSON.stringify(item)}, already ${at}/${earlier}`,
      );
      return;
    }
    first.set(key, index);
    platforms.push(platform);
  });
  return platforms;
}

function readDiscovery(context: Context, at: string, value: unknown): Discovery | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, "a mapping with registries and filesystem (the spec's discovery block)", value);
    return undefined;
  }
  problems.unknownFields(at, value, DISCOVERY_FIELDS);
  const registries = list(
    context,
    `${at}/registries`,
    value.registries,
    'a list of registries',
    (c, pointer, item) => {
      if (!isObject(item)) {
        c.problems.expect(pointer, 'a registry (a mapping with name and url)', item);
        return undefined;
      }
      const before = c.problems.count();
      c.problems.unknownFields(pointer, item, DISCOVERY_REGISTRY_FIELDS);
      const registry = readRegistryFields(c, pointer, item, true);
      return c.problems.count() > before ? undefined : registry;
    },
    true,
  );
  const filesystem =
    value.filesystem === undefined
      ? undefined
      : readFilesystem(context, `${at}/filesystem`, value.filesystem);
  return { registries, ...(filesystem === undefined ? {} : { filesystem }) };
}

function readFilesystem(context: Context, at: string, value: unknown): FilesystemDiscovery | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, 'a mapping with enabled, paths, recursive and watch_for_changes', value);
    return undefined;
  }
  problems.unknownFields(at, value, FILESYSTEM_FIELDS);
  const flag = (field: string, fallback: boolean): boolean => {
    const item = value[field] ?? fallback;
    if (typeof item !== 'boolean') problems.expect(`${at}/${field}`, 'true or false', item);
    return item === true;
  };
  const paths: string[] = [];
  if (!Array.isArray(value.paths)) {
    problems.expect(`${at}/paths`, 'a list of folders', value.paths);
  } else {
    value.paths.forEach((item: unknown, index) => {
      const folder = localPath(context, `${at}/paths/${index}`, item, 'a folder');
      if (folder === undefined) return;
      if (paths.includes(folder)) {
        problems.add(
          `${at}/paths/${index}`,
          'each folder once',
          `${JSON.stringify(item)}, the folder ${folder} again`,
        );
        return;
      }
      paths.push(folder);
    });
  }
  return {
    enabled: flag('enabled', true),
    paths,
    recursive: flag('recursive', false),
    watch_for_changes: flag('watch_for_changes', false),
  };
}

function readPolicy(context: Context, at: string, value: unknown): Policy | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, `a policy (a mapping with ${POLICY_FIELDS.join(', ')})`, value);
    return undefined;
  }
  problems.unknownFields(at, value, POLICY_FIELDS);
  let allow: Permission[] | undefined;
  let deny: Permission[] = [];
  if (value.permissions !== undefined) {
    const permissions = value.permissions;
    if (!isObject(permissions)) {
      problems.expect(`${at}/permissions`, 'a mapping with allow and deny', permissions);
    } else {
      problems.unknownFields(`${at}/permissions`, permissions, PERMISSION_FIELDS);
      allow =
        permissions.allow === undefined
          ? undefined
          : permissionList(context, `${at}/permissions/allow`, permissions.allow);
      deny =
        permissions.deny === undefined
          ? []
          : permissionList(context, `${at}/permissions/deny`, permissions.deny);
      deny.forEach((permission) => {
        if (allow?.includes(permission)) {
          const index = (permissions.deny as unknown[]).indexOf(permission);
          problems.add(
            `${at}/permissions/deny/${index}`,
            'a permission not also in allow',
            `${permission}, in both allow and deny`,
          );
        }
      });
    }
  }
  const publishers =
    value.publishers === undefined
      ? undefined
      : stringList(
          context,
          `${at}/publishers`,
          value.publishers,
          'a publisher key fingerprint (40 or 64 hex digits: an OpenPGP v4 or v6 key)',
          (s) => (KEY_FINGERPRINT.test(s.toUpperCase()) ? s.toUpperCase() : undefined),
        );
  const registries =
    value.registries === undefined
      ? undefined
      : stringList(
          context,
          `${at}/registries`,
          value.registries,
          'a provider name ([a-z0-9][a-z0-9._-]{0,63})',
          (s) => (REGISTRY_NAME.test(s) ? s : undefined),
        );
  const prereleases = value.prereleases ?? false;
  if (typeof prereleases !== 'boolean') problems.expect(`${at}/prereleases`, 'true or false', prereleases);
  const resources: Partial<Record<ResourceName, number>> = {};
  if (value.resources !== undefined) {
    if (!isObject(value.resources)) {
      problems.expect(
        `${at}/resources`,
        'a mapping of resource limits (e.g. { max_memory_mb: 512 })',
        value.resources,
      );
    } else {
      const names = Object.keys(RESOURCE_LIMITS);
      problems.unknownFields(`${at}/resources`, value.resources, names);
      for (const [name, bound] of Object.entries(value.resources)) {
        if (!names.includes(name)) continue;
        const most = RESOURCE_LIMITS[name as ResourceName];
        if (typeof bound !== 'number' || !Number.isSafeInteger(bound) || bound < 1 || bound > most)
          problems.expect(`${at}/resources/${name}`, `an integer from 1 to ${most}`, bound);
        else resources[name as ResourceName] = bound;
      }
    }
  }
  return {
    permissions: { ...(allow === undefined ? {} : { allow }), deny },
    ...(publishers === undefined ? {} : { publishers }),
    ...(registries === undefined ? {} : { registries }),
    prereleases: prereleases === true,
    resources: resources as Resources,
  };
}

function permissionList(context: Context, at: string, value: unknown): Permission[] {
  return stringList(context, at, value, `a permission name (one of ${PERMISSIONS.join(', ')})`, (s) =>
    (PERMISSIONS as readonly string[]).includes(s) ? (s as Permission) : undefined,
  );
}

/** A list of strings, each read by `read` (undefined: refused), each once. */
function stringList<T extends string>(
  context: Context,
  at: string,
  value: unknown,
  expected: string,
  read: (item: string) => T | undefined,
): T[] {
  const { problems } = context;
  if (!Array.isArray(value)) {
    problems.expect(at, `a list, each ${expected}`, value);
    return [];
  }
  const items: T[] = [];
  value.forEach((item: unknown, index) => {
    const read_ = typeof item === 'string' ? read(item) : undefined;
    if (read_ === undefined) {
      problems.expect(`${at}/${index}`, expected, item);
      return;
    }
    if (items.includes(read_)) {
      problems.add(`${at}/${index}`, 'each once', `${JSON.stringify(item)} again`);
      return;
    }
    items.push(read_);
  });
  return items;
}

/** Provider names are unique across `plugins.providers` and `discovery.registries`: plugins name them. */
function checkProviderNames(context: Context, providers: readonly SetProvider[]): void {
  const first = new Map<string, string>();
  for (const provider of providers) {
    const earlier = first.get(provider.name);
    if (earlier !== undefined) {
      context.problems.add(
        `${provider.pointer}/name`,
        'a name no other provider or discovery registry has',
        `${JSON.stringify(provider.name)}, already the name of ${earlier}`,
      );
    } else {
      first.set(provider.name, provider.pointer);
    }
  }
}

/** The provider and plugin names a plugin entry is written with, whether or not the entry reads. */
interface PluginReference {
  readonly pointer: string;
  readonly provider?: string;
  readonly name?: string;
}

/** The `name` of each mapping of a list, as written. */
function writtenNames(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item: unknown) =>
    isObject(item) && typeof item.name === 'string' ? [item.name] : [],
  );
}

/**
 * What a plugin means only beside the others and its provider: each plugin once, a provider that exists
 * (among the names `written`, so a provider with problems of its own is not reported twice), and what the
 * provider's type needs.
 */
function checkPlugins(
  context: Context,
  references: readonly PluginReference[],
  plugins: readonly SetPlugin[],
  providers: readonly SetProvider[],
  written: readonly string[],
): void {
  const { problems } = context;
  const first = new Map<string, string>();
  for (const reference of references) {
    if (reference.name !== undefined) {
      const earlier = first.get(reference.name);
      if (earlier !== undefined) {
        problems.add(
          `${reference.pointer}/name`,
          'each plugin once in a set',
          `${JSON.stringify(reference.name)}, already listed at ${earlier}`,
        );
      } else {
        first.set(reference.name, reference.pointer);
      }
    }
    if (reference.provider !== undefined && !written.includes(reference.provider)) {
      problems.add(
        `${reference.pointer}/provider`,
        written.length === 0
          ? 'the name of a provider, but the set has none (plugins.providers or discovery.registries)'
          : `the name of a provider in plugins.providers or discovery.registries (${[...new Set(written)].join(', ')})`,
        JSON.stringify(reference.provider),
      );
    }
  }
  const byName = new Map(providers.map((p) => [p.name, p]));
  for (const plugin of plugins) {
    const provider = byName.get(plugin.provider);
    if (provider?.type === 'url' && plugin.path === undefined && semver.valid(plugin.version) === null) {
      problems.add(
        `${plugin.pointer}/version`,
        `a path or an exact version (the url provider ${provider.name} lists no versions to choose from)`,
        `${JSON.stringify(plugin.version)} and no path`,
      );
    }
    if (provider?.type === 'registry' && plugin.path !== undefined) {
      problems.add(
        `${plugin.pointer}/path`,
        `no path (the registry ${provider.name} resolves NAME@VERSION itself)`,
        JSON.stringify(plugin.path),
      );
    }
  }
}

function providerName(context: Context, at: string, value: unknown): string | undefined {
  if (typeof value !== 'string' || !REGISTRY_NAME.test(value)) {
    context.problems.expect(at, 'a provider name ([a-z0-9][a-z0-9._-]{0,63})', value);
    return undefined;
  }
  return value;
}

/** A path in the file, made absolute: `~` or `~/…` from the home folder, a relative one from the file's folder. */
function localPath(context: Context, at: string, value: unknown, what: string): string | undefined {
  const expected = `${what} (a path, relative to the set file's folder; ~/ for the home folder)`;
  if (typeof value !== 'string' || value.trim() === '' || value.includes('\0')) {
    context.problems.expect(at, expected, value);
    return undefined;
  }
  if (value === '~' || value.startsWith('~/')) return path.resolve(context.home, value.slice(2));
  if (value.startsWith('~')) {
    context.problems.add(at, `${expected}; ~user is not expanded`, JSON.stringify(value));
    return undefined;
  }
  return path.resolve(context.base, value);
}

function keyFile(context: Context, at: string, value: unknown): string | undefined {
  return localPath(context, at, value, 'the armored public key that signs what the provider serves');
}

/** A registry or mirror URL, as config.json takes one (https:, loopback http:, file:), normalized. */
function registryUrl(context: Context, at: string, value: unknown, what: string): string | undefined {
  if (typeof value !== 'string') {
    context.problems.expect(at, `${what} (https:, http: on this machine only, or file:)`, value);
    return undefined;
  }
  const problem = registryUrlProblem(value);
  if (problem) {
    // The URL is not repeated: it may carry credentials.
    context.problems.add(at, `${what} (https:, http: on this machine only, or file:)`, problem);
    return undefined;
  }
  return normalizeRegistryUrl(value);
}

/** An http(s) URL (loopback for http:), normalized: `url` providers and S3 endpoints; a folder is a `file` provider. */
function httpUrl(context: Context, at: string, value: unknown, what: string): string | undefined {
  const url = registryUrl(context, at, value, what);
  if (url?.startsWith('file:')) {
    context.problems.add(
      at,
      `${what} (https:, or http: on this machine only)`,
      'a file: URL (a folder is a file provider)',
    );
    return undefined;
  }
  return url;
}

/** A timeout as the spec writes it (`30s`, `2m`, `1m30s`) or a number of seconds, in seconds. */
function seconds(context: Context, at: string, value: unknown): number | undefined {
  let total: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value)) total = value;
  else if (typeof value === 'string' && DURATION.test(value.trim()))
    total = [...value.trim().matchAll(DURATION_PART)].reduce(
      (sum, [, amount, unit]) => sum + Number(amount) * (SECONDS_PER_UNIT[unit as string] ?? 0),
      0,
    );
  if (total === undefined || !(total > 0)) {
    context.problems.expect(at, 'a timeout above zero: "30s", "2m", "1m30s" or a number of seconds', value);
    return undefined;
  }
  return total;
}

/**
 * `auth` in config.json's shape (client/config.ts RegistryAuth), or the spec's `type: none` (no auth, read as
 * undefined). Secrets only as references; a relative `file:PATH` is made absolute from the file's folder, so
 * the reference means the same whatever folder a command runs in.
 */
function readAuth(context: Context, at: string, value: unknown): RegistryAuth | undefined {
  const { problems } = context;
  if (!isObject(value)) {
    problems.expect(at, 'an auth mapping (type and its fields)', value);
    return undefined;
  }
  const type = value.type;
  if (!(AUTH_TYPES as readonly unknown[]).includes(type)) {
    problems.expect(`${at}/type`, `an auth type: one of ${AUTH_TYPES.join(', ')}`, type);
    return undefined;
  }
  const kind = type as (typeof AUTH_TYPES)[number];
  problems.unknownFields(at, value, AUTH_FIELDS[kind]);
  const reference = (field: string): string => {
    const expected = `a secret reference, "\${ENV_NAME}" or "file:PATH"`;
    const item = value[field];
    if (typeof item !== 'string') {
      // Never the value: a number written here is the secret as much as a string is.
      problems.add(`${at}/${field}`, expected, describeSecretField(item));
      return '';
    }
    const problem = secretRefProblem(item);
    if (problem) {
      // Never the value: it may be the secret itself.
      const found = problem.startsWith('a literal secret')
        ? 'a literal secret (a plugin set is checked in; it never holds one)'
        : problem;
      problems.add(`${at}/${field}`, expected, found);
      return '';
    }
    if (!item.startsWith('file:')) return item;
    const file = item.slice('file:'.length);
    const absolute =
      file === '~' || file.startsWith('~/')
        ? path.resolve(context.home, file.slice(2))
        : path.resolve(context.base, file);
    return `file:${absolute}`;
  };
  switch (kind) {
    case 'none':
      return undefined;
    case 'bearer_token':
      return { type: kind, bearer_token: reference('bearer_token') };
    case 'api_key': {
      const header = value.header;
      if (header !== undefined && (typeof header !== 'string' || !HEADER_NAME.test(header)))
        problems.expect(`${at}/header`, 'an HTTP header name (default X-API-Key)', header);
      return {
        type: kind,
        api_key: reference('api_key'),
        ...(typeof header === 'string' ? { header } : {}),
      };
    }
    case 'basic_auth': {
      const username = value.username;
      if (typeof username !== 'string' || username === '' || username.includes(':'))
        problems.expect(`${at}/username`, 'a user name (a non-empty string without ":")', username);
      return { type: kind, username: username as string, password: reference('password') };
    }
  }
}
