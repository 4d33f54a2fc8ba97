/**
 * `@hsmedia/net-guard`: an SSRF guard for outbound connections. Classifies
 * IP addresses, builds allow/deny policies, and checks the address a socket
 * actually connects to (through a guarded `dns.lookup`), so that DNS
 * rebinding cannot route a request to a private network.
 */
export { classifyAddress, type AddressClass } from './classify.js';
export { createAddressPolicy, type AddressPolicy, type AddressPolicyOptions } from './policy.js';
export {
  guardedLookup,
  assertAddressAllowed,
  assertHostAllowed,
  ipLiteralOf,
  type GuardedLookupOptions,
} from './lookup.js';
export { BlockedAddressError, isBlockedAddressError, type BlockedAddressErrorOptions } from './errors.js';
