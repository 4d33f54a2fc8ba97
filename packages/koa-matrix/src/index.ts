export {
  matrixErrors,
  toMatrixError,
  isClientDisconnect,
  type MatrixErrorsOptions,
  type ErrorLogger,
} from './matrix-errors.js';
export { matrixCors, MATRIX_CORS_HEADERS } from './cors.js';
export { unrecognized, allowedMethodsOptions } from './unrecognized.js';
export { readJsonBody, type ReadJsonBodyOptions } from './json-body.js';
export { abortSignalFor, ClientDisconnectedError } from './abort-signal.js';
