import { execFile } from 'node:child_process';
import { get } from 'node:http';
import type { EventEmitter } from 'node:events';
import { constants } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Logger } from '@hsmedia/runtime';
import { listen } from '@hsmedia/test-fixtures';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { accessLoggerOf, createLogDestination, createLogger, flushLogger } from '../src/logger.js';
import { MediaMetrics } from '../src/metrics.js';
import { redactRequestTarget, requestLog, type RequestLogOptions } from '../src/request-log.js';

describe('redactRequestTarget', () => {
  it.each([
    ['/a', '/a'],
    ['/a?b=1', '/a?b=1'],
    ['/a?access_token=abc', '/a?access_token=[redacted]'],
    ['/a?x=1&access_token=abc&y=2', '/a?x=1&access_token=[redacted]&y=2'],
    ['/a?access_token=abc&access_token=def', '/a?access_token=[redacted]&access_token=[redacted]'],
    ['/a?access%5Ftoken=abc', '/a?access%5Ftoken=[redacted]'],
    ['/a?access_token', '/a?access_token=[redacted]'],
    ['/a?my_access_token=abc', '/a?my_access_token=abc'],
    ['/a?access_token=%zz', '/a?access_token=[redacted]'],
    ['/a?%zz=1', '/a?%zz=1'],
    // Percent-encoded anywhere in the name (the fast path only skips queries without '%' or the plain name).
    ['/a?width=96&%61ccess_token=abc', '/a?width=96&%61ccess_token=[redacted]'],
    ['/a?width=96&height=96&method=crop', '/a?width=96&height=96&method=crop'],
  ])('%s → %s', (input, output) => {
    expect(redactRequestTarget(input)).toBe(output);
  });
});

describe('requestLog', () => {
  const servers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  async function serve(logger: Logger, options: RequestLogOptions = {}): Promise<string> {
    const app = new Koa();
    app.silent = true;
    app.use(requestLog(logger, options));
    app.use(async (ctx) => {
      ctx.state['requester'] = { userId: '@alice:example.org' };
      if (ctx.path === '/stream') {
        ctx.body = Readable.from([Buffer.from('abc'), 'défg']);
      } else if (ctx.path === '/missing') {
        ctx.status = 404;
        ctx.body = { errcode: 'M_NOT_FOUND' };
      } else {
        ctx.body = 'hello';
      }
    });
    const server = await listen(app);
    servers.push(server);
    return server.url;
  }

  function recorder(): { logger: Logger; lines: Record<string, unknown>[]; closed: Promise<void>[] } {
    const lines: Record<string, unknown>[] = [];
    const logger: Logger = { debug() {}, info: (line) => void lines.push(line as Record<string, unknown>), warn() {}, error() {} };
    return { logger, lines, closed: [] };
  }

  async function waitFor(lines: unknown[], count: number): Promise<void> {
    // The line is written on the response's close event, just after the client has the body.
    while (lines.length < count) await new Promise((resolve) => setImmediate(resolve));
  }

  it('keeps every field: method, redacted path, status, streamed body bytes, duration and user', async () => {
    const { logger, lines } = recorder();
    const url = await serve(logger);
    expect(await (await fetch(`${url}/stream?access_token=secret&x=1`)).text()).toBe('abcdéfg');
    await waitFor(lines, 1);
    expect(lines[0]).toEqual({ method: 'GET', path: '/stream?access_token=[redacted]&x=1', status: 200, bytes: 8, duration_ms: expect.any(Number), user_id: '@alice:example.org' });
    await (await fetch(`${url}/missing`, { method: 'POST' })).arrayBuffer();
    await waitFor(lines, 2);
    expect(lines[1]).toMatchObject({ method: 'POST', path: '/missing', status: 404, bytes: 25 });
  });

  it('writes one aborted line when the client leaves first, and the late end of the response still works', async () => {
    const { logger, lines } = recorder();
    const app = new Koa();
    app.silent = true;
    const appErrors: unknown[] = [];
    app.on('error', (err: unknown) => void appErrors.push(err));
    let entered!: () => void;
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    let handled!: () => void;
    const handledLate = new Promise<void>((resolve) => (handled = resolve));
    app.use(requestLog(logger));
    app.use(async (ctx) => {
      entered();
      // Answer only after the client has gone: Koa then ends a response whose line is already written.
      await new Promise((resolve) => ctx.res.once('close', resolve));
      ctx.body = 'too late';
      handled();
    });
    const server = await listen(app);
    servers.push(server);
    const request = get(`${server.url}/late`);
    request.on('error', () => undefined);
    await handlerEntered;
    request.destroy();
    await handledLate;
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([expect.objectContaining({ path: '/late', aborted: true })]);
    expect(appErrors).toEqual([]);
  });

  it('samples success lines at the configured rate, never errors', async () => {
    const { logger, lines } = recorder();
    // 0.1, 0.9, 0.2, 0.8, ...: every other success is kept at a rate of 0.5.
    let call = 0;
    const url = await serve(logger, { successSampleRate: 0.5, random: () => (call++ % 2 === 0 ? 0.1 : 0.9) });
    for (let i = 0; i < 4; i++) await (await fetch(`${url}/ok`)).arrayBuffer();
    for (let i = 0; i < 3; i++) await (await fetch(`${url}/missing`)).arrayBuffer();
    await waitFor(lines, 5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lines.map((line) => line['status'])).toEqual([200, 200, 404, 404, 404]);
    expect(() => requestLog(logger, { successSampleRate: 0 })).toThrow(TypeError);
    expect(() => requestLog(logger, { successSampleRate: 1.5 })).toThrow(TypeError);
  });

  it('does nothing when the logger does not write info lines', async () => {
    const lines: unknown[] = [];
    const quiet = Object.assign(recorder().logger, { info: (line: object) => void lines.push(line), isLevelEnabled: (level: string) => level !== 'info' });
    const url = await serve(quiet);
    expect(await (await fetch(`${url}/ok`)).text()).toBe('hello');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lines).toEqual([]);
  });
});

