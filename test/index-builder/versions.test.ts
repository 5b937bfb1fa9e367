import { describe, expect, it } from 'vitest';
import {
  advisoryAffects,
  channelHeads,
  channelOf,
  latestVersion,
  resolveVersion,
  sortVersionsDescending,
} from '../../index-builder/versions.ts';

const v = (version: string, yanked = false) => ({ version, yanked });
const history = [
  v('1.0.0'),
  v('1.2.0'),
  v('1.10.0'),
  v('2.0.0-beta.1'),
  v('2.0.0-beta.2'),
  v('2.0.0-rc.1', true),
  v('1.11.0', true),
  v('0.9.0'),
];

describe('when ordering versions', () => {
  it('sorts by SemVer precedence, not text', () => {
    expect(sortVersionsDescending(history).map((r) => r.version)).toEqual([
      '2.0.0-rc.1',
      '2.0.0-beta.2',
      '2.0.0-beta.1',
      '1.11.0',
      '1.10.0',
      '1.2.0',
      '1.0.0',
      '0.9.0',
    ]);
  });
});

describe('when picking the latest version', () => {
  it('takes the highest non-prerelease, non-yanked version', () => {
    expect(latestVersion(history)).toBe('1.10.0');
  });

  it('returns null when only prereleases or yanked versions exist', () => {
    expect(latestVersion([v('1.0.0-beta.1'), v('1.0.0', true)])).toBeNull();
  });
});

describe('when resolving channels', () => {
  it('names the channel by the first prerelease identifier', () => {
    expect(channelOf('2.0.0-beta.3')).toBe('beta');
    expect(channelOf('2.0.0-RC.1')).toBe('rc');
    expect(channelOf('2.0.0-0.3')).toBeUndefined();
    expect(channelOf('2.0.0')).toBeUndefined();
  });

  it('maps each channel to its highest non-yanked version', () => {
    expect(channelHeads(history)).toEqual({ beta: '2.0.0-beta.2' });
  });
});

describe('when resolving a request', () => {
  it('resolves latest, exact, range and channel requests as the spec says', () => {
    expect(resolveVersion(history, 'latest')).toBe('1.10.0');
    expect(resolveVersion(history, '1.2.0')).toBe('1.2.0');
    expect(resolveVersion(history, '^1.2.0')).toBe('1.10.0');
    expect(resolveVersion(history, 'beta')).toBe('2.0.0-beta.2');
    expect(resolveVersion(history, '>=2.0.0-beta.0')).toBe('2.0.0-beta.2');
  });

  it('resolves a yanked version only when asked for exactly', () => {
    expect(resolveVersion(history, '~1.11.0')).toBeUndefined();
    expect(resolveVersion(history, '1.11.0')).toBe('1.11.0');
  });

  it('returns undefined for nothing matching or nonsense', () => {
    expect(resolveVersion(history, '^3.0.0')).toBeUndefined();
    expect(resolveVersion(history, 'nightly')).toBeUndefined();
    expect(resolveVersion(history, '!!')).toBeUndefined();
  });
});

describe('whether an advisory affects a version (one rule for pages and the client)', () => {
  it('takes prereleases in its range, never a withdrawn one, and an unreadable range as every version', () => {
    expect(advisoryAffects({ affected: '<1.2.3' }, '1.2.2')).toBe(true);
    expect(advisoryAffects({ affected: '<1.2.3' }, '1.2.3-rc.1')).toBe(true);
    expect(advisoryAffects({ affected: '<1.2.3' }, '1.2.3')).toBe(false);
    expect(advisoryAffects({ affected: '>=1.0.0 <2.0.0', withdrawn: { at: 'x' } }, '1.5.0')).toBe(false);
    expect(advisoryAffects({ affected: 'not a range ~~' }, '9.9.9')).toBe(true);
  });
});
