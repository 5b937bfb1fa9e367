/**
 * A team's policy over what may be installed: which permissions a plugin may ask for (NexCage's capability
 * system, index-builder/model.ts PERMISSIONS), whose signatures and which sources count, whether
 * prereleases may be installed, and the highest resource limits a plugin may declare. The policy is read
 * from the plugin set file (client/set-file.ts); this module only judges a chosen version against it.
 *
 * Pure: values in, sentences out. The caller turns problems into ClientError POLICY_DENIED, and added
 * permissions into PERMISSIONS_NOT_ACCEPTED unless the user passed `--accept-permissions`.
 *
 * @example
 * const problems = policyProblems(set.policy, {
 *   name: 'kubecost-lens', version: '1.2.0', prerelease: false, permissions: record.permissions ?? [],
 *   resources: record.resources, publisher: record.publisher, source: 'local',
 * });
 * if (problems.length > 0) throw new ClientError('POLICY_DENIED', problems.join('; '));
 */
import {
  type Permission,
  RESOURCE_LIMITS,
  type ResourceName,
  type Resources,
} from '../index-builder/model.ts';

/** The parsed `policy:` block of a plugin set. */
export interface Policy {
  readonly permissions: {
    /** Only these may be asked for; absent: any permission not denied. */
    readonly allow?: readonly Permission[];
    readonly deny: readonly Permission[];
  };
  /** Fingerprints (40 or 64 uppercase hex digits: v4 or v6 keys) of the publisher keys whose versions may be installed; absent: any. */
  readonly publishers?: readonly string[];
  /** Names of the providers (registries, URLs, buckets, folders) versions may come from; absent: any. */
  readonly registries?: readonly string[];
  /**
   * Whether a prerelease may be installed. False unless the policy says so: a team that writes a policy
   * pins releases, and a `beta` spec in its set must then be allowed explicitly.
   */
  readonly prereleases: boolean;
  /** The highest value a plugin may declare for each resource named; those not named are not bounded. */
  readonly resources: Resources;
}

/** What the policy judges of a chosen version: what its signed plugin document says of it, and its source. */
export interface PolicyCandidate {
  readonly name: string;
  readonly version: string;
  readonly prerelease: boolean;
  /** The permissions the version asks for (its record's `permissions`, [] when none). */
  readonly permissions: readonly string[];
  readonly resources?: Resources;
  /** Fingerprint of the publisher key that signed the version. */
  readonly publisher: string;
  /** The name of the provider it comes from (a registry, URL, bucket or folder of the set). */
  readonly source: string;
}

/**
 * Every reason the policy refuses the candidate, one sentence each naming the version and what is refused;
 * [] when it is allowed (and always when there is no policy). A resource the plugin does not declare is not
 * refused: the bound limits what a plugin may ask for, and the host applies its own default to the rest.
 *
 * @example
 * policyProblems(policy, candidate)
 * // ['kubecost-lens@1.2.0 asks for process_spawn, which the policy denies']
 */
export function policyProblems(policy: Policy | undefined, candidate: PolicyCandidate): string[] {
  return policyRefusals(policy, candidate).map((r) => r.problem);
}

/** One rule a version breaks: the sentence, and the rule's JSON pointer in the set file (its YAML path alike). */
export interface PolicyRefusal {
  /** `/policy/permissions/deny/2`, `/policy/publishers`, ...: where in the set file the rule is written. */
  readonly at: string;
  readonly problem: string;
}

/**
 * `policyProblems` with each rule's place in the set file: a refusal that names no rule sent the user
 * searching a long `policy:` block for the line that denied it.
 */
export function policyRefusals(policy: Policy | undefined, candidate: PolicyCandidate): PolicyRefusal[] {
  if (policy === undefined) return [];
  const what = `${candidate.name}@${candidate.version}`;
  const refusals: PolicyRefusal[] = [];
  const problems = {
    push: (problem: string, at: string) => {
      refusals.push({ at, problem });
    },
  };
  if (policy.registries !== undefined && !policy.registries.includes(candidate.source)) {
    problems.push(
      `${what} comes from ${candidate.source}, which is not among policy.registries (${listed(policy.registries)})`,
      '/policy/registries',
    );
  }
  const publisher = candidate.publisher.toUpperCase();
  if (policy.publishers !== undefined && !policy.publishers.includes(publisher)) {
    problems.push(
      `${what} is signed by publisher ${publisher}, which is not among policy.publishers (${listed(policy.publishers)})`,
      '/policy/publishers',
    );
  }
  if (candidate.prerelease && !policy.prereleases) {
    problems.push(
      `${what} is a prerelease, and the policy allows none (set policy.prereleases: true to allow them)`,
      // Unset is false once a policy is written: the pointer names where to set it.
      '/policy/prereleases',
    );
  }
  const deny: readonly string[] = policy.permissions.deny;
  const allow: readonly string[] | undefined = policy.permissions.allow;
  for (const permission of uniqueSorted(candidate.permissions)) {
    if (deny.includes(permission)) {
      problems.push(
        `${what} asks for ${permission}, which the policy denies`,
        `/policy/permissions/deny/${deny.indexOf(permission)}`,
      );
    } else if (allow !== undefined && !allow.includes(permission)) {
      problems.push(
        `${what} asks for ${permission}, which is not among policy.permissions.allow (${listed(allow)})`,
        '/policy/permissions/allow',
      );
    }
  }
  for (const name of Object.keys(RESOURCE_LIMITS) as ResourceName[]) {
    const bound = policy.resources[name];
    const declared = candidate.resources?.[name];
    if (bound !== undefined && declared !== undefined && declared > bound) {
      problems.push(
        `${what} declares ${name} ${declared}, above the policy's bound of ${bound} (policy.resources.${name})`,
        `/policy/resources/${name}`,
      );
    }
  }
  return refusals;
}

/** Refusals as one line, each led by the set file and its rule's pointer (`FILE#/policy/...: ...`). */
export function refusalText(file: string | undefined, refusals: readonly PolicyRefusal[]): string {
  return refusals.map((r) => (file === undefined ? r.problem : `${file}#${r.at}: ${r.problem}`)).join('; ');
}

/**
 * What a new version asks for that the one before did not (`added`), and what it no longer asks for
 * (`removed`), each sorted. `before` undefined (nothing installed or locked) counts every permission of
 * `after` as added: a first install is a change of what the host allows too.
 *
 * @example permissionChanges(['logging'], ['logging', 'network_client'])
 * // { added: ['network_client'], removed: [] }
 */
export function permissionChanges(
  before: readonly string[] | undefined,
  after: readonly string[],
): { added: string[]; removed: string[] } {
  const old = new Set(before ?? []);
  const next = new Set(after);
  return {
    added: uniqueSorted(after).filter((p) => !old.has(p)),
    removed: uniqueSorted(before ?? []).filter((p) => !next.has(p)),
  };
}

function uniqueSorted(items: readonly string[]): string[] {
  return [...new Set(items)].sort();
}

function listed(items: readonly string[]): string {
  return items.length === 0 ? 'none' : items.join(', ');
}
