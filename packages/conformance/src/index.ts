export { describeBlobStore, type BlobStoreFactory, type BlobStoreSubject } from './blob-store-suite.js';
export { type PortFactory, type PortSubject } from './port-subject.js';
export {
  describeMediaRecordStore,
  describeThumbnailIndex,
  describeMediaQueries,
  describeJobLeases,
  describeBlockedHashes,
  describeAdminAuditLog,
  describeServerKeyStore,
} from './port-suites.js';
export {
  describeMetadataStore,
  type MetadataStoreFactory,
  type MetadataStoreSubject,
} from './metadata-store-suite.js';
