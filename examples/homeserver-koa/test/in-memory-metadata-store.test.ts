import { describeMetadataStore } from '@hsmedia/conformance';
import { InMemoryMetadataStore } from '../src/in-memory-metadata-store.js';

// The same suite our SQLite and PostgreSQL stores run: a third-party store is held to the same contract.
describeMetadataStore('InMemoryMetadataStore (example homeserver)', async () => {
  const store = new InMemoryMetadataStore();
  return { store, cleanup: () => store.close() };
});
