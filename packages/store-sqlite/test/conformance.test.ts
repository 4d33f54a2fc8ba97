import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeMetadataStore } from '@hsmedia/conformance';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';

// The shared MediaMetadataStore suite on a real SQLite file, one temp dir per test.
describeMetadataStore('createSqliteMetadataStore (SQLite file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hsmedia-sqlite-conformance-'));
  const store = await createSqliteMetadataStore({ path: join(dir, 'media.db') });
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describeMetadataStore('createSqliteMetadataStore (:memory:, table prefix)', async () => {
  const store = await createSqliteMetadataStore({ path: ':memory:', tablePrefix: 'hs_' });
  return { store, cleanup: () => store.close() };
});
