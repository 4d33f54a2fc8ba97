import { isIP } from 'node:net';
import { ClamdError } from './clamd-error.js';
import { parseScanReply, parseVersionReply, type ClamdVerdict } from './clamd-reply.js';
import { boundedChunks, type ScanSource } from './internal/byte-chunks.js';
import { exchange, type ClamdTarget } from './internal/clamd-exchange.js';

/** Options of a {@link ClamdClient}: exactly one of `socket` or `port`. */
export interface ClamdClientOptions {
  /** clamd's `LocalSocket` (a Unix socket path). */
  readonly socket?: string | undefined;
  /** clamd's `TCPAddr`; a loopback address (clamd's protocol has no authentication). Default `127.0.0.1`. */
  readonly host?: string | undefined;
  /** clamd's `TCPSocket`. */
  readonly port?: number | undefined;
  /** How long one exchange (a whole scan) may take, in ms. Default 60 000. */
  readonly timeoutMs?: number | undefined;
  /** Largest `INSTREAM` chunk sent, in bytes. Default 64 KiB. */
  readonly chunkBytes?: number | undefined;
}

/** Per-call options. */
export interface ClamdCallOptions {
  readonly signal?: AbortSignal | undefined;
}

function isUnreadStream(source: ScanSource): source is ReadableStream<Uint8Array> {
  const stream = source as Partial<ReadableStream<Uint8Array>>;
  return typeof stream.cancel === 'function' && stream.locked === false;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * A client of `clamd` (ClamAV's daemon), one connection per call:
 * `INSTREAM` scans a stream with back-pressure, `VERSION` tells the
 * signature-database version, `PING` whether it answers. Each call has a
 * timeout and takes an abort signal; every failure is a {@link ClamdError}.
 *
 * @example
 * ```ts
 * const clamd = new ClamdClient({ socket: '/run/clamav/clamd.ctl' });
 * const verdict = await clamd.scan(createReadStream('upload.bin'));
 * if (verdict.verdict === 'infected') console.log(verdict.signature);
 * ```
 */
export class ClamdClient {
  readonly #target: ClamdTarget;
  readonly #timeoutMs: number;
  readonly #chunkBytes: number;

  constructor(options: ClamdClientOptions) {
    if ((options.socket === undefined) === (options.port === undefined)) throw new TypeError('ClamdClient: give exactly one of socket and port');
    if (options.socket !== undefined) {
      if (options.socket === '') throw new TypeError('ClamdClient: socket must be a path');
      this.#target = { socket: options.socket };
    } else {
      const host = options.host ?? '127.0.0.1';
      const port = options.port!;
      if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new TypeError(`ClamdClient: port must be 1 to 65535, got ${port}`);
      if (!isLoopback(host)) throw new TypeError(`ClamdClient: host must be a loopback address (clamd has no authentication), got ${host}`);
      this.#target = { host, port };
    }
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    if (!Number.isSafeInteger(this.#timeoutMs) || this.#timeoutMs < 1) throw new TypeError('ClamdClient: timeoutMs must be a positive integer');
    this.#chunkBytes = options.chunkBytes ?? 64 * 1024;
    if (!Number.isSafeInteger(this.#chunkBytes) || this.#chunkBytes < 1 || this.#chunkBytes > 0x7fffffff) throw new TypeError('ClamdClient: chunkBytes must be a positive integer');
  }

  /** Streams `source` to clamd (`zINSTREAM`) and gives its verdict. */
  async scan(source: ScanSource, options: ClamdCallOptions = {}): Promise<ClamdVerdict> {
    try {
      const reply = await exchange({
        target: this.#target,
        command: 'zINSTREAM\0',
        body: boundedChunks(source, this.#chunkBytes),
        timeoutMs: this.#timeoutMs,
        signal: options.signal,
      });
      return parseScanReply(reply);
    } finally {
      // Not read at all (clamd unreachable): cancel a WHATWG stream so its source (a file) is released.
      if (isUnreadStream(source)) await source.cancel().catch(() => undefined);
    }
  }

  /** clamd's version line (`ClamAV <engine>/<database version>/<date>`): it changes when signatures are reloaded. */
  async version(options: ClamdCallOptions = {}): Promise<string> {
    return parseVersionReply(await exchange({ target: this.#target, command: 'zVERSION\0', timeoutMs: this.#timeoutMs, signal: options.signal }));
  }

  /** Resolves when clamd answers `PONG`; throws a {@link ClamdError} otherwise. */
  async ping(options: ClamdCallOptions = {}): Promise<void> {
    const reply = await exchange({ target: this.#target, command: 'zPING\0', timeoutMs: this.#timeoutMs, signal: options.signal });
    if (reply !== 'PONG') throw new ClamdError('protocol', `clamd answered ${JSON.stringify(reply.slice(0, 100))} to PING`);
  }
}
