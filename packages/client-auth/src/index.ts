export type { AccessTokenVerifier, VerifyOptions } from './verifier.js';
export { StaticTokenVerifier, type StaticTokenEntry } from './static-token-verifier.js';
export { WhoamiTokenVerifier, type WhoamiTokenVerifierOptions } from './whoami-token-verifier.js';
export {
  createClientAuth,
  requireNonGuest,
  accessTokenFrom,
  assertedUserIdFrom,
  type ClientAuthOptions,
  type ClientAuthState,
} from './client-auth.js';
export { HomeserverAdminCheck, type HomeserverAdminCheckOptions } from './homeserver-admin-check.js';
