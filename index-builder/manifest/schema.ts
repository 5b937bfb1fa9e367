/**
 * Our JSON Schema (2020-12) for a plugin manifest. It enforces the rules of the PulumiCost manifest schema
 * v1.0.0 with three deliberate differences:
 * - unknown fields are allowed everywhere (the spec's forward-compatibility rule: preserved, ignored);
 * - `installation.checksum` (and artifact digests) accept both `<hex>` and `sha256:<hex>`, the two forms
 *   real publishers write;
 * - names are 2-64 characters of lowercase letters and digits separated by single hyphens;
 * plus limits on every string, number and list, and our extensions: `installation.artifacts` for per-platform
 * binaries (carried in the bundle, at a URL, or in an OCI registry pinned by digest), and the top-level
 * `permissions` and `resources` a plugin declares (known names only: a name the host does not know would be
 * granted or limited by no one); the spec's `security_scan_results` is closed too (known fields only). An artifact's `file` is a safe path by the one definition stores use (layout.ts); the rules in
 * validate.ts check every key a version would be written under with the stores' own check.
 */
import { MAX_SEGMENT_LENGTH, SAFE_RELATIVE_PATH_PATTERN } from '../layout.ts';
import { LIBC_VALUES, PERMISSIONS, RESOURCE_LIMITS, SCAN_STATUSES, SEVERITIES } from '../model.ts';
import { OCI_DIGEST_PATTERN, OCI_REFERENCE_PATTERN } from '../oci.ts';

const SEMVER =
  '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$';
const API_VERSION = '^v[1-9]\\d*$';
const DIGEST = '^(sha256:)?[a-fA-F0-9]{64}$';
/**
 * Largest size a manifest may state: 2^53 - 1, the largest integer every JSON reader holds exactly (a
 * JavaScript number, a Go float64 and an int64 alike).
 */
const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER;

export const OS_ENUM = ['linux', 'windows', 'darwin', 'freebsd'];
export const ARCH_ENUM = ['amd64', 'arm64', '386', 'arm'];
/** An artifact's arch (our extension): the spec's, and `universal` (validate.ts holds it to darwin). */
export const ARTIFACT_ARCH_ENUM = [...ARCH_ENUM, 'universal'];
export const CAPABILITIES = [
  'actual_cost',
  'projected_cost',
  'pricing_spec',
  'real_time_cost',
  'historical_cost',
  'cost_forecasting',
  'cost_optimization',
  'budget_alerts',
  'custom_metrics',
  'multi_cloud',
  'kubernetes_native',
  'tagging_support',
  'drill_down',
  'cost_allocation',
  'showback',
  'chargeback',
];
export const PROVIDERS = ['aws', 'azure', 'gcp', 'kubernetes', 'alibaba', 'oracle', 'ibm', 'custom'];
export const AUTH_METHODS = [
  'api_key',
  'oauth2',
  'service_account',
  'iam_role',
  'mutual_tls',
  'basic_auth',
  'bearer_token',
];

const MAX_STRING = 4096;
const MAX_ITEMS = 256;

const text = (maxLength = MAX_STRING, minLength?: number) => ({
  type: 'string',
  maxLength,
  ...(minLength !== undefined ? { minLength } : {}),
});
const uri = { type: 'string', format: 'uri', maxLength: 2048 };
const list = (items: object, extra: object = {}) => ({ type: 'array', items, maxItems: MAX_ITEMS, ...extra });
const enumList = (values: readonly string[]) => list({ type: 'string', enum: values }, { uniqueItems: true });

/** Each resource limit a positive integer up to its bound; no other key (a misspelt limit would limit nothing). */
const RESOURCES = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    Object.entries(RESOURCE_LIMITS).map(([name, max]) => [
      name,
      { type: 'integer', minimum: 1, maximum: max },
    ]),
  ),
};

/** Most vulnerabilities a scan result may list: a scan that finds more says `vulnerable` and links its report. */
export const MAX_SCAN_VULNERABILITIES = 256;

/**
 * The spec's `security_scan_results`, carried into the version's record and shown on its page. Closed, as
 * `resources` is: a misspelt field (`vulnerabilites`) would silently show a scan without its findings.
 */
const SECURITY_SCAN = {
  type: 'object',
  required: ['status', 'vulnerabilities'],
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: SCAN_STATUSES },
    vulnerabilities: {
      type: 'array',
      maxItems: MAX_SCAN_VULNERABILITIES,
      items: {
        type: 'object',
        required: ['id'],
        additionalProperties: false,
        properties: {
          id: text(128, 1),
          severity: { type: 'string', enum: SEVERITIES },
          summary: text(1024, 1),
          url: uri,
        },
      },
    },
    last_scan: { type: 'string', format: 'date-time' },
    scan_version: text(128, 1),
  },
};

