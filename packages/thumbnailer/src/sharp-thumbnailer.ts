import { availableParallelism } from 'node:os';
import { essenceOf, type ByteSource, type GeneratedThumbnail, type ImageProbe, type ThumbnailGenerator, type ThumbnailSpec } from '@hsmedia/media-core';
import { noopLogger, raceAbort, type Logger } from '@hsmedia/runtime';
import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';
import { ThumbnailError } from './errors.js';
import { thumbnailGeometry, type ThumbnailGeometry } from './geometry.js';
import { readSource } from './internal/read-source.js';
import { Semaphore } from './internal/semaphore.js';
import { DECODER_NAME, PASS_THROUGH_TYPES, stillOutputOf } from './internal/formats.js';
import { isAnimatedPng, sniffFormat, type SourceFormat } from './internal/sniff.js';

/** Options of {@link SharpThumbnailer}. */
export interface SharpThumbnailerOptions {
  /** Largest source accepted, in bytes; checked while reading (default 50 MiB, Synapse's `max_upload_size`). */
  readonly maxSourceBytes?: number;
  /** Largest source accepted, in pixels of one frame, read from the header before decoding (default 32 Mi, Synapse's `max_image_pixels`). */
  readonly maxPixels?: number;
  /** Most frames an animated thumbnail is made from; longer animations give a still (default 100). */
  readonly maxFrames?: number;
  /** Jobs (one `generate` call each) running at once; more wait in line (default: the number of CPU cores). */
  readonly maxConcurrent?: number;
  /** Quality of JPEG and animated WebP output, 1-100 (default 80, as Synapse). */
  readonly jpegQuality?: number;
  /** Time budget of one job from when it starts running (default 30 s); over it: `ThumbnailError` `too_large`. */
  readonly timeoutMs?: number;
  /**
   * libvips worker threads per image (process-wide `sharp.concurrency`). Default:
   * cores / `maxConcurrent`, at least 1, so parallel jobs do not oversubscribe the CPU.
   * `'keep'` leaves the process setting alone.
   */
  readonly vipsThreads?: number | 'keep';
  readonly logger?: Logger;
}

/** Options of one {@link SharpThumbnailer.generate} call. */
export interface GenerateOptions {
  readonly signal?: AbortSignal;
}

/** A generated thumbnail, and whether it is the source's own bytes (source no larger than asked: never upscale). */
export interface SharpGeneratedThumbnail extends GeneratedThumbnail {
  readonly original: boolean;
}

/** Source content types `supports()` accepts; the bytes must then really be one of them. */
export const THUMBNAILABLE_CONTENT_TYPES: readonly string[] = Object.freeze([
  'image/jpeg',
  'image/jpg',
  'image/pjpeg',
  'image/png',
  'image/apng',
  'image/gif',
  'image/webp',
  'image/avif',
]);

const MIB = 1024 * 1024;
const DEFAULTS = {
  maxSourceBytes: 50 * MIB,
  maxPixels: 32 * MIB,
  maxFrames: 100,
  jpegQuality: 80,
  timeoutMs: 30_000,
} as const;

interface SourceInfo extends ImageProbe {
  readonly sniffed: SourceFormat;
  /** Size after EXIF orientation. */
  readonly orientedWidth: number;
  readonly orientedHeight: number;
  readonly hasAlpha: boolean;
  /** An animated thumbnail can be made (GIF/WebP within the frame and pixel caps). */
  readonly canAnimate: boolean;
  /** The original may be handed out unchanged when small enough. */
  readonly passThroughType: string | null;
  readonly delay: number[] | undefined;
  readonly loop: number;
}

type Job =
  | { readonly kind: 'original' }
  | { readonly kind: 'still'; readonly geometry: ThumbnailGeometry }
  | { readonly kind: 'animated'; readonly geometry: ThumbnailGeometry };

interface Encoded {
  readonly bytes: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly contentType: string;
  readonly animated: boolean;
  readonly original: boolean;
}

