export { ThumbnailError, thumbnailErrorToMatrixError, type ThumbnailErrorCode } from './errors.js';
export { thumbnailGeometry, type ThumbnailGeometry, type CropBox } from './geometry.js';
export { selectThumbnail, type StoredThumbnailInfo, type SelectThumbnailOptions } from './select.js';
export {
  DEFAULT_THUMBNAIL_SIZES,
  DEFAULT_MAX_THUMBNAIL_DIMENSION,
  thumbnailSpecForRequest,
  type ThumbnailQuery,
  type ThumbnailRequestOptions,
} from './params.js';
export {
  SharpThumbnailer,
  THUMBNAILABLE_CONTENT_TYPES,
  type SharpThumbnailerOptions,
  type GenerateOptions,
  type SharpGeneratedThumbnail,
} from './sharp-thumbnailer.js';
