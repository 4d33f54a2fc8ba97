/**
 * Koa glue for Matrix server-server authentication: the X-Matrix request
 * authentication middleware and the `GET /_matrix/key/v2/server` key server.
 * The cryptography and key fetching live in `@hsmedia/signing`.
 */
export { createKeyServer, KEY_SERVER_PATH, type KeyServerOptions } from './key-server.js';
export {
  createXMatrixAuth,
  signatureErrorToMatrixError,
  type XMatrixAuthOptions,
  type XMatrixAuthState,
} from './x-matrix-auth.js';
