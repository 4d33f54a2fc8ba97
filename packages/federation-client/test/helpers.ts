import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, LookupFunction } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RemoteMediaError } from '@hsmedia/media-core';
import { expect } from 'vitest';
import {
  canonicalJsonBytes,
  generateSigningKey,
  parseXMatrixHeader,
  requestSigningObject,
  verifyBytes,
  type SigningKey,
} from '@hsmedia/signing';

/** One request the scripted remote saw. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  /** TLS SNI the client sent (false: none), for HTTPS servers. */
  readonly servername: string | false | null | undefined;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A small HTTP(S) server on 127.0.0.1:0 that answers by path (without query), and records requests. */
export interface ScriptedRemote {
  readonly port: number;
  readonly base: string;
  readonly seen: SeenRequest[];
  /** Routes by path; unknown paths get 404 M_UNRECOGNIZED, as a spec-conforming server answers. */
  readonly routes: Map<string, Handler>;
  close(): Promise<void>;
}

const fixtures = new URL('./fixtures/', import.meta.url);
export const TEST_CA: string = readFileSync(new URL('ca.pem', fixtures), 'utf8');
const SERVER_CERT = readFileSync(new URL('server.pem', fixtures), 'utf8');
const SERVER_KEY = readFileSync(new URL('server.key', fixtures), 'utf8');

export async function startRemote(options: { tls?: boolean } = {}): Promise<ScriptedRemote> {
  const seen: SeenRequest[] = [];
  const routes = new Map<string, Handler>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket as TLSSocket;
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, servername: socket.servername });
    const path = (req.url ?? '').split('?')[0]!;
    const route = routes.get(path);
    if (route !== undefined) return route(req, res);
    json(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
  };
  const server: Server =
    options.tls === true ? createHttpsServer({ cert: SERVER_CERT, key: SERVER_KEY }, handler) : createHttpServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    base: `${options.tls === true ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    routes,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export const BOUNDARY = '6f1b0e0c3c5e4a5b9d2f7a8e1c4b3d2a';
export const MULTIPART_TYPE = `multipart/mixed; boundary=${BOUNDARY}`;

/** The inline example answer of the federation download endpoint, after MSC3916 (243 bytes). */
export const INLINE_BODY =
  `\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n` +
  `Content-Type: text/plain\r\nContent-Disposition: inline; filename=hello.txt\r\n\r\nHello, world!\n\r\n--${BOUNDARY}--\r\n`;

/** The head of an inline multipart body, up to the media bytes. */
export function inlineHead(type = 'application/octet-stream'): string {
  return `\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\nContent-Type: ${type}\r\n\r\n`;
}

export const INLINE_TAIL = `\r\n--${BOUNDARY}--\r\n`;

export function locationBody(location: string): string {
  return (
    `\r\n--${BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${BOUNDARY}\r\n` +
    `Location: ${location}\r\n\r\n\r\n--${BOUNDARY}--\r\n`
  );
}

/** Resolves every name to 127.0.0.1 (or the given address) without DNS. */
export function loopbackLookup(address = '127.0.0.1'): LookupFunction {
  return ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (options.all === true) cb(null, [{ address, family: address.includes(':') ? 6 : 4 }]);
    else cb(null, address, address.includes(':') ? 6 : 4);
  }) as unknown as LookupFunction;
}

export const ORIGIN = 'origin.test';
export const signingKey: SigningKey = generateSigningKey('test');

/** Verifies the X-Matrix header of a request the remote saw, as the receiving server would. */
export function verifySignature(seen: SeenRequest, destination: string): boolean {
  const header = seen.headers.authorization;
  if (header === undefined) return false;
  const auth = parseXMatrixHeader(header);
  if (auth.origin !== ORIGIN || auth.destination !== destination || auth.key !== signingKey.keyId) return false;
  const bytes = canonicalJsonBytes(requestSigningObject({ method: seen.method, uri: seen.url, origin: ORIGIN, destination }));
  return verifyBytes(signingKey.publicKey, bytes, auth.sig);
}

/** Reads a Web stream to text, or returns the error it fails with. */
export async function readText(stream: ReadableStream<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

/** The `RemoteMediaError` a fetch fails with (fails the test when it fails with anything else). */
export async function remoteFailure(promise: Promise<unknown>): Promise<RemoteMediaError> {
  const error = await failureOf(promise);
  expect(error).toBeInstanceOf(RemoteMediaError);
  return error as RemoteMediaError;
}

/** A TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createHttpServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}
