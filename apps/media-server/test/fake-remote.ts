import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { encodeMultipart } from '@hsmedia/multipart';
import { buildServerKeysResponse, generateSigningKey } from '@hsmedia/signing';

/** The server name {@link FakeRemote} answers for. */
export const REMOTE = 'remote.test';

/**
 * A scripted remote homeserver (on 127.0.0.1) that publishes its signing key and answers federation
 * media downloads, counting them: IDs set in `media` at once as `image/png`; any other ID with the
 * trickled `content` (so that every client arrives while the fetch is in flight), or 404 when
 * constructed with `{ onlyListedMedia: true }`.
 */
export class FakeRemote {
  readonly server: Server;
  readonly content = randomBytes(256 * 1024);
  readonly signingKey = generateSigningKey();
  readonly media = new Map<string, Buffer>();
  downloads = 0;
  keyFetches = 0;
  url = '';

  constructor(options: { onlyListedMedia?: boolean } = {}) {
    this.server = createServer((req, res) => {
      if (req.url === '/_matrix/key/v2/server') {
        this.keyFetches++;
        const keys = buildServerKeysResponse({ serverName: REMOTE, signingKeys: this.signingKey, validUntilTs: Date.now() + 3_600_000 });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys));
        return;
      }
      const mediaId = /^\/_matrix\/federation\/v1\/media\/download\/([A-Za-z0-9_-]+)/.exec(req.url ?? '')?.[1];
      const listed = mediaId === undefined ? undefined : this.media.get(mediaId);
      if (mediaId === undefined || (listed === undefined && options.onlyListedMedia === true)) {
        const errcode = mediaId === undefined ? 'M_UNRECOGNIZED' : 'M_NOT_FOUND';
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errcode, error: 'no' }));
        return;
      }
      this.downloads++;
      const encoded = encodeMultipart({
        content:
          listed === undefined
            ? {
                contentType: 'application/octet-stream',
                contentDisposition: 'attachment; filename="remote.bin"',
                contentLength: this.content.length,
                stream: Readable.toWeb(Readable.from(trickle(this.content))) as ReadableStream<Uint8Array>,
              }
            : {
                contentType: 'image/png',
                contentDisposition: 'inline; filename="remote.png"',
                contentLength: listed.length,
                stream: Readable.toWeb(Readable.from([listed])) as ReadableStream<Uint8Array>,
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

async function* trickle(content: Buffer): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < content.length; offset += 32 * 1024) {
    await new Promise((resolve) => setTimeout(resolve, 40));
    yield content.subarray(offset, offset + 32 * 1024);
  }
}
