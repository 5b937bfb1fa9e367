/**
 * The key a client's connections are counted under. What the slots do with connections is tested over
 * real sockets, through the server, in server.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { addressGroup } from '../../../cli/local/connection-slots.ts';

describe('when a connection is counted under its address', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:127.0.0.1', '127.0.0.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
  ])('counts %s as %s', (address, group) => {
    expect(addressGroup(address)).toBe(group);
  });

  it('counts every address of one /64 as one client, and another /64 apart', () => {
    const group = addressGroup('2001:db8:1:2::1');

    expect(addressGroup('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(group);
    expect(addressGroup('2001:db8:1:3::1')).not.toBe(group);
  });
});
