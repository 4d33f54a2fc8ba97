import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMatrixError } from '@hsmedia/errors';
import type Koa from 'koa';

/** A Koa app listening on 127.0.0.1:0. */
export interface Listening {
  readonly port: number;
  readonly baseUrl: string;
  close(): Promise<void>;
}

export async function listen(app: Koa): Promise<Listening> {
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** A server listening on 127.0.0.1:0 before its app exists, so the app can know its own port. */
export async function listenFirst(): Promise<Listening & { serve(app: Koa): void }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    serve: (app) => {
      server.on('request', app.callback());
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Minimal Matrix error rendering for tests (the real one lives in koa-matrix). */
export function renderErrors(): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (!isMatrixError(error)) throw error;
      ctx.status = error.httpStatus;
      ctx.set({ ...error.headers });
      ctx.body = error.toJSON();
    }
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: unknown;
}

/** Sends a request with the target exactly as given (no URL normalisation). */
export function rawRequest(
  port: number,
  options: { method?: string; path: string; headers?: Record<string, string | string[]>; body?: string },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