/** Where an artifact is kept in an OCI registry; the digest is required, as a tag alone can move. */
const OCI = {
  type: 'object',
  required: ['reference', 'digest'],
  additionalProperties: false,
  properties: {
    reference: { type: 'string', maxLength: 512, pattern: OCI_REFERENCE_PATTERN },
    digest: { type: 'string', pattern: OCI_DIGEST_PATTERN },
  },
};

export const MANIFEST_SCHEMA_ID = 'https://plugindex.dev/schemas/manifest/v1.json';

export const MANIFEST_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: MANIFEST_SCHEMA_ID,
  title: 'plugindex plugin manifest v1',
  type: 'object',
  required: ['name', 'version', 'api_version', 'plugin_type', 'capabilities'],
  properties: {
    name: { type: 'string', minLength: 2, maxLength: 64, pattern: '^[a-z0-9]+(-[a-z0-9]+)*$' },
    display_name: text(128, 1),
    description: text(512, 1),
    // The version (without build metadata) is a path segment: it must fit one.
    version: { type: 'string', maxLength: MAX_SEGMENT_LENGTH, pattern: SEMVER },
    api_version: { type: 'string', maxLength: 16, pattern: API_VERSION },
    plugin_type: { type: 'string', enum: ['cost_source', 'observability', 'registry', 'aggregator'] },
    capabilities: list({ type: 'string', enum: CAPABILITIES }, { minItems: 1, uniqueItems: true }),
    supported_providers: enumList(PROVIDERS),
    supported_regions: { type: 'array', items: text(128, 1), maxItems: 512, uniqueItems: true },
    requirements: {
      type: 'object',
      properties: {
        min_api_version: { type: 'string', maxLength: 16, pattern: API_VERSION },
        max_api_version: { type: 'string', maxLength: 16, pattern: API_VERSION },
        os: enumList(OS_ENUM),
        arch: enumList(ARCH_ENUM),
        dependencies: list({
          type: 'object',
          required: ['name', 'version'],
          properties: {
            name: text(256, 1),
            version: text(256),
            type: { type: 'string', enum: ['binary', 'library', 'service', 'plugin'] },
            optional: { type: 'boolean' },
          },
        }),
        environment_variables: list({
          type: 'object',
          required: ['name'],
          properties: {
            name: text(256, 1),
            description: text(),
            required: { type: 'boolean' },
            default_value: text(),
          },
        }),
      },
    },
    authentication: {
      type: 'object',
      properties: {
        required: { type: 'boolean' },
        methods: enumList(AUTH_METHODS),
        scopes: list(text(), { uniqueItems: true }),
        permissions: list(text()),
      },
    },
    installation: {
      type: 'object',
      properties: {
        binary_url: uri,
        checksum: { type: 'string', pattern: DIGEST },
        size_bytes: { type: 'integer', minimum: 0, maximum: MAX_SIZE_BYTES },
        install_script: uri,
        docker_image: {
          type: 'string',
          maxLength: 512,
          pattern:
            '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*:.*$',
        },
        artifacts: {
          type: 'array',
          maxItems: 64,
          items: {
            type: 'object',
            required: ['os', 'arch', 'sha256', 'size_bytes'],
            properties: {
              os: { type: 'string', enum: OS_ENUM },
              arch: { type: 'string', enum: ARTIFACT_ARCH_ENUM },
              // Absent: glibc, the only kind older clients know (validate.ts holds it to linux).
              libc: { type: 'string', enum: [...LIBC_VALUES] },
              file: { type: 'string', maxLength: 512, pattern: SAFE_RELATIVE_PATH_PATTERN },
              url: uri,
              oci: OCI,
              sha256: { type: 'string', pattern: DIGEST },
              size_bytes: { type: 'integer', minimum: 0, maximum: MAX_SIZE_BYTES },
            },
          },
        },
      },
    },
    permissions: enumList(PERMISSIONS),
    resources: RESOURCES,
    security_scan_results: SECURITY_SCAN,
    configuration: {
      type: 'object',
      properties: {
        schema_url: uri,
        defaults: { type: 'object' },
        examples: list({ type: 'object' }),
      },
    },
    contacts: {
      type: 'object',
      properties: {
        maintainers: list(
          {
            type: 'object',
            required: ['name'],
            properties: {
              name: text(256, 1),
              email: { type: 'string', format: 'email', maxLength: 320 },
              url: uri,
            },
          },
          { minItems: 1 },
        ),
        support_url: uri,
        documentation_url: uri,
      },
    },
    metadata: {
      type: 'object',
      properties: {
        tags: list(text(64, 1), { uniqueItems: true }),
        license: text(256),
        homepage: uri,
        repository: uri,
        release_notes_url: uri,
        created: { type: 'string', format: 'date-time' },
        updated: { type: 'string', format: 'date-time' },
      },
    },
  },
} as const;
