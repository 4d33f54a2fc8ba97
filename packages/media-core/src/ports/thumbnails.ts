import type { ByteSource } from './blob-store.js';

/** `crop` fills the box exactly; `scale` fits inside it keeping the aspect ratio (https://spec.matrix.org/v1.12/client-server-api/#thumbnails). */
export type ThumbnailMethod = 'crop' | 'scale';

/** A requested or pre-generated thumbnail size. */
export interface ThumbnailSpec {
  readonly width: number;
  readonly height: number;
  readonly method: ThumbnailMethod;
  /** Keep animation (animated WebP/GIF output) when the source is animated. */
  readonly animated: boolean;
}

/** A generated thumbnail: small enough (bounded by its dimensions) to hand over as bytes. */
export interface GeneratedThumbnail {
  readonly spec: ThumbnailSpec;
  /** Real pixel size of the output. */
  readonly width: number;
  readonly height: number;
  /** The output's real type (image/jpeg, image/png, image/webp, image/gif). */
  readonly contentType: string;
  readonly animated: boolean;
  readonly bytes: Uint8Array;
}

/** Facts about a source image, read without decoding its pixels. */
export interface ImageProbe {
  readonly width: number;
  readonly height: number;
  /** Format as the decoder names it (jpeg, png, gif, webp, ...). */
  readonly format: string;
  readonly animated: boolean;
  readonly pages: number;
}

/** Makes thumbnails. Throws `ThumbnailError` for unsupported, corrupt or oversized input. */
export interface ThumbnailGenerator {
  /** Whether this source type can be thumbnailed at all (SVG and other scripted types: never). */
  supports(contentType: string): boolean;
  /** Generates every spec from one decode of the source (bounded by the generator's byte/pixel caps). */
  generate(
    source: ByteSource,
    contentType: string,
    specs: readonly ThumbnailSpec[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<GeneratedThumbnail[]>;
}
