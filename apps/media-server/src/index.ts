/**
 * `@hsmedia/media-server`: the reference media server. The CLI
 * (`hsmedia-server`) is a thin wrapper over these functions, which tests
 * (and multi-server federation tests) run in-process.
 */
export {
  parseConfig,
  parseConfigText,
  loadConfigFile,
  defaultConfig,
  configJsonSchema,
  LOG_LEVELS,
  ADMIN_TOKEN_FILE_NAME,
  type LogLevel,
  type AuthConfig,
  type MediaServerConfig,
  type ConfigResult,
} from './config.js';
export { parseByteSize, formatByteSize, BYTE_SIZE_PATTERN } from './byte-size.js';
export {
  createServer,
  startServer,
  type ServerOptions,
  type MediaServer,
  type StartedServer,
  type GeneratedAdminToken,
} from './server.js';
export { runCli, runCommand, parseCommandLine, adminTokenBanner, EXIT, type CliIo, type CliInvocation } from './cli-main.js';
export {
  loadOrCreateSigningKey,
  synapseSigningKeyCodec,
  SigningKeyFileError,
  type ServerSigningKey,
  type SigningKeyCodec,
  type LoadedSigningKey,
} from './signing-key-file.js';
export { loadOrCreateAdminToken, AdminTokenFileError, type AdminToken } from './admin-token.js';
export { createLogger, type CreateLoggerOptions } from './logger.js';
export { requestLog, redactRequestTarget, type RequestLogOptions } from './request-log.js';
export { createDrainer, type Drainer } from './drain.js';
export { createVersionsRouter, SUPPORTED_SPEC_VERSIONS } from './versions.js';
export { openStores, type OpenStores } from './stores.js';
export {
  openMetadataStore,
  describeDatabase,
  redactPostgresUrl,
  DEFAULT_APPLICATION_NAME,
  type DatabaseConfig,
  type DatabaseLog,
} from './database.js';
export {
  createThumbnails,
  resolveThumbnailsConfig,
  thumbnailerRules,
  THUMBNAILS_DEFAULTS,
  type ThumbnailsConfig,
  type ThumbnailsDependencies,
  type ThumbnailsSection,
} from './thumbnails.js';
export { createLogDestination, flushLogger, DEFAULT_LOG_BUFFER_BYTES, type LogDestinationOptions, type FlushableDestination } from './logger.js';
