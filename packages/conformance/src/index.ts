export { describeBlobStore, type BlobStoreFactory, type BlobStoreSubject } from './blob-store-suite.js';