describe('createLogDestination', () => {
  it('batches lines to a file and flushes them on demand', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hsmedia-log-'));
    try {
      const path = join(dir, 'log.jsonl');
      const logger = createLogger({ level: 'info', destination: createLogDestination({ dest: path }) });
      logger.info({ n: 1 }, 'first');
      logger.info({ n: 2 }, 'second');
      expect(await flushLogger(logger, 10_000)).toBe(true);
      const lines = (await readFile(path, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines.map((line) => [line['msg'], line['n'], line['level']])).toEqual([['first', 1, 'info'], ['second', 2, 'info']]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drops and counts lines beyond its bound while the destination is blocked, and a flush gives up after its timeout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hsmedia-log-'));
    const fifo = join(dir, 'blocked');
    await promisify(execFile)('mkfifo', [fifo]);
    // A reader that never reads: the pipe fills up and every later write would block.
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    let dropped = 0;
    const destination = createLogDestination({ dest: fifo, maxBufferBytes: 256 * 1024, onDrop: (lines) => void (dropped += lines) });
    await new Promise<void>((resolve) => (destination as unknown as EventEmitter).once('ready', () => resolve()));
    const logger = createLogger({ level: 'info', destination });
    try {
      const filler = 'x'.repeat(1000);
      for (let i = 0; i < 2000 && dropped === 0; i++) {
        logger.info({ i, filler }, 'line');
        if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(dropped).toBeGreaterThan(0);
      const before = dropped;
      logger.info({ filler }, 'dropped too');
      expect(dropped).toBe(before + 1);
      expect(await flushLogger(logger, 200)).toBe(false);
    } finally {
      await reader.close();
      (destination as unknown as { destroy(): void }).destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('accessLoggerOf writes the same line format into the same destination, at the same level', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hsmedia-log-'));
    try {
      const path = join(dir, 'log.jsonl');
      const logger = createLogger({ level: 'info', destination: createLogDestination({ dest: path }) });
      const access = accessLoggerOf(logger);
      expect(access.level).toBe('info');
      logger.info({ method: 'GET', path: '/a', status: 200 }, 'request');
      access.info({ method: 'GET', path: '/a', status: 200 }, 'request');
      // The main logger still redacts.
      logger.info({ access_token: 'secret' }, 'redacted');
      expect(await flushLogger(logger, 10_000)).toBe(true);
      const lines = (await readFile(path, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const withoutTime = (line: Record<string, unknown>): Record<string, unknown> => ({ ...line, time: 0 });
      expect(withoutTime(lines[1]!)).toEqual(withoutTime(lines[0]!));
      expect(lines[0]).toMatchObject({ level: 'info', service: 'hsmedia-server', msg: 'request' });
      expect(lines[2]).toMatchObject({ access_token: '[redacted]' });
      expect(accessLoggerOf(createLogger({ level: 'warn', destination: createLogDestination({ dest: '/dev/null' }) })).isLevelEnabled('info')).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a buffer bound too small to batch', () => {
    expect(() => createLogDestination({ dest: '/dev/null', maxBufferBytes: 100 })).toThrow(TypeError);
  });
});

describe('hsmedia_log_lines_dropped_total', () => {
  it('follows the count of dropped lines when scraped', async () => {
    const metrics = new MediaMetrics({ defaultMetrics: false });
    let dropped = 0;
    metrics.watchLogDrops(() => dropped);
    expect(await metrics.registry.metrics()).toMatch(/^hsmedia_log_lines_dropped_total 0$/m);
    dropped = 3;
    expect(await metrics.registry.metrics()).toMatch(/^hsmedia_log_lines_dropped_total 3$/m);
    dropped = 10;
    expect(await metrics.registry.metrics()).toMatch(/^hsmedia_log_lines_dropped_total 10$/m);
  });
});
