import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClamdClient, ClamdError, ClamdMediaScanner, isClamdError, type ClamdErrorCode } from '@hsmedia/clamav';
import { TEST_SIGNATURE, TEST_VIRUS_MARKER, startClamd, type TestClamd } from '@hsmedia/test-fixtures/clamd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeClamd } from './fake-clamd.js';

async function* chunksOf(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part, 'latin1') : part;
}

async function errorCode(promise: Promise<unknown>): Promise<ClamdErrorCode | 'none' | 'untyped'> {
  try {
    await promise;
    return 'none';
  } catch (err) {
    return isClamdError(err) ? err.code : 'untyped';
  }
}

let clamd: TestClamd;

beforeAll(async () => {
  clamd = await startClamd({ streamMaxLength: '2M' });
}, 900_000);

afterAll(async () => {
  await clamd?.close();
});

describe('ClamdClient against a real clamd', () => {
  it('runs the README example: scans a file over the Unix socket', async () => {
    const file = join(clamd.dir, 'upload.bin');
    await writeFile(file, `prefix ${TEST_VIRUS_MARKER} suffix`);
    const client = new ClamdClient({ socket: clamd.socket });
    const verdict = await client.scan(createReadStream(file));
    expect(verdict).toEqual({ verdict: 'infected', signature: TEST_SIGNATURE });
  });

  it('answers clean and infected over TCP, with the marker split across chunks and frames', async () => {
    const client = new ClamdClient({ port: clamd.port, chunkBytes: 7 });
    expect(await client.scan(chunksOf('hello ', 'world'))).toEqual({ verdict: 'clean' });
    const half = TEST_VIRUS_MARKER.length >> 1;
    const infected = await client.scan(chunksOf('a'.repeat(100_000), TEST_VIRUS_MARKER.slice(0, half), TEST_VIRUS_MARKER.slice(half), 'tail'));
    expect(infected).toEqual({ verdict: 'infected', signature: TEST_SIGNATURE });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(Buffer.from(TEST_VIRUS_MARKER));
        controller.close();
      },
    });
    expect(await new ClamdMediaScanner(client).scan({ bytes: stream, size: TEST_VIRUS_MARKER.length, signal: new AbortController().signal })).toEqual({
      verdict: 'infected',
      signature: TEST_SIGNATURE,
    });
  });

  it('streams a large clean body with back-pressure, and tells the version and PONG', async () => {
    const client = new ClamdClient({ socket: clamd.socket });
    const mib = new Uint8Array(1024 * 1024).fill(0x41);
    expect(await client.scan(chunksOf(mib))).toEqual({ verdict: 'clean' });
    expect(await client.version()).toMatch(/^ClamAV \d/);
    await client.ping();
  });

  it('turns clamd\'s StreamMaxLength into an error, never a verdict (size_limit when its answer arrives first)', async () => {
    const client = new ClamdClient({ socket: clamd.socket });
    const big = new Uint8Array(3 * 1024 * 1024);
    const error = await client.scan(chunksOf(big)).catch((err: unknown) => err);
    // clamd answers and hangs up while we still write: Node may drop the socket on EPIPE before the
    // answer is read, so `closed` is possible too (a failure: retried, never served).
    expect(['size_limit', 'closed']).toContain((error as { code?: string }).code);
    expect(new ClamdMediaScanner(client).isSizeLimitError(error)).toBe((error as { code?: string }).code === 'size_limit');
    expect(new ClamdMediaScanner(client).isSizeLimitError(new ClamdError('size_limit', 'x'))).toBe(true);
  });

  it('aborts on the caller\'s signal, and refuses a signal already aborted', async () => {
    const client = new ClamdClient({ socket: clamd.socket });
    const controller = new AbortController();
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (let i = 0; ; i++) {
        if (i === 10) controller.abort();
        yield new Uint8Array(16 * 1024);
      }
    }
    expect(await errorCode(client.scan(endless(), { signal: controller.signal }))).toBe('aborted');
    expect(await errorCode(client.scan(chunksOf('x'), { signal: AbortSignal.abort() }))).toBe('aborted');
  });
});

describe('ClamdClient faults', () => {
  it('says connect when nothing listens', async () => {
    const client = new ClamdClient({ socket: join(clamd.dir, 'nobody.sock') });
    expect(await errorCode(client.scan(chunksOf('x')))).toBe('connect');
    expect(await errorCode(client.ping())).toBe('connect');
    // The unread source is cancelled, so what it holds (an open file) is released.
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(new Uint8Array(1)),
      cancel: () => {
        cancelled = true;
      },
    });
    expect(await errorCode(client.scan(stream))).toBe('connect');
    expect(cancelled).toBe(true);
  });

  it('says protocol for garbage, closed for a silent hang-up, timeout for silence', async () => {
    const garbage = await startFakeClamd((socket) => socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const hangUp = await startFakeClamd((socket) => socket.once('data', () => socket.destroy()));
    const silent = await startFakeClamd((socket) => socket.resume());
    const flood = await startFakeClamd((socket) => socket.once('data', () => socket.write(Buffer.alloc(10_000, 0x41))));
    try {
      expect(await errorCode(new ClamdClient({ port: garbage.port }).scan(chunksOf('x')))).toBe('protocol');
      expect(await errorCode(new ClamdClient({ port: garbage.port }).version())).toBe('protocol');
      expect(await errorCode(new ClamdClient({ port: hangUp.port }).scan(chunksOf('x')))).toBe('closed');
      expect(await errorCode(new ClamdClient({ port: silent.port, timeoutMs: 200 }).scan(chunksOf('x')))).toBe('timeout');
      expect(await errorCode(new ClamdClient({ port: flood.port }).scan(chunksOf('x')))).toBe('protocol');
    } finally {
      await Promise.all([garbage.close(), hangUp.close(), silent.close(), flood.close()]);
    }
  });

  it('says closed when clamd dies mid-stream, and stops reading the source', async () => {
    let pulled = 0;
    const dying = await startFakeClamd((socket, count) => {
      socket.on('data', (data: Buffer) => {
        count(data.byteLength);
        if (dying.received() > 256 * 1024) socket.destroy();
      });
    });
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) {
        pulled++;
        yield new Uint8Array(64 * 1024);
      }
    }
    try {
      expect(await errorCode(new ClamdClient({ port: dying.port }).scan(endless()))).toBe('closed');
      const pulledAtFailure = pulled;
      expect(pulledAtFailure).toBeLessThan(1000);
    } finally {
      await dying.close();
    }
  });

  it('refuses bad options: both or neither target, a non-loopback host, bad numbers', () => {
    expect(() => new ClamdClient({})).toThrow(TypeError);
    expect(() => new ClamdClient({ socket: '/x', port: 3310 })).toThrow(TypeError);
    expect(() => new ClamdClient({ host: 'clamd.example.org', port: 3310 })).toThrow(/loopback/);
    expect(() => new ClamdClient({ port: 0 })).toThrow(TypeError);
    expect(() => new ClamdClient({ port: 3310, timeoutMs: 0 })).toThrow(TypeError);
    expect(new ClamdError('timeout', 'x').code).toBe('timeout');
  });
});
