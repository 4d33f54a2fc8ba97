/**
 * One first-access import per media ID in a deployment: two processes' read-throughs (two media
 * services sharing one metadata store with leases and one blob store, each with its own connection to
 * the real-Synapse fixture) asked for the same unknown ID at once import it once; both then serve it.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { MediaImports, MediaService, type ByteSource, type ImportedMediaRecord, type ImportOutcome } from '@hsmedia/media-core';
import { MemoryBlobStore, MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { noopLogger, systemClock } from '@hsmedia/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SynapseConnection } from '../../src/synapse-read-through/synapse-item-import.js';
import { ProblemLog, SynapseReadThrough } from '../../src/synapse-read-through/synapse-read-through.js';
import { tempDir } from '../helpers.js';
import { copySynapseFixture, loadSynapseFixture, type SynapseFixture } from './synapse-fixture.js';

const loaded = await loadSynapseFixture();
if (loaded.fixture === undefined) process.stderr.write(`\n!! SKIPPED: no real-Synapse fixture: ${loaded.reason}\n\n`);

/** The sink, counting the media imports it is asked for. */
class CountingImports extends MediaImports {
  calls = 0;
  override importMedia(record: ImportedMediaRecord, bytes: ByteSource | null, signal?: AbortSignal): Promise<ImportOutcome> {
    this.calls++;
    return super.importMedia(record, bytes, signal);
  }
}

describe.skipIf(loaded.fixture === undefined)('read-through single flight across processes', { timeout: 120_000 }, () => {
  let dir: { path: string; cleanup(): Promise<void> };
  let fixture: SynapseFixture;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    dir = await tempDir('hsmedia-read-through-flight-');
    fixture = await copySynapseFixture(loaded.fixture!, join(dir.path, 'synapse'));
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await dir?.cleanup();
  });

  it('imports an ID asked of two processes at once one time; both serve it', async () => {
    const metadata = new MemoryMetadataStore();
    const blobs = new MemoryBlobStore();
    const serverName = fixture.serverName;
    const processes = [0, 1].map(() => {
      const connection = new SynapseConnection({ database: { sqlite: fixture.databasePath }, mediaStorePath: fixture.mediaStorePath }, noopLogger);
      const holder: { readThrough?: SynapseReadThrough } = {};
      const media = new MediaService({ serverName, blobs, metadata, maxUploadBytes: 50 << 20, localFallback: { bring: (id) => holder.readThrough!.bring(id) } });
      const imports = new CountingImports({ catalog: media.catalog });
      holder.readThrough = new SynapseReadThrough({ connection, imports, serverName, problems: new ProblemLog(), clock: systemClock, logger: noopLogger, leases: metadata });
      closers.push(async () => {
        await media.close();
        await connection.close();
      });
      return { media, imports };
    });
    const item = loaded.fixture!.items.find((entry) => entry.label === 'binary-5mib')!;
    const handles = await Promise.all(processes.map(({ media }) => media.getMedia(serverName, item.mediaId)));
    expect(processes[0]!.imports.calls + processes[1]!.imports.calls).toBe(1);
    for (const handle of handles) {
      const stream = await handle.open();
      const bytes = Buffer.from(await new Response(stream).arrayBuffer());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(item.sha256);
    }
  });
});
