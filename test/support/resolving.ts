/**
 * The fetcher's lookup seam answering `names` with the address given, without DNS (every other name goes to
 * Node's own lookup): a name that is not loopback, resolving to this machine as /etc/hosts or a rebinding
 * DNS server would have it.
 */
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

export function resolving(names: Readonly<Record<string, string>>): LookupFunction {
  return (hostname, options, callback) => {
    const address = names[hostname];
    if (address === undefined) {
      dns.lookup(hostname, options, callback);
      return;
    }
    const family = isIP(address);
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}
