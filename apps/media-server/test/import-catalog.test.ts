import { join } from 'node:path';
import { MediaImports } from '@hsmedia/media-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig, type MediaServerConfig } from '../src/config.js';
import { importCatalog } from '../src/commands/import-catalog.js';
import { openStores, type OpenStores } from '../src/stores.js';
import { tempDir } from './helpers.js';

// The offline importers (import-synapse, import-mmr, import-archive) write through importCatalog:
// with scanning configured, what they import must wait for the server's scan stage (stored
// `pending`), never be served unscanned.

let dir: { path: string; cleanup(): Promise<void> };
let stores: OpenStores | undefined;

beforeEach(async () => {
  dir = await tempDir('hsmedia-import-catalog-');
});
afterEach(async () => {
  await stores?.close();
  stores = undefined;
  await dir.cleanup();
});

function configWith(extra: Record<string, unknown>): MediaServerConfig {
  const result = parseConfig(
    { server_name: 'example.org', database: { sqlite: { path: join(dir.path, 'media.sqlite') } }, media_store: { filesystem: { path: join(dir.path, 'media') } }, ...extra },
    dir.path,
  );
  if (!result.ok) throw new Error(JSON.stringify(result));
  return result.config;
}

async function* bytes(text: string): AsyncGenerator<Uint8Array> {
  yield new TextEncoder().encode(text);
}

async function importOne(config: MediaServerConfig): Promise<string | undefined> {
  stores = await openStores(config);
  const imports = new MediaImports({ catalog: importCatalog(config, stores), actor: 'test' });
  const record = { serverName: 'example.org', mediaId: 'imported1', contentType: 'text/plain', uploadName: 'a.txt', userId: '@a:example.org', createdAt: 1_600_000_000_000, lastAccessAt: null, quarantined: false, protected: false };
  expect(await imports.importMedia(record, bytes('hello'))).toBe('imported');
  return (await stores.metadata.getMedia('example.org', 'imported1'))?.scanState;
}

describe('importCatalog', () => {
  it('stores imported media pending a scan when scanning is configured', async () => {
    expect(await importOne(configWith({ scanning: { clamd: { socket: join(dir.path, 'clamd.sock') } } }))).toBe('pending');
  });

  it('stores imported media as servable when scanning is off', async () => {
    expect(await importOne(configWith({}))).toBeUndefined();
  });
});
