/**
 * `@hsmedia/net-guard`: an SSRF guard for outbound connections. Classifies
 * IP addresses, builds allow/deny policies, and checks the address a socket
 * actually connects to (through a guarded `dns.lookup`), so that DNS
 * rebinding cannot route a request to a private network. `GuardedHttpClient`
 * puts it all together: one guarded outbound HTTP(S) request with timeouts
 * and a body byte cap.
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
export {
  BlockedAddressError,
  isBlockedAddressError,
  type BlockedAddressErrorOptions,
  GuardedRequestError,
  isGuardedRequestError,
  type GuardedRequestErrorCode,
} from './errors.js';
export {
  GuardedHttpClient,
  type GuardedHttpClientOptions,
  type GuardedRequestOptions,
  type GuardedResponse,
} from './guarded-http.js';
