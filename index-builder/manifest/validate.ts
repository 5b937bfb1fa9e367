/**
 * Manifest validation: structural limits first (forbidden keys, depth, text every reader reads alike,
 * numbers every reader holds exactly), then our JSON Schema through ajv, then the rules a schema cannot say
 * (among them: every key the version would be written under passes the stores' own check). Every problem is
 * reported at once, each with a stable code and the JSON pointer of the field.
 */
import type { ErrorObject } from 'ajv';
import validVersion from 'semver/functions/valid.js';
import validRange from 'semver/ranges/valid.js';
import { normalizeDigest } from '../digest.ts';
import {
  escapePointer,
  MAX_REPORTED_PROBLEMS,
  type Problem,
  type ProblemCode,
  problem,
  SubmissionError,
} from '../errors.ts';
import {
  artifactKey,
  artifactPathProblem,
  keyProblem,
  manifestKey,
  pluginNameFormProblem,
  pluginNameProblem,
  SAFE_RELATIVE_PATH_PATTERN,
} from '../layout.ts';
import { LIBC_OS, type Manifest, RESOURCE_LIMITS, UNIVERSAL_ARCH, UNIVERSAL_ARCHES } from '../model.ts';
import { OCI_DIGEST_PATTERN, parseOciReference } from '../oci.ts';
import { type TextProblemKind, textProblem } from '../text.ts';
import validateGenerated from './validator.generated.js';

/** Deepest nesting of objects and arrays accepted. */
export const MAX_MANIFEST_DEPTH = 16;
/** Keys that could reach Object.prototype through careless merging downstream. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const TEXT_CODES: Record<TextProblemKind, ProblemCode> = {
  control: 'MANIFEST_CONTROL_CHARACTER',
  unicode: 'MANIFEST_INVALID_UNICODE',
  unsafe: 'MANIFEST_UNSAFE_CHARACTER',
};
const SAFE_RELATIVE_PATH = new RegExp(SAFE_RELATIVE_PATH_PATTERN);
/** An artifact's `sha256` as the schema accepts it (the rules compare only well-formed digests). */
const DIGEST_FORM = /^(sha256:)?[a-fA-F0-9]{64}$/;
const OCI_DIGEST = new RegExp(OCI_DIGEST_PATTERN);

// Precompiled by ajv at build time (standalone.ts, `npm run generate`): a cold start imports a function
// instead of compiling the schema, and a test fails if it falls out of step with schema.ts.
const validateSchema = validateGenerated;

