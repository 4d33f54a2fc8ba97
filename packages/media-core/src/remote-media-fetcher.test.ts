import { isMatrixError, type MatrixError } from '@hsmedia/errors';
import type { Logger } from '@hsmedia/runtime';
import { describe, expect, it } from 'vitest';
import { RemoteMediaError, type RemoteMediaFailure } from './errors.js';
import { LiveMediaHandle } from './live-media-handle.js';
import { MediaService } from './media-service.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { RemoteMedia, RemoteMediaRequest, RemoteMediaSource } from './ports/index.js';

// Remote failures as the client and the log see them, through MediaService and the shipped
// in-memory stores (conformance-tested like the real ones); the remote is a scripted source.

interface LogCall {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** A logger that keeps every call. */
function captureLogger(): Logger & { calls: LogCall[] } {
  const calls: LogCall[] = [];
  const at =
    (level: LogCall['level']) =>
    (obj: object, msg?: string): void =>
      void calls.push({ level, obj: obj as Record<string, unknown>, msg });
  return { calls, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

class ScriptedRemote implements RemoteMediaSource {
  calls = 0;
  readonly #answer: (req: RemoteMediaRequest) => Promise<RemoteMedia>;
  constructor(answer: (req: RemoteMediaRequest) => Promise<RemoteMedia>) {
    this.#answer = answer;
  }
  fetchMedia(req: RemoteMediaRequest): Promise<RemoteMedia> {
    this.calls++;
    return this.#answer(req);
  }
}

function setup(remote: RemoteMediaSource, maxRemoteBytes = 1 << 20) {
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const logger = captureLogger();
  const media = new MediaService({
    serverName: 'example.org',
    blobs,
    metadata,
    maxUploadBytes: 100,
    maxRemoteBytes,
    remote,
    logger,
    remoteFailureTtlMs: 0,
    touchIntervalMs: 0,
  });
  const stored = async (): Promise<number> => (await metadata.summarizeMedia({})).count + blobs.blobCount;
  return { media, logger, stored };
}

async function matrixError(promise: Promise<unknown>): Promise<MatrixError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!isMatrixError(error)) throw new Error(`expected a MatrixError, got ${String(error)}`);
  return error;
}

/** A remote body of `chunks`, then a clean end. */
function bodyOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

describe('errors passed on from remotes', () => {
  it('a remote 504 M_NOT_YET_UPLOADED reaches the client as 504 M_NOT_YET_UPLOADED', async () => {
    const remote = new ScriptedRemote(async () => {
      throw new RemoteMediaError('timeout', 'remote answered 504 M_NOT_YET_UPLOADED', { remoteStatus: 504, remoteErrcode: 'M_NOT_YET_UPLOADED' });
    });
    const { media, stored } = setup(remote);
    const error = await matrixError(media.getMedia('other.org', 'pending'));
    expect([error.httpStatus, error.errcode]).toEqual([504, 'M_NOT_YET_UPLOADED']);
    expect(await stored()).toBe(0);
  });

  it.each([
    ['timeout', { remoteStatus: 504, remoteErrcode: 'M_UNKNOWN' }, 504, 'M_UNKNOWN'],
    ['timeout', {}, 504, 'M_UNKNOWN'],
    ['not_found', { remoteStatus: 404, remoteErrcode: 'M_NOT_FOUND' }, 404, 'M_NOT_FOUND'],
    ['too_large', { remoteStatus: 413, remoteErrcode: 'M_TOO_LARGE' }, 502, 'M_TOO_LARGE'],
    ['forbidden', { remoteStatus: 403, remoteErrcode: 'M_FORBIDDEN' }, 502, 'M_UNKNOWN'],
    ['bad_response', { remoteStatus: 500, remoteErrcode: 'M_NOT_YET_UPLOADED' }, 502, 'M_UNKNOWN'],
    ['unreachable', {}, 502, 'M_UNKNOWN'],
  ] as const)('every other mapping stays: %s %j → %i %s', async (failure, remoteInfo, status, errcode) => {
    const remote = new ScriptedRemote(async () => {
      throw new RemoteMediaError(failure, 'scripted', remoteInfo);
    });
    const error = await matrixError(setup(remote).media.getMedia('other.org', 'abc'));
    expect([error.httpStatus, error.errcode]).toEqual([status, errcode]);
  });
});

describe('logging remote failures', () => {
  const expected: RemoteMediaFailure[] = ['not_found', 'unreachable', 'timeout', 'bad_response', 'too_large', 'forbidden'];

  it.each(expected)('%s: one warn line without a stack', async (failure) => {
    const remote = new ScriptedRemote(async () => {
      throw new RemoteMediaError(failure, `scripted ${failure}`, { remoteStatus: 500 });
    });
    const { media, logger } = setup(remote);
    await matrixError(media.getMedia('other.org', 'abc'));
    expect(logger.calls.filter((call) => call.level === 'warn' || call.level === 'error')).toEqual([
      {
        level: 'warn',
        obj: { serverName: 'other.org', mediaId: 'abc', failure, remoteStatus: 500, reason: `scripted ${failure}` },
        msg: 'remote media fetch failed',
      },
    ]);
    expect(JSON.stringify(logger.calls)).not.toContain('    at ');
  });

  it('a body over the size limit: one warn line', async () => {
    const remote = new ScriptedRemote(async () => ({ contentType: null, contentDisposition: null, contentLength: null, body: bodyOf(new Uint8Array(11)) }));
    const { media, logger } = setup(remote, 10);
    expect((await matrixError(media.getMedia('other.org', 'abc'))).errcode).toBe('M_TOO_LARGE');
    expect(logger.calls.filter((call) => call.level !== 'debug').map((call) => [call.level, call.obj['failure']])).toEqual([['warn', 'too_large']]);
  });

  it('an unexpected error stays an error, with its stack', async () => {
    const bug = new TypeError('undefined is not a function');
    const remote = new ScriptedRemote(async () => {
      throw bug;
    });
    const { media, logger } = setup(remote);
    const error = await matrixError(media.getMedia('other.org', 'abc'));
    expect([error.httpStatus, error.errcode]).toEqual([502, 'M_UNKNOWN']);
    expect(logger.calls.filter((call) => call.level !== 'debug')).toEqual([
      { level: 'error', obj: { serverName: 'other.org', mediaId: 'abc', err: bug }, msg: 'remote media fetch failed unexpectedly' },
    ]);
  });
});

describe('a remote body must carry exactly its declared length', () => {
  const bytes = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill);

  it.each([
    ['more', 10, [bytes(10), bytes(5)]],
    ['more in one chunk', 10, [bytes(15)]],
    ['fewer', 10, [bytes(4)]],
  ] as const)('%s than declared (small body): 502 before any byte, nothing cached', async (_name, declared, chunks) => {
    const remote = new ScriptedRemote(async () => ({ contentType: 'image/png', contentDisposition: null, contentLength: declared, body: bodyOf(...chunks) }));
    const { media, stored, logger } = setup(remote);
    const error = await matrixError(media.getMedia('other.org', 'abc'));
    expect([error.httpStatus, error.errcode]).toEqual([502, 'M_UNKNOWN']);
    expect(await stored()).toBe(0);
    expect(logger.calls.find((call) => call.level === 'warn')?.obj).toMatchObject({ failure: 'bad_response' });
  });

  it('more than declared (live body): the first caller never gets the declared length, the others 502, nothing cached', async () => {
    const declared = 200 * 1024;
    let push!: (chunk: Uint8Array | null) => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (chunk) => (chunk === null ? controller.close() : controller.enqueue(chunk));
      },
    });
    const remote = new ScriptedRemote(async () => ({ contentType: 'video/mp4', contentDisposition: null, contentLength: declared, body }));
    const { media, stored } = setup(remote);
    push(bytes(100 * 1024)); // past the live window
    const first = await media.getMedia('other.org', 'big');
    expect(first).toBeInstanceOf(LiveMediaHandle);
    expect(first.size).toBe(declared);
    const second = matrixError(media.getMedia('other.org', 'big'));
    const reader = (await first.open()).getReader();
    let received = 0;
    const readAll = (async (): Promise<unknown> => {
      for (;;) {
        const next = await reader.read();
        if (next.done) return undefined;
        received += next.value.byteLength;
      }
    })().catch((reason: unknown) => reason);
    push(bytes(100 * 1024)); // completes the declared length
    push(bytes(1)); // one byte too many
    push(null);
    expect(await readAll).toBeInstanceOf(Error);
    expect(received).toBeLessThan(declared);
    expect((await second).httpStatus).toBe(502);
    expect(await stored()).toBe(0);
  });
});
