import { MemoryBlobStore, MemoryMetadataStore } from '@hsmedia/media-core/memory';
import { describeBlobStore } from './blob-store-suite.js';
import { describeMetadataStore } from './metadata-store-suite.js';
import {
  describeJobLeases,
  describeMediaQueries,
  describeMediaRecordStore,
  describeServerKeyStore,
  describeThumbnailIndex,
} from './port-suites.js';

// The in-memory stores of @hsmedia/media-core/memory (what tests and examples use) are held to the
// contract of the SQL and file stores. media-core cannot run these itself: conformance depends on it.
async function memoryStore() {
  const store = new MemoryMetadataStore();
  return { store, cleanup: () => store.close() };
}

describeMetadataStore('MemoryMetadataStore', memoryStore);

// Each port's suite on its own as well, so every entry point of this package runs in its own tests.
describeMediaRecordStore('MemoryMetadataStore', memoryStore);
describeThumbnailIndex('MemoryMetadataStore', memoryStore);
describeMediaQueries('MemoryMetadataStore', memoryStore);
describeJobLeases('MemoryMetadataStore', memoryStore);
describeServerKeyStore('MemoryMetadataStore', memoryStore);

describeBlobStore('MemoryBlobStore', async () => ({ store: new MemoryBlobStore(), cleanup: async () => {} }));
