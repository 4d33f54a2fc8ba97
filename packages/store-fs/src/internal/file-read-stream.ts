// The file stream every file-backed store uses lives in media-core (the local cache of store-s3 serves files too).
export { fileReadStream } from '@hsmedia/media-core';