function short(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function valueAt(root: unknown, pointer: string): unknown {
  if (pointer === '') return root;
  let current: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    // Most segments escape nothing: two replaces each cost more than the walk (15 pointers a manifest).
    const segment = raw.includes('~') ? raw.replace(/~1/g, '/').replace(/~0/g, '~') : raw;
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/** Walks the value without recursion limits of its own: stops descending past the depth limit. */
function checkStructure(value: unknown): Problem[] {
  const problems: Problem[] = [];
  const stack: { node: unknown; path: string; depth: number }[] = [{ node: value, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { node, path, depth } = stack.pop() as { node: unknown; path: string; depth: number };
    if (typeof node === 'string') {
      const text = textProblem(node);
      if (text) problems.push(textIssue(text.kind, path, `${text.why} (${text.character}) in text`));
      continue;
    }
    if (typeof node === 'number') {
      // JSON.parse turned 1e400 into Infinity; past 2^53 integers are rounded by some readers, not others.
      if (!Number.isFinite(node) || (Number.isInteger(node) && !Number.isSafeInteger(node))) {
        problems.push(
          problem('MANIFEST_NUMBER_UNSAFE', path, 'the number is beyond what every reader holds exactly', {
            expected: `an integer within ±${Number.MAX_SAFE_INTEGER}, or a decimal a 64-bit float holds`,
            found: String(node),
          }),
        );
      }
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= MAX_MANIFEST_DEPTH) {
      problems.push(
        problem('MANIFEST_TOO_DEEP', path, 'the manifest is nested too deeply', {
          expected: `at most ${MAX_MANIFEST_DEPTH} levels`,
        }),
      );
      continue;
    }
    const entries: [string, unknown][] = Array.isArray(node)
      ? node.map((v, i) => [String(i), v])
      : Object.keys(node).map((k) => [k, (node as Record<string, unknown>)[k]]);
    for (const [key, child] of entries) {
      const childPath = `${path}/${escapePointer(key)}`;
      if (!Array.isArray(node)) {
        if (FORBIDDEN_KEYS.has(key)) {
          problems.push(
            problem('MANIFEST_FORBIDDEN_KEY', childPath, `the key "${key}" is not allowed`, {
              expected: 'any key except __proto__, constructor, prototype',
            }),
          );
          continue;
        }
        const text = textProblem(key);
        if (text) problems.push(textIssue(text.kind, childPath, `${text.why} (${text.character}) in a key`));
      }
      stack.push({ node: child, path: childPath, depth: depth + 1 });
    }
  }
  return problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function textIssue(kind: TextProblemKind, path: string, message: string): Problem {
  return problem(TEXT_CODES[kind], path, message, {
    expected: 'printable Unicode text (tab, line feed and carriage return allowed)',
  });
}

const KEYWORD_CODES: Record<string, ProblemCode> = {
  required: 'MANIFEST_MISSING_FIELD',
  type: 'MANIFEST_WRONG_TYPE',
  pattern: 'MANIFEST_PATTERN_MISMATCH',
  enum: 'MANIFEST_NOT_ALLOWED_VALUE',
  const: 'MANIFEST_NOT_ALLOWED_VALUE',
  minLength: 'MANIFEST_STRING_TOO_SHORT',
  maxLength: 'MANIFEST_STRING_TOO_LONG',
  minItems: 'MANIFEST_TOO_FEW_ITEMS',
  maxItems: 'MANIFEST_TOO_MANY_ITEMS',
  uniqueItems: 'MANIFEST_DUPLICATE_ITEMS',
  format: 'MANIFEST_INVALID_FORMAT',
  minimum: 'MANIFEST_OUT_OF_RANGE',
  maximum: 'MANIFEST_OUT_OF_RANGE',
  additionalProperties: 'MANIFEST_UNKNOWN_FIELD',
};

/** An OCI artifact's missing digest: a tag alone is not enough, and the message says why. */
const OCI_POINTER = /^\/installation\/artifacts\/\d+\/oci$/;
const SCAN_POINTER = '/security_scan_results';
const SCAN_VULNERABILITY_POINTER = /^\/security_scan_results\/vulnerabilities\/\d+$/;
/** The fields of the closed objects, named when an unknown one is refused. */
function knownFields(pointer: string): readonly string[] {
  if (pointer === '/resources') return Object.keys(RESOURCE_LIMITS);
  if (OCI_POINTER.test(pointer)) return ['reference', 'digest'];
  if (pointer === SCAN_POINTER) return ['status', 'vulnerabilities', 'last_scan', 'scan_version'];
  if (SCAN_VULNERABILITY_POINTER.test(pointer)) return ['id', 'severity', 'summary', 'url'];
  return [];
}

/** An ajv error's code and pointer, as fromAjv gives them: what tells two problems apart. */
function codeAndPath(error: ErrorObject): { readonly code: ProblemCode; readonly path: string } {
  const code = KEYWORD_CODES[error.keyword] ?? 'MANIFEST_INVALID';
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required')
    return { code, path: `${error.instancePath}/${escapePointer(String(params.missingProperty))}` };
  if (error.keyword === 'additionalProperties')
    return { code, path: `${error.instancePath}/${escapePointer(String(params.additionalProperty))}` };
  return { code, path: error.instancePath };
}

function fromAjv(error: ErrorObject, root: unknown): Problem {
  const { code, path } = codeAndPath(error);
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'required') {
    const field = String(params.missingProperty);
    const ociDigest = field === 'digest' && OCI_POINTER.test(error.instancePath);
    return problem(
      code,
      path,
      ociDigest
        ? 'the required field "digest" is missing: a tag alone can move, so an OCI artifact is pinned by its digest'
        : `the required field "${field}" is missing`,
      {
        expected: ociDigest
          ? 'sha256:<64 lowercase hex>, the digest of the pushed blob'
          : `a value for ${field}`,
      },
    );
  }
  if (error.keyword === 'additionalProperties') {
    // Only where we close an object (resources, oci, the security scan): elsewhere unknown fields are the
    // spec's forward compatibility. The pointer names the unknown key itself.
    const field = String(params.additionalProperty);
    const allowed = knownFields(error.instancePath);
    return problem(code, path, `"${field}" is not a known field here`, {
      expected: allowed.length > 0 ? `one of ${allowed.join(', ')}` : 'no other field',
      found: short(field),
    });
  }
  const found = short(valueAt(root, error.instancePath));
  const expected: Record<string, string> = {
    type: `a value of type ${String(params.type)}`,
    pattern: `text matching ${String(params.pattern)}`,
    enum: `one of ${Array.isArray(params.allowedValues) ? params.allowedValues.join(', ') : ''}`,
    minLength: `at least ${String(params.limit)} characters`,
    maxLength: `at most ${String(params.limit)} characters`,
    minItems: `at least ${String(params.limit)} items`,
    maxItems: `at most ${String(params.limit)} items`,
    uniqueItems: 'no repeated items',
    format: `a valid ${String(params.format)}`,
    minimum: `a number >= ${String(params.limit)}`,
    maximum: `a number <= ${String(params.limit)}`,
  };
  const what = error.instancePath || 'the manifest';
  return problem(code, error.instancePath, `${what} ${error.message ?? 'is invalid'}`, {
    expected: expected[error.keyword] ?? 'a valid value',
    found,
  });
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

const URL_FIELDS: readonly (readonly string[])[] = [
  ['installation', 'binary_url'],
  ['installation', 'install_script'],
  ['configuration', 'schema_url'],
  ['contacts', 'support_url'],
  ['contacts', 'documentation_url'],
  ['metadata', 'homepage'],
  ['metadata', 'repository'],
  ['metadata', 'release_notes_url'],
];

function urlProblems(manifest: Record<string, unknown>): Problem[] {
  const candidates: [string, unknown][] = URL_FIELDS.map((path) => [
    `/${path.join('/')}`,
    valueAt(manifest, `/${path.join('/')}`),
  ]);
  const maintainers = valueAt(manifest, '/contacts/maintainers');
  if (Array.isArray(maintainers)) {
    maintainers.forEach((m, i) => {
      candidates.push([`/contacts/maintainers/${i}/url`, (m as Record<string, unknown>)?.url]);
    });
  }
  const artifacts = valueAt(manifest, '/installation/artifacts');
  if (Array.isArray(artifacts)) {
    artifacts.forEach((a, i) => {
      candidates.push([`/installation/artifacts/${i}/url`, (a as Record<string, unknown>)?.url]);
    });
  }
  const vulnerabilities = valueAt(manifest, `${SCAN_POINTER}/vulnerabilities`);
  if (Array.isArray(vulnerabilities)) {
    vulnerabilities.forEach((v, i) => {
      candidates.push([`${SCAN_POINTER}/vulnerabilities/${i}/url`, (v as Record<string, unknown>)?.url]);
    });
  }
  const problems: Problem[] = [];
  for (const [path, value] of candidates) {
    if (typeof value !== 'string') continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      continue; // the schema's uri format reports it
    }
    if (url.username !== '' || url.password !== '' || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) {
      // `https://github.com@evil.example/x` is evil.example, and a page shows it as its link's text: it
      // reads as the host before the `@`. (Credentials have no place in a public manifest either; the
      // client refuses them in a registry's URL alike.)
      problems.push(
        problem('MANIFEST_URL_CREDENTIALS', path, 'URLs may not hold user information (name@host)', {
          expected: 'an https: URL without user information before its host',
          found: short(value),
        }),
      );
      continue;
    }
    if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname))) continue;
    problems.push(
      problem('MANIFEST_INSECURE_URL', path, 'URLs must use https (http only for loopback hosts)', {
        expected: 'an https: URL',
        found: short(value),
      }),
    );
  }
  return problems;
}

