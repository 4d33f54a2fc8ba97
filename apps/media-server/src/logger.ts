import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from './config.js';

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  readonly level: LogLevel;
  /** Where JSON lines go; default stdout. Tests pass a stream to read them. */
  readonly destination?: DestinationStream;
}

/**
 * The server's pino logger: one JSON object per line, `time` in ms,
 * `level` as a label (`"info"`) so log shippers need no number table.
 * `authorization` headers and `access_token` fields are redacted wherever
 * they appear one level deep, as a safety net; the request log never
 * includes them in the first place.
 */
export function createLogger(options: CreateLoggerOptions): PinoLogger {
  return pino(
    {
      level: options.level,
      base: { service: 'hsmedia-server' },
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['access_token', '*.access_token', 'authorization', '*.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
