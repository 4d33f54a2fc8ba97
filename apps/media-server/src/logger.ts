import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from './config.js';

/** Default bound of log bytes waiting for a slow stdout: beyond it lines are dropped, never buffered without end. */
export const DEFAULT_LOG_BUFFER_BYTES: number = 16 * 1024 * 1024;
/** Lines are written in batches of at least this many bytes, or every {@link LOG_FLUSH_INTERVAL_MS}. */
const LOG_BATCH_BYTES = 4096;
const LOG_FLUSH_INTERVAL_MS = 100;

/** Options for {@link createLogDestination}. */
export interface LogDestinationOptions {
  /** File descriptor to write to (default 1, stdout), or a file path. */
  readonly dest?: number | string;
  /** Most bytes buffered while the destination is slow or blocked. Default {@link DEFAULT_LOG_BUFFER_BYTES}. */
  readonly maxBufferBytes?: number;
  /** Called with the number of lines dropped because the buffer was full (for the drop counter). */
  readonly onDrop?: (lines: number) => void;
}

/** A log destination that can be flushed (pino's SonicBoom). */
export type FlushableDestination = DestinationStream & { flush(cb?: (err?: Error | null) => void): void };

/**
 * The asynchronous, batched, bounded destination of the server's logs
 * (pino's SonicBoom): lines are written in batches (at least 4 KiB, or every
 * 100 ms) off the request path; while the destination is slow or blocked at
 * most `maxBufferBytes` wait, and lines beyond are dropped and counted
 * (`onDrop`) rather than held without bound. Flushed on shutdown
 * ({@link flushLogger}) and by pino at process exit.
 */
export function createLogDestination(options: LogDestinationOptions = {}): FlushableDestination {
  const maxLength = options.maxBufferBytes ?? DEFAULT_LOG_BUFFER_BYTES;
  if (!Number.isSafeInteger(maxLength) || maxLength <= LOG_BATCH_BYTES) throw new TypeError(`maxBufferBytes must be an integer above ${LOG_BATCH_BYTES}`);
  const stream = pino.destination({ dest: options.dest ?? 1, sync: false, minLength: LOG_BATCH_BYTES, maxLength, periodicFlush: LOG_FLUSH_INTERVAL_MS });
  const onDrop = options.onDrop;
  if (onDrop !== undefined) {
    stream.on('drop', (data: string | Buffer) => {
      // pino writes one line per call; count line ends to be exact either way.
      const text = typeof data === 'string' ? data : data.toString('utf8');
      let lines = 0;
      for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lines++;
      onDrop(Math.max(1, lines));
    });
  }
  return stream as unknown as FlushableDestination;
}

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  readonly level: LogLevel;
  /** Where JSON lines go; default {@link createLogDestination} on stdout. Tests pass a stream to read them. */
  readonly destination?: DestinationStream;
  /** For the default destination: its buffer bound and drop counter. */
  readonly buffer?: Omit<LogDestinationOptions, 'dest'>;
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
      ...LINE_FORMAT,
      level: options.level,
      redact: {
        paths: ['access_token', '*.access_token', 'authorization', '*.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    options.destination ?? createLogDestination(options.buffer ?? {}),
  );
}

/** What every line of the server's loggers carries and how its level is written. */
const LINE_FORMAT = {
  base: { service: 'hsmedia-server' },
  formatters: { level: (label: string) => ({ level: label }) },
} as const;

/**
 * The access log's logger: a sibling of `logger` (from {@link createLogger})
 * writing the same line format at the same level into the same destination,
 * without the redaction pass. An access line holds only its own fields
 * (method, path already redacted by `redactRequestTarget`, status, bytes,
 * duration, user), none of the redacted paths, and the redaction walk was a
 * measurable part of each request at `info` (docs/small-media-profile.md).
 */
export function accessLoggerOf(logger: PinoLogger): PinoLogger {
  const stream = (logger as unknown as Record<symbol, DestinationStream | undefined>)[pino.symbols.streamSym];
  if (stream === undefined) return logger;
  return pino({ ...LINE_FORMAT, level: logger.level }, stream);
}

/**
 * Writes out what the logger has buffered; resolves when it is written, or
 * after `timeoutMs` when the destination is blocked (shutdown must not hang
 * on a stuck stdout). True when flushed.
 */
export function flushLogger(logger: Pick<PinoLogger, 'flush'>, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
    try {
      logger.flush((err) => {
        clearTimeout(timer);
        resolve(err === undefined || err === null);
      });
    } catch {
      clearTimeout(timer);
      resolve(false);
    }
  });
}