/**
 * The name, and every key the version would be written under, checked with the stores' own key check
 * (layout.ts), so what validation accepts every store can write; artifact paths that collide with the
 * registry's own files or routes are refused.
 */
function pathProblems(value: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const { name, version } = value;
  const nameOk = typeof name === 'string' && pluginNameFormProblem(name) === undefined;
  if (nameOk) {
    const reserved = pluginNameProblem(name);
    if (reserved)
      problems.push(
        problem('MANIFEST_RESERVED_NAME', '/name', reserved, {
          expected: 'another plugin name',
          found: name,
        }),
      );
  }
  const versionOk = typeof version === 'string' && validVersion(version) !== null;
  if (nameOk && versionOk) {
    const why = keyProblem(manifestKey(name, version));
    if (why)
      problems.push(
        problem('MANIFEST_UNSAFE_PATH', '/version', `the version cannot be a folder name: ${why}`, {
          found: short(version),
        }),
      );
  }
  const artifacts = valueAt(value, '/installation/artifacts');
  if (!Array.isArray(artifacts)) return problems;
  artifacts.forEach((raw, i) => {
    const file = (raw as Record<string, unknown> | null)?.file;
    if (typeof file !== 'string' || !SAFE_RELATIVE_PATH.test(file)) return; // the schema reports it
    const at = `/installation/artifacts/${i}/file`;
    const reserved = artifactPathProblem(file);
    if (reserved)
      problems.push(
        problem('MANIFEST_RESERVED_PATH', at, reserved, {
          expected: 'a file name the registry does not use itself',
          found: short(file),
        }),
      );
    const why = nameOk && versionOk ? keyProblem(artifactKey(name, version, file)) : undefined;
    if (why)
      problems.push(
        problem('MANIFEST_UNSAFE_PATH', at, `the artifact cannot be stored under this path: ${why}`, {
          expected: 'segments of letters, digits, ".", "_" and "-", not ending with "."',
          found: short(file),
        }),
      );
  });
  return problems;
}

