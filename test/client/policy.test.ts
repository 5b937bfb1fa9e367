import { describe, expect, it } from 'vitest';
import { type Policy, type PolicyCandidate, permissionChanges, policyProblems } from '../../client/policy.ts';
import { parsePluginSet } from '../../client/set-file.ts';

const PUBLISHER = 'ABCDEF0123456789ABCDEF0123456789ABCDEF01';
const OTHER_PUBLISHER = '0123456789ABCDEF0123456789ABCDEF01234567';

function candidate(overrides: Partial<PolicyCandidate> = {}): PolicyCandidate {
  return {
    name: 'kubecost-lens',
    version: '1.2.0',
    prerelease: false,
    permissions: ['filesystem_read', 'network_client'],
    resources: { max_memory_mb: 256 },
    publisher: PUBLISHER,
    source: 'local',
    ...overrides,
  };
}

/** The policy as a set file writes it, read by parsePluginSet: the tests judge what users write. */
function policy(yaml: string): Policy {
  const set = parsePluginSet(`policy:\n${yaml}`, '/work/team/plugindex.yaml', { home: '/home/me' });
  if (set.policy === undefined) throw new Error('the set has no policy');
  return set.policy;
}

const TEAM_POLICY = `  permissions:
    allow: [filesystem_read, network_client, logging]
    deny: [process_spawn, host_device]
  publishers: [${PUBLISHER.toLowerCase()}]
  registries: [local]
  resources: { max_memory_mb: 512 }
`;

describe('when there is no policy', () => {
  it('allows anything, prereleases and every permission included', () => {
    expect(
      policyProblems(
        undefined,
        candidate({ prerelease: true, permissions: ['process_spawn', 'host_device'] }),
      ),
    ).toEqual([]);
  });
});

describe('when a version meets the policy', () => {
  it('finds no problem', () => {
    expect(policyProblems(policy(TEAM_POLICY), candidate())).toEqual([]);
  });

  it('allows a resource the plugin does not declare, and a publisher given in lower case', () => {
    expect(
      policyProblems(
        policy(TEAM_POLICY),
        candidate({ resources: undefined, publisher: PUBLISHER.toLowerCase() }),
      ),
    ).toEqual([]);
  });

  it('allows any permission not denied when there is no allow list', () => {
    expect(
      policyProblems(
        policy('  permissions: { deny: [process_spawn] }\n'),
        candidate({ permissions: ['container_exec', 'a_permission_of_a_newer_registry'] }),
      ),
    ).toEqual([]);
  });
});

describe('when a version breaks the policy', () => {
  it('names a denied permission', () => {
    expect(
      policyProblems(policy(TEAM_POLICY), candidate({ permissions: ['filesystem_read', 'process_spawn'] })),
    ).toEqual(['kubecost-lens@1.2.0 asks for process_spawn, which the policy denies']);
  });

  it('names a permission outside the allow list, listing the allowed ones', () => {
    expect(policyProblems(policy(TEAM_POLICY), candidate({ permissions: ['container_exec'] }))).toEqual([
      'kubecost-lens@1.2.0 asks for container_exec, which is not among policy.permissions.allow ' +
        '(filesystem_read, network_client, logging)',
    ]);
  });

  it('names a publisher not allowed', () => {
    expect(policyProblems(policy(TEAM_POLICY), candidate({ publisher: OTHER_PUBLISHER }))).toEqual([
      `kubecost-lens@1.2.0 is signed by publisher ${OTHER_PUBLISHER}, which is not among policy.publishers (${PUBLISHER})`,
    ]);
  });

  it('names a source not allowed', () => {
    expect(policyProblems(policy(TEAM_POLICY), candidate({ source: 'community' }))).toEqual([
      'kubecost-lens@1.2.0 comes from community, which is not among policy.registries (local)',
    ]);
  });

  it('refuses a prerelease unless the policy allows them', () => {
    const beta = candidate({ version: '2.0.0-beta.1', prerelease: true });
    expect(policyProblems(policy(TEAM_POLICY), beta)).toEqual([
      'kubecost-lens@2.0.0-beta.1 is a prerelease, and the policy allows none (set policy.prereleases: true to allow them)',
    ]);
    expect(policyProblems(policy(`${TEAM_POLICY}  prereleases: true\n`), beta)).toEqual([]);
  });

  it('names a resource declared above its bound', () => {
    expect(policyProblems(policy(TEAM_POLICY), candidate({ resources: { max_memory_mb: 1024 } }))).toEqual([
      "kubecost-lens@1.2.0 declares max_memory_mb 1024, above the policy's bound of 512 (policy.resources.max_memory_mb)",
    ]);
    expect(policyProblems(policy(TEAM_POLICY), candidate({ resources: { max_memory_mb: 512 } }))).toEqual([]);
  });

  it('names every reason at once, each permission once', () => {
    const problems = policyProblems(
      policy(TEAM_POLICY),
      candidate({
        version: '3.0.0-rc.1',
        prerelease: true,
        permissions: ['host_device', 'host_device', 'config_write'],
        resources: { max_memory_mb: 4096 },
        publisher: OTHER_PUBLISHER,
        source: 'community',
      }),
    );
    expect(problems).toHaveLength(6);
    expect(problems.every((p) => p.startsWith('kubecost-lens@3.0.0-rc.1 '))).toBe(true);
    expect(problems.filter((p) => p.includes('host_device'))).toHaveLength(1);
  });
});

describe('when permissions change between versions', () => {
  it('lists what was added and removed, sorted', () => {
    expect(
      permissionChanges(['logging', 'filesystem_read'], ['network_client', 'logging', 'config_read']),
    ).toEqual({ added: ['config_read', 'network_client'], removed: ['filesystem_read'] });
  });

  it('finds no change for the same permissions in another order', () => {
    expect(permissionChanges(['b', 'a'], ['a', 'b', 'a'])).toEqual({ added: [], removed: [] });
  });

  it('counts every permission as added when nothing was installed before', () => {
    expect(permissionChanges(undefined, ['logging', 'filesystem_read', 'logging'])).toEqual({
      added: ['filesystem_read', 'logging'],
      removed: [],
    });
  });

  it('finds only removals when a version asks for less', () => {
    expect(permissionChanges(['logging', 'process_spawn'], [])).toEqual({
      added: [],
      removed: ['logging', 'process_spawn'],
    });
  });
});
