/**
 * `@hsmedia/multipart`: the `multipart/mixed` codec of Matrix federation
 * media responses
 * (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid).
 * Streaming both ways; tolerant when reading, exact (Synapse-compatible) when writing.
 */
export { decodeMultipart } from './decode.js';
export type { DecodeOptions, DecodedContent, DecodedLocation, DecodedMultipart } from './decode.js';
export { encodeMultipart, multipartFrame } from './encode.js';
export type { EncodeContent, EncodeLocation, EncodeOptions, EncodedMultipart, MultipartFrame, MultipartFrameOptions } from './encode.js';
export { MultipartPushDecoder } from './push-decoder.js';
export type { MultipartHead, MultipartPushHandler, PushDecoderLimits } from './push-decoder.js';
export { parseBoundary, isWritableBoundary } from './content-type.js';
export {
  MultipartError,
  MultipartParseError,
  MultipartTooLargeError,
  MultipartTruncatedError,
  isMultipartError,
} from './errors.js';
export type { MultipartErrorCode, MultipartErrorOptions, MultipartLimit } from './errors.js';
export type { ByteSource } from './internal/source.js';
