/**
 * `hsmedia-server import-synapse` end to end on the REAL-Synapse fixture (synapse-fixture.ts:
 * homeserver.db and media_store of a live Synapse 1.160 driven through its APIs): the CLI imports
 * everything without a problem, and then every item is answered as Synapse answered it, byte for
 * byte through the client and federation APIs, Synapse's own thumbnails included; quarantine
 * (admin, by user, `system`), protection and never-uploaded media answer as in Synapse.
 * Skips loudly when Synapse cannot be installed.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeMultipart } from '@hsmedia/multipart';
import { signXMatrixRequest } from '@hsmedia/signing';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli-main.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { tempDir, testConfig } from '../helpers.js';
import { copySynapseFixture, loadSynapseFixture } from './synapse-fixture.js';

const loaded = await loadSynapseFixture();
if (loaded.fixture === undefined) {
  const line = '!'.repeat(100);
  process.stderr.write(`\n${line}\n!! SKIPPED: import-synapse on a real Synapse has no fixture:\n!! ${loaded.reason.replaceAll('\n', '\n!! ')}\n${line}\n\n`);
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(loaded.fixture === undefined)('import-synapse on a real Synapse', { timeout: 120_000 }, () => {
  const source = loaded.fixture!;
  let dir: { path: string; cleanup(): Promise<void> };
  let peer: StartedServer | undefined;
  let server: StartedServer | undefined;

  beforeAll(async () => {
    dir = await tempDir('hsmedia-import-real-');
  });
  afterAll(async () => {
    await server?.close();
    await peer?.close();
    await dir?.cleanup();
  });

  it('imports every item and thumbnail; each is then served as Synapse served it, byte for byte, client and federation', async () => {
    const fixture = await copySynapseFixture(source, join(dir.path, 'synapse'));
    peer = await startServer(testConfig(join(dir.path, 'peer'), { server_name: 'peer.test', log_level: 'warn', auth: { tokens: { t: '@p:peer.test' } } }));
    const base = join(dir.path, 'hsmedia');
    const document = {
      server_name: source.serverName,
      listen: { host: '127.0.0.1', port: 0 },
      database: { sqlite: { path: join(base, 'media.db') } },
      media_store: { filesystem: { path: join(base, 'media') } },
      signing_key_path: join(base, 'signing.key'),
      log_level: 'warn',
      auth: { tokens: { alice_token: `@alice:${source.serverName}` } },
      federation: { destinations: { 'peer.test': peer.url }, ip_range_allowlist: ['127.0.0.1/32'] },
    };
    await writeFile(join(dir.path, 'hsmedia.yaml'), stringify(document));
    let out = '';
    let err = '';
    const io = { stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) }, cwd: dir.path };
    const code = await runCommand(
      ['import-synapse', '--database', fixture.databasePath, '--media-store', fixture.mediaStorePath, '--report', join(dir.path, 'report.jsonl'), '--config', join(dir.path, 'hsmedia.yaml')],
      io,
    );
    expect(code, `${out}\n${err}`).toBe(0);

    server = await startServer(testConfig(base, document));
    const client = async (path: string): Promise<{ status: number; type: string | null; body: Buffer }> => {
      const response = await fetch(`${server!.url}${path}`, { headers: { Authorization: 'Bearer alice_token' } });
      return { status: response.status, type: response.headers.get('content-type'), body: Buffer.from(await response.arrayBuffer()) };
    };
    const federation = async (uri: string): Promise<Buffer> => {
      const response = await fetch(`${server!.url}${uri}`, { headers: { Authorization: signXMatrixRequest({ method: 'GET', uri, origin: 'peer.test', destination: source.serverName }, peer!.signingKey) } });
      expect(response.status, uri).toBe(200);
      const decoded = await decodeMultipart(response.headers.get('content-type') ?? '', response.body!, { maxContentBytes: 8 << 20 });
      if (decoded.kind !== 'content') throw new Error('expected inline content');
      return Buffer.from(await new Response(decoded.stream).arrayBuffer());
    };

    for (const item of source.items) {
      const answer = await client(`/_matrix/client/v1/media/download/${item.serverName}/${item.mediaId}?timeout_ms=0`);
      expect(answer.status, item.label).toBe(item.downloadStatus);
      if (item.downloadStatus !== 200) continue;
      expect(sha256(answer.body), item.label).toBe(item.sha256);
      if (item.origin === 'local') expect(sha256(await federation(`/_matrix/federation/v1/media/download/${item.mediaId}`)), `federation ${item.label}`).toBe(item.sha256);
      for (const thumbnail of item.thumbnails) {
        const thumb = await client(`/_matrix/client/v1/media/thumbnail/${item.serverName}/${item.mediaId}?${thumbnail.query}`);
        expect(thumb.status, `${item.label} ${thumbnail.query}`).toBe(200);
        // Crops are asked at the sizes Synapse stored: the very thumbnail Synapse served (rotated by EXIF for the JPEG).
        if (!thumbnail.query.includes('method=crop') || thumbnail.query.includes('animated')) continue;
        if (item.label === 'webp-animated') {
          // Synapse prefers a row of the source's type, so it answers a still request on an animated WebP
          // with its animated image/webp row; hsmedia answers with the still row, as MSC2705 asks.
          expect(thumb.type).toBe('image/jpeg');
          continue;
        }
        expect({ type: thumb.type, sha256: sha256(thumb.body) }, `${item.label} ${thumbnail.query}`).toEqual({ type: thumbnail.contentType, sha256: thumbnail.sha256 });
        if (item.origin === 'local') {
          const overFederation = await federation(`/_matrix/federation/v1/media/thumbnail/${item.mediaId}?${thumbnail.query}`);
          expect(sha256(overFederation), `federation ${item.label} ${thumbnail.query}`).toBe(thumbnail.sha256);
        }
      }
    }
  });
});
