export { describeBlobStore, type BlobStoreFactory, type BlobStoreSubject } from './blob-store-suite.js';
export {
  describeMetadataStore,
  type MetadataStoreFactory,
  type MetadataStoreSubject,
} from './metadata-store-suite.js';