/**
 * An OCI artifact names one blob three times: its `sha256` (what a client checks the bytes against), its
 * `oci.digest` (what it pulls), and perhaps a digest in `oci.reference`. All three must agree, or a client
 * would pull one blob and check it against another.
 */
function ociProblems(artifact: Record<string, unknown>, i: number): Problem[] {
  const oci = artifact.oci as Record<string, unknown> | undefined;
  if (typeof oci !== 'object' || oci === null) return [];
  const at = `/installation/artifacts/${i}/oci`;
  const { digest, reference } = oci;
  const problems: Problem[] = [];
  const sha256 = artifact.sha256;
  if (
    typeof digest === 'string' &&
    OCI_DIGEST.test(digest) &&
    typeof sha256 === 'string' &&
    DIGEST_FORM.test(sha256)
  ) {
    const expected = `sha256:${normalizeDigest(sha256)}`;
    if (digest !== expected)
      problems.push(
        problem(
          'MANIFEST_OCI_DIGEST_MISMATCH',
          `${at}/digest`,
          "the OCI digest is not the artifact's sha256",
          {
            expected,
            found: short(digest),
          },
        ),
      );
  }
  const pinned = typeof reference === 'string' ? parseOciReference(reference)?.digest : undefined;
  if (pinned !== undefined && typeof digest === 'string' && OCI_DIGEST.test(digest) && pinned !== digest)
    problems.push(
      problem(
        'MANIFEST_OCI_REFERENCE_DIGEST',
        `${at}/reference`,
        'the reference pins another digest than oci.digest',
        { expected: `@${digest}`, found: `@${pinned}` },
      ),
    );
  return problems;
}

/**
 * A scan result says one thing: a vulnerability listed twice would be counted twice, and a `secure` scan
 * that lists vulnerabilities contradicts itself (a page would show both).
 */
function scanProblems(value: Record<string, unknown>): Problem[] {
  const scan = value.security_scan_results;
  if (typeof scan !== 'object' || scan === null || Array.isArray(scan)) return [];
  const { status, vulnerabilities } = scan as Record<string, unknown>;
  if (!Array.isArray(vulnerabilities)) return [];
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  vulnerabilities.forEach((raw, i) => {
    const id = (raw as Record<string, unknown> | null)?.id;
    if (typeof id !== 'string') return;
    const first = seen.get(id);
    if (first === undefined) seen.set(id, i);
    else
      problems.push(
        problem(
          'MANIFEST_DUPLICATE_ITEMS',
          `${SCAN_POINTER}/vulnerabilities/${i}/id`,
          `"${id}" is listed twice`,
          {
            expected: `each vulnerability once (the first is ${SCAN_POINTER}/vulnerabilities/${first})`,
            found: short(id),
          },
        ),
      );
  });
  if (status === 'secure' && vulnerabilities.length > 0)
    problems.push(
      problem(
        'MANIFEST_SCAN_INCONSISTENT',
        `${SCAN_POINTER}/status`,
        `the scan says "secure" but lists ${vulnerabilities.length} vulnerabilit${vulnerabilities.length === 1 ? 'y' : 'ies'}`,
        { expected: '"vulnerable" (or no vulnerabilities listed)', found: '"secure"' },
      ),
    );
  return problems;
}

