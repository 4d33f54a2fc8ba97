import { createConnection, type Socket } from 'node:net';
import { ClamdError } from '../clamd-error.js';

/** Where clamd listens: its `LocalSocket` or its `TCPSocket` on a loopback address. */
export type ClamdTarget = { readonly socket: string } | { readonly host: string; readonly port: number };

/** One command sent to clamd and its answer. */
export interface ExchangeOptions {
  readonly target: ClamdTarget;
  /** The command with its `z` prefix and NUL terminator, e.g. `zINSTREAM\0`. */
  readonly command: string;
  /** For `INSTREAM`: the chunks to send, each framed with its 4-byte big-endian length. */
  readonly body?: AsyncIterable<Uint8Array> | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

/** Longest answer accepted: clamd's are one short line. */
const MAX_REPLY_BYTES = 4096;
const TERMINATOR = new Uint8Array(4);

function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length);
  return header;
}

/**
 * Sends one command (and for `INSTREAM` its stream, with back-pressure) on
 * a fresh connection and resolves with clamd's answer, without its NUL
 * terminator (the `z` command form, clamd's `docs/man/clamd.8`). clamd may
 * answer before the stream ends (its size limit): the answer wins and the
 * rest of the stream is not read. Every failure is a {@link ClamdError},
 * except a failure of `body` itself, which is passed on as it is.
 */
export function exchange(options: ExchangeOptions): Promise<string> {
  const { target, command, body, timeoutMs, signal } = options;
  return new Promise<string>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new ClamdError('aborted', 'clamd exchange aborted', { cause: signal.reason }));
      return;
    }
    const socket: Socket = 'socket' in target ? createConnection({ path: target.socket }) : createConnection({ host: target.host, port: target.port });
    const received: Buffer[] = [];
    let receivedBytes = 0;
    let connected = false;
    let settled = false;
    let lastError: Error | undefined;
    let wakeWriter: (() => void) | undefined;

    const finish = (err: Error | null, reply?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      wakeWriter?.();
      if (err === null) resolve(reply ?? '');
      else reject(err);
    };
    const onAbort = (): void => finish(new ClamdError('aborted', 'clamd exchange aborted', { cause: signal?.reason }));
    const timer = setTimeout(() => finish(new ClamdError('timeout', `clamd did not answer within ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });

    const replyText = (): string => Buffer.concat(received).toString('latin1');
    socket.on('data', (data: Buffer) => {
      const nul = data.indexOf(0);
      const part = nul === -1 ? data : data.subarray(0, nul);
      received.push(part);
      receivedBytes += part.byteLength;
      if (receivedBytes > MAX_REPLY_BYTES) finish(new ClamdError('protocol', `clamd answered more than ${MAX_REPLY_BYTES} bytes`));
      else if (nul !== -1) finish(null, replyText());
    });
    socket.on('error', (err) => {
      lastError = err;
      if (!connected) finish(new ClamdError('connect', `cannot reach clamd: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => {
      // An answer without its NUL (connection closed right after it) is still an answer.
      if (receivedBytes > 0) finish(null, replyText());
      else finish(new ClamdError('closed', `clamd closed the connection without an answer${lastError === undefined ? '' : `: ${lastError.message}`}`, { cause: lastError }));
    });

    const drained = (): Promise<void> =>
      new Promise<void>((wake) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          wakeWriter = undefined;
          wake();
        };
        wakeWriter = done;
        socket.once('drain', done);
        socket.once('close', done);
      });

    const send = async (): Promise<void> => {
      socket.write(command);
      if (body === undefined) return;
      for await (const chunk of body) {
        if (settled || socket.destroyed) return;
        if (chunk.byteLength === 0) continue;
        // Header and chunk in one writev: half the syscalls of two writes.
        socket.cork();
        socket.write(frameHeader(chunk.byteLength));
        const more = socket.write(chunk);
        socket.uncork();
        if (!more) await drained();
      }
      if (!settled && !socket.destroyed) socket.write(TERMINATOR);
    };
    socket.once('connect', () => {
      connected = true;
      send().catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
    });
  });
}
