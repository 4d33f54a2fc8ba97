/**
 * `@hsmedia/media-core/memory`: the in-memory implementations of the
 * storage ports, for tests, demos and examples. They pass the same
 * `@hsmedia/conformance` suites as the real stores; nothing persists and
 * nothing is shared between processes.
 */
export { MemoryMetadataStore, type MemoryMetadataStoreOptions } from './memory-metadata-store.js';
export { type MemoryServerKey } from './server-key-table.js';
export { MemoryBlobStore } from './memory-blob-store.js';