/**
 * Whether a SemVer version's prerelease holds a numeric identifier past 2^53 - 1. semver takes such an
 * identifier as text, then compares two of them as JavaScript numbers, rounded: `1.0.0-9007199254740993` and
 * `1.0.0-9007199254740992` are one precedence to it (and to the registry's ordering, latest and ranges),
 * where SemVer, and readers that compare digits, order them. Its major, minor and patch past it semver
 * refuses already. Build metadata does not order anything.
 */
function unsafePrereleaseNumber(version: string): boolean {
  const prerelease = /^[^-+]*-([^+]*)/.exec(version)?.[1];
  if (prerelease === undefined) return false;
  return prerelease.split('.').some((id) => /^\d+$/.test(id) && !Number.isSafeInteger(Number(id)));
}

/** Rules beyond the schema; each looks only at fields of the right type, so it adds to schema errors. */
function ruleProblems(value: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const version = value.version;
  if (
    typeof version === 'string' &&
    version.length <= 256 &&
    /^\d+\.\d+\.\d+/.test(version) &&
    validVersion(version) === null
  ) {
    problems.push(
      problem('MANIFEST_INVALID_VERSION', '/version', 'the version is not SemVer 2.0.0', {
        found: short(version),
      }),
    );
  } else if (typeof version === 'string' && unsafePrereleaseNumber(version)) {
    problems.push(
      problem(
        'MANIFEST_INVALID_VERSION',
        '/version',
        `the version has a numeric prerelease identifier past ${Number.MAX_SAFE_INTEGER}, which SemVer readers compare differently (semver rounds it: two such versions compare equal)`,
        { expected: `numeric identifiers of at most ${Number.MAX_SAFE_INTEGER}`, found: short(version) },
      ),
    );
  }
  const requirements = (value.requirements ?? {}) as Record<string, unknown>;
  if (Array.isArray(requirements.dependencies)) {
    requirements.dependencies.forEach((dep, i) => {
      const range = (dep as Record<string, unknown>)?.version;
      if (typeof range === 'string' && validRange(range) === null) {
        problems.push(
          problem(
            'MANIFEST_INVALID_DEPENDENCY_RANGE',
            `/requirements/dependencies/${i}/version`,
            'the dependency version range does not parse',
            {
              expected: 'a SemVer range such as ">=1.44.0" or "^2.1.0"',
              found: short(range),
            },
          ),
        );
      }
    });
  }
  const api = (v: unknown): number | undefined =>
    typeof v === 'string' && /^v[1-9]\d*$/.test(v) ? Number(v.slice(1)) : undefined;
  const min = api(requirements.min_api_version);
  const max = api(requirements.max_api_version);
  if (min !== undefined && max !== undefined && min > max) {
    problems.push(
      problem(
        'MANIFEST_API_VERSION_RANGE',
        '/requirements/min_api_version',
        'min_api_version is greater than max_api_version',
        {
          expected: `at most ${String(requirements.max_api_version)}`,
          found: String(requirements.min_api_version),
        },
      ),
    );
  }
  problems.push(...urlProblems(value), ...pathProblems(value), ...scanProblems(value));
  const artifacts = valueAt(value, '/installation/artifacts');
  if (Array.isArray(artifacts)) {
    const platforms = new Map<string, number>();
    artifacts.forEach((raw, i) => {
      if (typeof raw !== 'object' || raw === null) return;
      const a = raw as Record<string, unknown>;
      const sources = (['file', 'url', 'oci'] as const).filter((k) => a[k] !== undefined);
      if (sources.length !== 1) {
        problems.push(
          problem(
            'MANIFEST_ARTIFACT_SOURCE',
            `/installation/artifacts/${i}`,
            sources.length === 0
              ? 'an artifact has none of file, url and oci'
              : `an artifact has both ${sources.join(' and ')}`,
            {
              expected:
                'exactly one of file (carried in the bundle), url (hosted elsewhere) or oci (in an OCI registry)',
              found: sources.length === 0 ? 'none' : sources.join(', '),
            },
          ),
        );
      }
      problems.push(...ociProblems(a, i));
      // A universal build is one file for several arches of an OS that has such files (macOS'): named for
      // another OS it would be a file no host of that OS is chosen for (resolve.ts artifactFor).
      if (a.arch === UNIVERSAL_ARCH && typeof a.os === 'string' && !Object.hasOwn(UNIVERSAL_ARCHES, a.os)) {
        problems.push(
          problem(
            'MANIFEST_UNIVERSAL_ARCH',
            `/installation/artifacts/${i}/arch`,
            `arch "${UNIVERSAL_ARCH}" names one file for several arches, which ${a.os} has no form of`,
            {
              expected: `"${UNIVERSAL_ARCH}" only with os ${Object.keys(UNIVERSAL_ARCHES).join(', ')}; one artifact per arch for ${a.os}`,
              found: `${a.os}/${UNIVERSAL_ARCH}`,
            },
          ),
        );
      }
      // A C library is a Linux build's: no other OS's artifacts differ by one.
      if (a.libc !== undefined && typeof a.os === 'string' && a.os !== LIBC_OS) {
        problems.push(
          problem(
            'MANIFEST_LIBC_NOT_LINUX',
            `/installation/artifacts/${i}/libc`,
            `libc names the C library of a ${LIBC_OS} build, and this artifact is for ${a.os}`,
            { expected: `no libc for ${a.os}`, found: short(a.libc) },
          ),
        );
      }
      if (typeof a.os === 'string' && typeof a.arch === 'string') {
        const libc = typeof a.libc === 'string' ? `/${a.libc}` : '';
        const platform = `${a.os}/${a.arch}${libc}`;
        const first = platforms.get(platform);
        if (first !== undefined) {
          problems.push(
            problem(
              'MANIFEST_DUPLICATE_PLATFORM',
              `/installation/artifacts/${i}`,
              `a second artifact for ${platform}`,
              {
                expected: `one artifact per platform and C library (the first is /installation/artifacts/${first})`,
              },
            ),
          );
        } else {
          platforms.set(platform, i);
        }
        // Older clients take the signed manifest's first artifact of an os/arch as the one the plugin
        // document lists (verify.ts verifyManifest): a musl build first would make every one of their
        // installs of the version fail, the glibc build's digest held to the musl one's.
        const glibc = platforms.get(`${a.os}/${a.arch}`);
        if (libc === '' && glibc === i) {
          const before = [...platforms].find(([key, at]) => key.startsWith(`${a.os}/${a.arch}/`) && at < i);
          if (before !== undefined) {
            problems.push(
              problem(
                'MANIFEST_LIBC_ORDER',
                `/installation/artifacts/${before[1]}`,
                `the ${before[0]} artifact is listed before the glibc one of ${a.os}/${a.arch} (/installation/artifacts/${i}), which clients before libc support take as the first of its platform`,
                { expected: `the artifact without libc first, then /installation/artifacts/${i}'s others` },
              ),
            );
          }
        }
      }
    });
  }
  return problems;
}

