/**
 * Matrix server-server signing: Canonical JSON, unpadded base64, Ed25519
 * server keys (Synapse key file format), JSON signatures, X-Matrix request
 * headers, the key server response, and a caching key ring.
 *
 * Framework-free; `@hsmedia/xmatrix-auth` puts it behind Koa.
 */
export { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
export { canonicalJsonBytes, compareCodePoints, encodeCanonicalJson, type JsonObject, type JsonValue } from './canonical-json.js';
export {
  CanonicalJsonError,
  isCanonicalJsonError,
  isSignatureError,
  SignatureError,
  type SignatureErrorCode,
} from './errors.js';
export { ed25519Backend, type Ed25519Backend } from './internal/ed25519-verify.js';
export { KeyRing, type FetchLike, type KeyResolver, type KeyRingOptions, type NotaryServer } from './key-ring.js';
export { MemoryServerKeyStore, type ServerKeyStore, type StoredServerKey } from './server-key-store.js';
export {
  buildServerKeysResponse,
  MAX_KEY_VALIDITY_MS,
  validateServerKeysResponse,
  type BuildServerKeysOptions,
  type OldVerifyKey,
  type ServerKeysResponse,
  type ValidatedServerKeys,
} from './server-keys.js';
export { isValidServerName, parseServerName, type ServerNameParts } from './server-name.js';
export {
  signedBytes,
  signJson,
  verifyJsonSignatures,
  type SignableObject,
  type Signatures,
  type VerifyKeyLookup,
} from './sign-json.js';
export {
  ED25519,
  formatSigningKeyFile,
  generateSigningKey,
  parseKeyId,
  parseSigningKeyFile,
  publicKeyFromBase64,
  signBytes,
  signingKeyFromSeed,
  signingKeySeed,
  verifyBytes,
  type SigningKey,
  type VerifyKey,
} from './signing-key.js';
export {
  parseXMatrixCredentials,
  verifyXMatrixCredentials,
  verifyXMatrixRequest,
  type ReceivedRequest,
  type VerifiedXMatrixRequest,
  type XMatrixCredentials,
} from './verify-request.js';
export {
  formatXMatrixHeader,
  isXMatrixAuthorization,
  parseXMatrixHeader,
  requestSigningObject,
  signXMatrixRequest,
  type XMatrixAuth,
  type XMatrixRequest,
} from './x-matrix.js';
