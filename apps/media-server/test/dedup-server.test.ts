import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type StartedServer } from '../src/server.js';
import { tempDir, testConfig, upload } from './helpers.js';

// The server with `dedup.enabled` on SQLite and the filesystem: the dedup gauges and the health probe.
let server: StartedServer | undefined;
let dir: { path: string; cleanup(): Promise<void> } | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await dir?.cleanup();
  dir = undefined;
});

/** A sample without labels from a Prometheus scrape, or undefined when absent. */
function sample(scrape: string, name: string): number | undefined {
  const line = scrape.split('\n').find((text) => text.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function blobFiles(): Promise<string[]> {
  const entries = await readdir(join(dir!.path, 'data', 'media', 'blobs'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

describe('hsmedia-server with dedup.enabled', () => {
  it('reports stored and referenced bytes and the ratio; the health probe leaves no blob behind', async () => {
    dir = await tempDir('h15dedup-server-');
    server = await startServer(
      testConfig(dir.path, {
        log_level: 'silent',
        auth: { tokens: { alice_token: '@alice:localhost', bob_token: '@bob:localhost' } },
        dedup: { enabled: true },
        media_store: { filesystem: { path: join(dir.path, 'data', 'media') } },
        metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
      }),
    );
    for (const token of ['alice_token', 'bob_token', 'alice_token']) {
      const response = await upload(server.url, token, 'the same forty bytes, uploaded three times');
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    expect(await blobFiles()).toHaveLength(1);
    const text = await (await fetch(`${server.operations.metricsUrl()}/metrics`)).text();
    expect(sample(text, 'hsmedia_blob_stored_bytes')).toBe(42);
    expect(sample(text, 'hsmedia_blob_referenced_bytes')).toBe(126);
    expect(sample(text, 'hsmedia_blob_dedup_ratio')).toBe(3);

    for (let i = 0; i < 3; i++) {
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
      await health.arrayBuffer();
    }
    expect(await blobFiles()).toHaveLength(1);
  });
});
