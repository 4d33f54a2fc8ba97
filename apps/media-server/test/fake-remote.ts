import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { encodeMultipart } from '@hsmedia/multipart';
import { buildServerKeysResponse, generateSigningKey } from '@hsmedia/signing';

/** The server name {@link FakeRemote} answers for. */
export const REMOTE = 'remote.test';

/** A scripted remote homeserver (on 127.0.0.1): answers federation media downloads, slowly, and counts them; publishes its signing key. */
export class FakeRemote {
  readonly server: Server;
  readonly content = randomBytes(256 * 1024);
  readonly signingKey = generateSigningKey();
  downloads = 0;
  keyFetches = 0;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      if (req.url === '/_matrix/key/v2/server') {
        this.keyFetches++;
        const keys = buildServerKeysResponse({ serverName: REMOTE, signingKeys: this.signingKey, validUntilTs: Date.now() + 3_600_000 });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys));
        return;
      }
      if (!req.url?.startsWith('/_matrix/federation/v1/media/download/')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"errcode":"M_UNRECOGNIZED","error":"no"}');
        return;
      }
      this.downloads++;
      const content = this.content;
      // Trickle the body so that every client arrives while the fetch is in flight.
      const chunks = (async function* () {
        for (let offset = 0; offset < content.length; offset += 32 * 1024) {
          await new Promise((resolve) => setTimeout(resolve, 40));
          yield content.subarray(offset, offset + 32 * 1024);
        }
      })();
      const encoded = encodeMultipart({
        content: {
          contentType: 'application/octet-stream',
          contentDisposition: 'attachment; filename="remote.bin"',
          contentLength: content.length,
          stream: Readable.toWeb(Readable.from(chunks)) as ReadableStream<Uint8Array>,
        },
      });
      res.writeHead(200, {
        'content-type': encoded.contentType,
        ...(encoded.contentLength === undefined ? {} : { 'content-length': String(encoded.contentLength) }),
      });
      Readable.fromWeb(encoded.body as import('node:stream/web').ReadableStream<Uint8Array>).pipe(res);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