/** Every problem with a parsed manifest value; an empty list means it is valid. */
export function validateManifest(value: unknown): Problem[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [problem('MANIFEST_NOT_OBJECT', '', 'the manifest must be an object', { found: short(value) })];
  }
  const structural = checkStructure(value);
  // Too deep to walk safely: the schema and rules would only repeat the noise.
  if (structural.some((p) => p.code === 'MANIFEST_TOO_DEEP')) return structural;
  const problems = [...structural];
  if (!validateSchema(value)) {
    const seen = new Set<string>();
    for (const error of validateSchema.errors ?? []) {
      const { code, path } = codeAndPath(error);
      const key = `${code} ${path}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // Past what a report lists (boundProblems), a problem is counted, never shown: its words (the value
      // found, what was expected) are not written out, which cost more than the check itself 80,000 times
      // over in a manifest of 40,000 wrong items.
      problems.push(
        problems.length < MAX_REPORTED_PROBLEMS
          ? fromAjv(error, value)
          : problem(code, path, 'not as the schema says (past the problems a report lists)'),
      );
    }
  }
  problems.push(...ruleProblems(value as Record<string, unknown>));
  return problems;
}

/** Narrows a value to a Manifest or throws with every problem. */
export function assertManifest(value: unknown): asserts value is Manifest {
  const problems = validateManifest(value);
  if (problems.length > 0) throw new SubmissionError('INVALID_MANIFEST', problems);
}