/**
 * {@link ThumbnailGenerator} on sharp (libvips).
 *
 * Output (stills, by the format the bytes really are, as Synapse maps them): JPEG from JPEG and
 * WebP, PNG from PNG and GIF, and by alpha (PNG with, JPEG without) for the rest (AVIF); animated
 * WebP when asked for and the source is an animated GIF or WebP (MSC2705); the source's own bytes when it is no larger than
 * the request and its type is a thumbnail type (never upscale). Geometry: {@link thumbnailGeometry}.
 *
 * Safety: only JPEG, PNG, GIF, WebP and AVIF bytes reach the decoder (sniffed, whatever the declared
 * type); byte, pixel (from the header, before decoding), frame and time caps; EXIF orientation
 * applied and all metadata dropped; at most `maxConcurrent` jobs at once.
 */
export class SharpThumbnailer implements ThumbnailGenerator {
  readonly #maxSourceBytes: number;
  readonly #maxPixels: number;
  readonly #maxFrames: number;
  readonly #jpegQuality: number;
  readonly #timeoutMs: number;
  readonly #slots: Semaphore;
  readonly #logger: Logger;

  constructor(options: SharpThumbnailerOptions = {}) {
    this.#maxSourceBytes = positiveInteger('maxSourceBytes', options.maxSourceBytes ?? DEFAULTS.maxSourceBytes);
    this.#maxPixels = positiveInteger('maxPixels', options.maxPixels ?? DEFAULTS.maxPixels);
    this.#maxFrames = positiveInteger('maxFrames', options.maxFrames ?? DEFAULTS.maxFrames);
    this.#jpegQuality = positiveInteger('jpegQuality', options.jpegQuality ?? DEFAULTS.jpegQuality);
    if (this.#jpegQuality > 100) throw new RangeError('jpegQuality must be between 1 and 100');
    this.#timeoutMs = positiveInteger('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs);
    const cores = availableParallelism();
    const maxConcurrent = positiveInteger('maxConcurrent', options.maxConcurrent ?? cores);
    this.#slots = new Semaphore(maxConcurrent);
    this.#logger = options.logger ?? noopLogger;
    const threads = options.vipsThreads ?? Math.max(1, Math.floor(cores / maxConcurrent));
    if (threads !== 'keep') sharp.concurrency(positiveInteger('vipsThreads', threads));
  }

  /** Jobs running and waiting now (for metrics). */
  get load(): { readonly running: number; readonly waiting: number } {
    return { running: this.#slots.active, waiting: this.#slots.waiting };
  }

  /** Whether the declared type is one we thumbnail (never SVG or other vector/scripted types). */
  supports(contentType: string): boolean {
    return THUMBNAILABLE_CONTENT_TYPES.includes(essenceOf(contentType));
  }

  /**
   * Reads the source (capped at `maxSourceBytes`), decodes it once and makes every spec from it,
   * in order. Throws {@link ThumbnailError}, or the signal's reason when aborted.
   */
  async generate(
    source: ByteSource,
    contentType: string,
    specs: readonly ThumbnailSpec[],
    options: GenerateOptions = {},
  ): Promise<SharpGeneratedThumbnail[]> {
    for (const spec of specs) checkSpec(spec);
    if (!this.supports(contentType)) {
      void cancelSource(source);
      throw new ThumbnailError('unsupported', `Cannot thumbnail content of type ${JSON.stringify(contentType)}`);
    }
    let release: () => void;
    try {
      release = await this.#slots.acquire(options.signal);
    } catch (error) {
      void cancelSource(source);
      throw error;
    }
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
    // libvips work cannot be interrupted from JS: the slot is held until it really ends.
    const pending: Promise<unknown>[] = [];
    try {
      return await this.#run(source, specs, signal, pending);
    } catch (error) {
      if (deadline.aborted && options.signal?.aborted !== true) {
        throw new ThumbnailError('too_large', `Thumbnailing took longer than ${this.#timeoutMs} ms`, { cause: error });
      }
      throw error;
    } finally {
      void Promise.allSettled(pending).then(release);
    }
  }

  /** Reads what the header says about an image without decoding pixels. Throws {@link ThumbnailError}. */
  async probe(bytes: Uint8Array): Promise<ImageProbe> {
    const info = await this.#inspect(bytes);
    return { width: info.width, height: info.height, format: info.format, animated: info.animated, pages: info.pages };
  }

  async #run(
    source: ByteSource,
    specs: readonly ThumbnailSpec[],
    signal: AbortSignal,
    pending: Promise<unknown>[],
  ): Promise<SharpGeneratedThumbnail[]> {
    const bytes = await readSource(source, this.#maxSourceBytes, signal);
    const track = <T>(promise: Promise<T>): Promise<T> => {
      pending.push(promise);
      return raceAbort(promise, signal);
    };
    const info = await track(this.#inspect(bytes));

    // Plan: one job per distinct output, so sizes that collapse (small sources) encode once.
    const jobs = new Map<string, Job>();
    const jobKeys = specs.map((spec) => {
      const geometry = thumbnailGeometry(info.orientedWidth, info.orientedHeight, spec);
      const animate = spec.animated && info.animated;
      let job: Job;
      if (geometry.original && info.passThroughType !== null && (animate || !info.animated)) {
        job = { kind: 'original' };
      } else if (animate && info.canAnimate) {
        job = { kind: 'animated', geometry };
      } else {
        job = { kind: 'still', geometry };
      }
      const key = job.kind === 'original' ? 'original' : `${job.kind}:${geometryKey(job.geometry)}`;
      jobs.set(key, job);
      return key;
    });

    const outputs = new Map<string, Promise<Encoded>>();
    const stills = [...jobs].filter((entry): entry is [string, Job & { kind: 'still' }] => entry[1].kind === 'still');
    if (stills.length > 0) {
      const decoded = track(this.#decodeStill(bytes, info, stills.map(([, job]) => job.geometry)));
      for (const [key, job] of stills) {
        outputs.set(
          key,
          decoded.then((raw) => {
            signal.throwIfAborted(); // no new libvips work once the job is over
            return track(this.#encodeStill(raw, info, job.geometry));
          }),
        );
      }
    }
    for (const [key, job] of jobs) {
      if (job.kind === 'animated') outputs.set(key, track(this.#encodeAnimated(bytes, info, job.geometry)));
      if (job.kind === 'original') {
        outputs.set(
          key,
          Promise.resolve({
            bytes,
            width: info.orientedWidth,
            height: info.orientedHeight,
            contentType: info.passThroughType ?? 'application/octet-stream',
            animated: info.animated,
            original: true,
          }),
        );
      }
    }
    const settled = await Promise.allSettled(outputs.values());
    const failure = settled.find((result) => result.status === 'rejected');
    if (failure !== undefined) throw classify(failure.reason);
    const results: SharpGeneratedThumbnail[] = [];
    for (const [index, spec] of specs.entries()) {
      const encoded = await outputs.get(jobKeys[index]!)!;
      results.push({ spec, ...encoded });
    }
    this.#logger.debug(
      { format: info.format, width: info.width, height: info.height, pages: info.pages, outputs: outputs.size },
      'thumbnails generated',
    );
    return results;
  }

  /** Sniffs and probes the source; refuses what is not a supported, small enough image. */
  async #inspect(bytes: Uint8Array): Promise<SourceInfo> {
    if (bytes.length === 0) throw new ThumbnailError('unsupported', 'The source is empty');
    const sniffed = sniffFormat(bytes);
    if (sniffed === null) throw new ThumbnailError('unsupported', 'The source is not a JPEG, PNG, GIF, WebP or AVIF image');
    let metadata: Metadata;
    try {
      // Header only: no pixels are decoded, so a bomb costs nothing here.
      metadata = await sharp(bytes, { limitInputPixels: false, failOn: 'error' }).metadata();
    } catch (error) {
      throw new ThumbnailError('corrupt', 'The image header cannot be read', { cause: error });
    }
    if (metadata.format !== DECODER_NAME[sniffed]) {
      throw new ThumbnailError('unsupported', `The source's bytes decode as ${metadata.format}, not ${sniffed}`);
    }
    if (sniffed === 'avif' && metadata.compression !== 'av1') {
      throw new ThumbnailError('unsupported', 'Only AV1-coded HEIF (AVIF) is supported');
    }
    const width = metadata.width;
    const height = metadata.pageHeight ?? metadata.height;
    if (!(width > 0 && height > 0)) throw new ThumbnailError('corrupt', 'The image has no size');
    if (width * height > this.#maxPixels) {
      throw new ThumbnailError('too_large', `The image has ${width}x${height} pixels, over the limit of ${this.#maxPixels}`);
    }
    const pages = metadata.pages ?? 1;
    const apng = sniffed === 'png' && isAnimatedPng(bytes);
    const animated = pages > 1 || apng;
    const canAnimate =
      (sniffed === 'gif' || sniffed === 'webp') && pages > 1 && pages <= this.#maxFrames && width * height * pages <= this.#maxPixels;
    const swap = (metadata.orientation ?? 1) >= 5;
    const cmyk = metadata.space === 'cmyk';
    const rotated = (metadata.orientation ?? 1) !== 1;
    return {
      width,
      height,
      format: metadata.format,
      animated,
      pages: apng ? Math.max(pages, 2) : pages,
      sniffed,
      orientedWidth: swap ? height : width,
      orientedHeight: swap ? width : height,
      hasAlpha: metadata.hasAlpha,
      canAnimate,
      // Re-encode instead when clients may show the bytes wrongly (EXIF rotation, CMYK).
      passThroughType: rotated || cmyk ? null : (PASS_THROUGH_TYPES[sniffed] ?? null),
      delay: metadata.delay,
      loop: metadata.loop ?? 0,
    };
  }

  /** Common input options: the caps hold again inside libvips, whatever the header said. */
  #input(info: SourceInfo, animated: boolean): SharpOptions {
    return animated
      ? { animated: true, pages: info.pages, failOn: 'error', limitInputPixels: this.#maxPixels }
      : { pages: 1, page: 0, failOn: 'error', limitInputPixels: this.#maxPixels, autoOrient: true };
  }

  #limited(pipeline: Sharp): Sharp {
    return pipeline.timeout({ seconds: Math.max(1, Math.ceil(this.#timeoutMs / 1000)) });
  }

  /**
   * The single decode of a still source: to raw pixels, at the smallest size that still covers every
   * output (JPEG and WebP shrink while decoding, so a large photo is never decoded at full size).
   */
  async #decodeStill(bytes: Uint8Array, info: SourceInfo, geometries: readonly ThumbnailGeometry[]): Promise<RawImage> {
    const ow = info.orientedWidth;
    const oh = info.orientedHeight;
    let factor = 0;
    for (const geometry of geometries) {
      factor = Math.max(factor, geometry.resizeWidth / ow, geometry.resizeHeight / oh);
    }
    const width = Math.min(ow, Math.ceil(ow * factor - 1e-9));
    const height = Math.min(oh, Math.ceil(oh * factor - 1e-9));
    let pipeline = sharp(bytes, this.#input(info, false));
    if (width !== ow || height !== oh) pipeline = pipeline.resize(width, height, { fit: 'fill' });
    const { data, info: out } = await this.#limited(pipeline.raw({ depth: 'uchar' })).toBuffer({ resolveWithObject: true });
    return { data, width: out.width, height: out.height, channels: out.channels, premultiplied: out.premultiplied };
  }

  async #encodeStill(raw: RawImage, info: SourceInfo, geometry: ThumbnailGeometry): Promise<Encoded> {
    let pipeline = sharp(raw.data, {
      raw: { width: raw.width, height: raw.height, channels: raw.channels, premultiplied: raw.premultiplied },
    });
    if (geometry.resizeWidth !== raw.width || geometry.resizeHeight !== raw.height) {
      pipeline = pipeline.resize(geometry.resizeWidth, geometry.resizeHeight, { fit: 'fill' });
    }
    if (geometry.crop !== null) pipeline = pipeline.extract(geometry.crop);
    // Fixed encoder settings: same source and spec, same bytes. No metadata is written.
    const png = stillOutputOf(info.sniffed, info.hasAlpha) === 'png';
    // JPEG has no alpha (a transparent WebP): composed on white rather than on whatever colour the
    // transparent pixels happen to hold.
    if (!png && raw.channels % 2 === 0) pipeline = pipeline.flatten({ background: '#ffffff' });
    pipeline = png
      ? pipeline.png({ compressionLevel: 6, adaptiveFiltering: false, palette: false, progressive: false })
      : pipeline.jpeg({
          quality: this.#jpegQuality,
          progressive: false,
          chromaSubsampling: '4:2:0',
          optimiseCoding: true,
          mozjpeg: false,
        });
    const { data, info: out } = await this.#limited(pipeline).toBuffer({ resolveWithObject: true });
    return {
      bytes: data,
      width: out.width,
      height: out.height,
      contentType: png ? 'image/png' : 'image/jpeg',
      animated: false,
      original: false,
    };
  }

  /** Animated WebP from an animated GIF/WebP; libvips resizes each frame (one decode per distinct size). */
  async #encodeAnimated(bytes: Uint8Array, info: SourceInfo, geometry: ThumbnailGeometry): Promise<Encoded> {
    let pipeline = sharp(bytes, this.#input(info, true));
    if (geometry.resizeWidth !== info.width || geometry.resizeHeight !== info.height) {
      pipeline = pipeline.resize(geometry.resizeWidth, geometry.resizeHeight, { fit: 'fill' });
    }
    if (geometry.crop !== null) pipeline = pipeline.extract(geometry.crop);
    pipeline = pipeline.webp({
      quality: this.#jpegQuality,
      effort: 4,
      loop: info.loop,
      ...(info.delay === undefined ? {} : { delay: info.delay }),
    });
    const { data, info: out } = await this.#limited(pipeline).toBuffer({ resolveWithObject: true });
    return {
      bytes: data,
      width: out.width,
      height: out.pageHeight ?? out.height,
      contentType: 'image/webp',
      animated: (out.pages ?? 1) > 1,
      original: false,
    };
  }
}

interface RawImage {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 2 | 3 | 4;
  readonly premultiplied: boolean;
}

function geometryKey(geometry: ThumbnailGeometry): string {
  const crop = geometry.crop;
  const box = crop === null ? '' : `+${crop.left}+${crop.top}+${crop.width}x${crop.height}`;
  return `${geometry.resizeWidth}x${geometry.resizeHeight}${box}`;
}

/** Maps whatever failed inside a job to a ThumbnailError (aborts pass through). */
function classify(error: unknown): unknown {
  if (error instanceof ThumbnailError) return error;
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) return new ThumbnailError('too_large', 'The image has too many pixels', { cause: error });
  if (/timeout/i.test(message)) return new ThumbnailError('too_large', 'Thumbnailing took too long', { cause: error });
  return new ThumbnailError('corrupt', 'The image cannot be decoded', { cause: error });
}

function checkSpec(spec: ThumbnailSpec): void {
  if (!Number.isSafeInteger(spec.width) || spec.width < 1 || !Number.isSafeInteger(spec.height) || spec.height < 1) {
    throw new RangeError(`Thumbnail width and height must be positive integers, got ${spec.width}x${spec.height}`);
  }
  if (spec.method !== 'crop' && spec.method !== 'scale') throw new RangeError(`Unknown thumbnail method ${String(spec.method)}`);
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

async function cancelSource(source: ByteSource): Promise<void> {
  try {
    if (source instanceof ReadableStream) await source.cancel();
    else await (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]().return?.();
  } catch {
    // Already errored or locked: nothing to release.
  }
}
