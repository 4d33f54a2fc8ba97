/** Which formats come in, and which go out, of the thumbnailer. */
import type { SourceFormat } from './sniff.js';

/** Formats whose original bytes may be served as a thumbnail (the content types the thumbnail endpoint allows). */
export const PASS_THROUGH_TYPES: Readonly<Partial<Record<SourceFormat, string>>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
};

/**
 * The still output of each source format, as Synapse maps them (`THUMBNAIL_SUPPORTED_MEDIA_FORMAT_MAP`
 * in https://github.com/element-hq/synapse/blob/develop/synapse/config/repository.py): JPEG and WebP sources give JPEG, PNG and GIF sources
 * give PNG (they may be transparent, and Complement's `TestFederationThumbnail` expects a PNG
 * thumbnail of a PNG). Formats Synapse does not list (AVIF) are absent: they go by alpha.
 */
export const STILL_OUTPUT: Readonly<Partial<Record<SourceFormat, 'jpeg' | 'png'>>> = {
  jpeg: 'jpeg',
  webp: 'jpeg',
  png: 'png',
  gif: 'png',
};

/** What libvips calls each sniffed format. */
export const DECODER_NAME: Readonly<Record<SourceFormat, string>> = {
  jpeg: 'jpeg',
  png: 'png',
  gif: 'gif',
  webp: 'webp',
  avif: 'heif',
};

/** The still output format of a source: {@link STILL_OUTPUT}, else PNG when it has alpha and JPEG when not. */
export function stillOutputOf(sniffed: SourceFormat, hasAlpha: boolean): 'jpeg' | 'png' {
  return STILL_OUTPUT[sniffed] ?? (hasAlpha ? 'png' : 'jpeg');
}
