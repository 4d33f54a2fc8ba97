import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { ThumbnailSpec } from '@hsmedia/media-core';
import sharp, { type Metadata } from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_THUMBNAIL_SIZES, SharpThumbnailer, ThumbnailError, type SharpGeneratedThumbnail } from '../src/index.js';
import { alphaPng, animated, apng, cmykJpeg, photoJpeg, pngBomb, streamOf } from './images.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const spec = (width: number, height: number, method: 'crop' | 'scale', isAnimated = false): ThumbnailSpec => ({
  width,
  height,
  method,
  animated: isAnimated,
});

const thumbnailer = new SharpThumbnailer();

async function generate(bytes: Uint8Array, contentType: string, specs: readonly ThumbnailSpec[], t = thumbnailer) {
  return t.generate(streamOf(bytes), contentType, specs);
}

/** Decodes a thumbnail with sharp and checks it is what the generator says it is. */
async function expectDecodable(thumb: SharpGeneratedThumbnail): Promise<Metadata> {
  const metadata = await sharp(thumb.bytes, { animated: true }).metadata();
  const format = { 'image/jpeg': 'jpeg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif' }[thumb.contentType];
  expect(metadata.format).toBe(format);
  expect(metadata.width).toBe(thumb.width);
  expect(metadata.pageHeight ?? metadata.height).toBe(thumb.height);
  expect((metadata.pages ?? 1) > 1).toBe(thumb.animated);
  // Full decode of every pixel, not just the header.
  const { info } = await sharp(thumb.bytes, { animated: true }).raw().toBuffer({ resolveWithObject: true });
  expect(info.width).toBe(thumb.width);
  return metadata;
}

async function thumbnailError(promise: Promise<unknown>): Promise<ThumbnailError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ThumbnailError);
  return error as ThumbnailError;
}

describe('SharpThumbnailer: geometry of real images (the worked examples)', () => {
  it('1000x500 JPEG: the five recommended sizes', async () => {
    const source = await photoJpeg(1000, 500);
    const thumbs = await generate(source, 'image/jpeg', DEFAULT_THUMBNAIL_SIZES);
    expect(thumbs.map((t) => `${t.width}x${t.height}`)).toEqual(['32x32', '96x96', '320x160', '640x320', '800x400']);
    for (const [index, thumb] of thumbs.entries()) {
      expect(thumb.spec).toBe(DEFAULT_THUMBNAIL_SIZES[index]);
      expect(thumb.contentType).toBe('image/jpeg');
      expect(thumb.animated).toBe(false);
      expect(thumb.original).toBe(false);
      const metadata = await expectDecodable(thumb);
      expect(metadata.space).toBe('srgb');
    }
  });

  it('500x1000 JPEG: scale 320x240 → 120x240', async () => {
    const [thumb] = await generate(await photoJpeg(500, 1000), 'image/jpeg', [spec(320, 240, 'scale')]);
    expect([thumb!.width, thumb!.height]).toEqual([120, 240]);
    await expectDecodable(thumb!);
  });

  it('200x100 JPEG: scale 800x600 gives the original bytes; crop 96x96 gives 96x96', async () => {
    const source = await photoJpeg(200, 100);
    const [scaled, cropped] = await generate(source, 'image/jpeg', [spec(800, 600, 'scale'), spec(96, 96, 'crop')]);
    expect(scaled!.original).toBe(true);
    expect(Buffer.from(scaled!.bytes).equals(source)).toBe(true);
    expect([scaled!.width, scaled!.height, scaled!.contentType]).toEqual([200, 100, 'image/jpeg']);
    expect([cropped!.width, cropped!.height, cropped!.original]).toEqual([96, 96, false]);
    await expectDecodable(cropped!);
  });

  it('64x64 PNG: crop 96x96 gives the original 64x64 (never upscaled)', async () => {
    const source = await alphaPng(64, 64);
    const [thumb] = await generate(source, 'image/png', [spec(96, 96, 'crop')]);
    expect([thumb!.width, thumb!.height, thumb!.original, thumb!.contentType]).toEqual([64, 64, true, 'image/png']);
    expect(Buffer.from(thumb!.bytes).equals(source)).toBe(true);
  });

  it('a 1x1 image is its own thumbnail at every size', async () => {
    const source = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).png().toBuffer();
    const thumbs = await generate(source, 'image/png', DEFAULT_THUMBNAIL_SIZES);
    for (const thumb of thumbs) {
      expect([thumb.width, thumb.height, thumb.original, thumb.contentType]).toEqual([1, 1, true, 'image/png']);
      await expectDecodable(thumb);
    }
  });

  it('large.png (Complement, 1000x673 RGB): an opaque PNG gives PNG thumbnails (TestFederationThumbnail)', async () => {
    const thumbs = await generate(fixture('large.png'), 'image/png', DEFAULT_THUMBNAIL_SIZES);
    expect(thumbs.map((t) => `${t.width}x${t.height} ${t.contentType}`)).toEqual([
      '32x32 image/png',
      '96x96 image/png',
      '320x215 image/png',
      '640x430 image/png',
      '800x538 image/png',
    ]);
    for (const thumb of thumbs) await expectDecodable(thumb);
  });
});

describe('SharpThumbnailer: output types', () => {
  // Synapse's THUMBNAIL_SUPPORTED_MEDIA_FORMAT_MAP: jpeg/jpg/webp → JPEG, png/gif → PNG; the rest by alpha.
  const opaque = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#2060a0' } });
  const clear = (width: number, height: number) =>
    sharp({ create: { width, height, channels: 4, background: { r: 200, g: 0, b: 0, alpha: 0.5 } } });
  it.each([
    ['an opaque JPEG', 'image/jpeg', () => photoJpeg(300, 200), 'image/jpeg'],
    ['an opaque PNG', 'image/png', () => opaque(300, 200).png().toBuffer(), 'image/png'],
    ['a PNG with alpha', 'image/png', () => alphaPng(300, 200), 'image/png'],
    ['an opaque GIF', 'image/gif', () => opaque(300, 200).gif().toBuffer(), 'image/png'],
    ['an opaque WebP', 'image/webp', () => opaque(300, 200).webp().toBuffer(), 'image/jpeg'],
    ['a WebP with alpha', 'image/webp', () => clear(300, 200).webp().toBuffer(), 'image/jpeg'],
    ['an opaque AVIF (by alpha)', 'image/avif', () => opaque(300, 200).avif().toBuffer(), 'image/jpeg'],
    ['an AVIF with alpha (by alpha)', 'image/avif', () => clear(300, 200).avif().toBuffer(), 'image/png'],
  ] as const)('%s (%s) gives %s stills', async (_name, type, make, expected) => {
    const thumbs = await generate(await make(), type, [spec(32, 32, 'crop'), spec(100, 100, 'scale')]);
    for (const thumb of thumbs) {
      expect([thumb.contentType, thumb.original]).toEqual([expected, false]);
      await expectDecodable(thumb);
    }
  });

  it('a WebP with alpha gives a JPEG composed on white', async () => {
    const source = await sharp({ create: { width: 200, height: 200, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .webp({ lossless: true })
      .toBuffer();
    const [thumb] = await generate(source, 'image/webp', [spec(32, 32, 'crop')]);
    const { data, info } = await sharp(thumb!.bytes).raw().toBuffer({ resolveWithObject: true });
    expect([thumb!.contentType, info.channels]).toEqual(['image/jpeg', 3]);
    expect(Math.min(data[0]!, data[1]!, data[2]!)).toBeGreaterThan(245);
  });

  it('PNG with alpha gives PNG thumbnails that keep transparency', async () => {
    const source = await alphaPng(400, 300);
    const thumbs = await generate(source, 'image/png', [spec(32, 32, 'crop'), spec(200, 150, 'scale')]);
    for (const thumb of thumbs) {
      expect(thumb.contentType).toBe('image/png');
      const metadata = await expectDecodable(thumb);
      expect(metadata.hasAlpha).toBe(true);
    }
    const { data, info } = await sharp(thumbs[1]!.bytes).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    expect(data[3]).toBe(0); // corner: transparent
    const centre = ((info.height / 2) * info.width + info.width / 2) * 4;
    expect([data[centre], data[centre + 3]]).toEqual([255, 255]); // centre: opaque red
  });

  it('matrix.png (Complement, 279x129 RGBA) gives PNG thumbnails', async () => {
    const thumbs = await generate(fixture('matrix.png'), 'image/png', [spec(96, 96, 'crop'), spec(100, 100, 'scale')]);
    expect(thumbs.map((t) => `${t.width}x${t.height} ${t.contentType}`)).toEqual(['96x96 image/png', '100x46 image/png']);
    for (const thumb of thumbs) await expectDecodable(thumb);
  });

  it('CMYK JPEG is converted to sRGB JPEG, never passed through', async () => {
    const source = await cmykJpeg(300, 200);
    expect((await sharp(source).metadata()).space).toBe('cmyk');
    const thumbs = await generate(source, 'image/jpeg', [spec(96, 96, 'crop'), spec(800, 600, 'scale')]);
    for (const thumb of thumbs) {
      expect(thumb.contentType).toBe('image/jpeg');
      expect(thumb.original).toBe(false);
      const metadata = await expectDecodable(thumb);
      expect([metadata.space, metadata.channels]).toEqual(['srgb', 3]);
    }
    expect([thumbs[1]!.width, thumbs[1]!.height]).toEqual([300, 200]);
    const { data } = await sharp(thumbs[0]!.bytes).raw().toBuffer({ resolveWithObject: true });
    // #3080c0 survives the round trip through CMYK, roughly.
    expect(Math.abs(data[0]! - 0x30)).toBeLessThan(40);
    expect(Math.abs(data[2]! - 0xc0)).toBeLessThan(40);
  });

  it('AVIF is decoded (never passed through: not a thumbnail type)', async () => {
    const source = await sharp({ create: { width: 120, height: 80, channels: 3, background: '#40a040' } }).avif().toBuffer();
    const [cropped, own] = await generate(source, 'image/avif', [spec(32, 32, 'crop'), spec(800, 600, 'scale')]);
    expect([cropped!.width, cropped!.height, cropped!.contentType]).toEqual([32, 32, 'image/jpeg']);
    expect([own!.width, own!.height, own!.contentType, own!.original]).toEqual([120, 80, 'image/jpeg', false]);
    await expectDecodable(cropped!);
    await expectDecodable(own!);
  });

  it('a PNG declared as image/jpeg is thumbnailed by what it is', async () => {
    const [thumb] = await generate(await alphaPng(200, 200), 'image/jpeg', [spec(32, 32, 'crop')]);
    expect(thumb!.contentType).toBe('image/png');
    await expectDecodable(thumb!);
  });
});

describe('SharpThumbnailer: animation (MSC2705, the animated parameter)', () => {
  for (const format of ['gif', 'webp'] as const) {
    it(`animated ${format}: animated=true gives animated WebP of every frame`, async () => {
      const source = await animated(format, 200, 100, 3);
      const [thumb] = await generate(source, `image/${format}`, [spec(96, 96, 'crop', true)]);
      expect([thumb!.width, thumb!.height, thumb!.contentType, thumb!.animated]).toEqual([96, 96, 'image/webp', true]);
      const metadata = await expectDecodable(thumb!);
      expect(metadata.pages).toBe(3);
      expect(metadata.delay).toEqual([100, 100, 100]);
      const { data, info } = await sharp(thumb!.bytes, { animated: true }).raw().toBuffer({ resolveWithObject: true });
      const frameBytes = info.width * (info.pageHeight ?? 0) * info.channels;
      const firstPixels = [0, 1, 2].map((frame) => [...data.subarray(frame * frameBytes, frame * frameBytes + 3)]);
      // red, green, blue frames (lossy: roughly)
      expect(firstPixels[0]![0]).toBeGreaterThan(200);
      expect(firstPixels[1]![1]).toBeGreaterThan(200);
      expect(firstPixels[2]![2]).toBeGreaterThan(200);
    });

    it(`animated ${format}: animated=false gives a still of the first frame`, async () => {
      const source = await animated(format, 200, 100, 3);
      const [thumb] = await generate(source, `image/${format}`, [spec(96, 96, 'crop', false)]);
      expect(thumb!.animated).toBe(false);
      expect(thumb!.contentType).toBe(format === 'gif' ? 'image/png' : 'image/jpeg');
      await expectDecodable(thumb!);
      const { data } = await sharp(thumb!.bytes).raw().toBuffer({ resolveWithObject: true });
      expect([data[0]! > 200, data[1]! < 50, data[2]! < 50]).toEqual([true, true, true]);
    });
  }

  it('an animated GIF smaller than asked: the original when animation is wanted, a still otherwise', async () => {
    const source = await animated('gif', 40, 30, 3);
    const [moving, still] = await generate(source, 'image/gif', [spec(96, 96, 'crop', true), spec(96, 96, 'crop', false)]);
    expect([moving!.original, moving!.contentType, moving!.animated]).toEqual([true, 'image/gif', true]);
    expect(Buffer.from(moving!.bytes).equals(source)).toBe(true);
    expect([still!.original, still!.animated, still!.width, still!.height]).toEqual([false, false, 40, 30]);
    await expectDecodable(still!);
  });

  it('APNG: never handed out as a still; as the original when animation is wanted', async () => {
    const source = apng(4, 4);
    const [still, moving] = await generate(source, 'image/png', [spec(32, 32, 'crop', false), spec(32, 32, 'crop', true)]);
    expect([still!.original, still!.animated, still!.width, still!.height]).toEqual([false, false, 4, 4]);
    await expectDecodable(still!);
    const { data } = await sharp(still!.bytes).raw().toBuffer({ resolveWithObject: true });
    expect([data[0]! > 250, data[1]! < 5, data[2]! < 5]).toEqual([true, true, true]); // the default image: red
    expect([moving!.original, moving!.contentType, moving!.animated]).toEqual([true, 'image/png', true]);
  });

  it('more frames than maxFrames: a still instead of an animation', async () => {
    const limited = new SharpThumbnailer({ maxFrames: 3 });
    const [thumb] = await generate(await animated('gif', 200, 100, 4), 'image/gif', [spec(96, 96, 'crop', true)], limited);
    expect([thumb!.animated, thumb!.width, thumb!.height]).toEqual([false, 96, 96]);
    await expectDecodable(thumb!);
  });

  it('probe reads frames and size from the header', async () => {
    await expect(thumbnailer.probe(await animated('webp', 50, 40, 4))).resolves.toEqual({
      width: 50,
      height: 40,
      format: 'webp',
      animated: true,
      pages: 4,
    });
    await expect(thumbnailer.probe(pngBomb())).rejects.toMatchObject({ code: 'too_large' });
  });
});

describe('SharpThumbnailer: determinism, orientation, metadata', () => {
  it('the same source and specs give the same bytes', async () => {
    const sources: Array<[Buffer, string, ThumbnailSpec[]]> = [
      [await photoJpeg(640, 480), 'image/jpeg', [...DEFAULT_THUMBNAIL_SIZES]],
      [await alphaPng(300, 300), 'image/png', [spec(96, 96, 'crop'), spec(100, 100, 'scale')]],
      [await animated('gif', 120, 90, 3), 'image/gif', [spec(32, 32, 'crop', true), spec(60, 60, 'scale', true)]],
    ];
    for (const [source, type, specs] of sources) {
      const first = await generate(source, type, specs);
      const second = await new SharpThumbnailer({ vipsThreads: 'keep' }).generate(streamOf(source, 777), type, specs);
      expect(second.map((t) => Buffer.from(t.bytes).toString('base64'))).toEqual(
        first.map((t) => Buffer.from(t.bytes).toString('base64')),
      );
    }
  });

  it('EXIF orientation 6 is applied, then all metadata is dropped', async () => {
    const landscape = await photoJpeg(600, 400);
    const source = await sharp(landscape)
      .withMetadata({ orientation: 6, exif: { IFD0: { Copyright: 'secret-owner', Artist: 'someone' } } })
      .jpeg()
      .toBuffer();
    const header = await sharp(source).metadata();
    expect([header.width, header.height, header.orientation]).toEqual([600, 400, 6]);
    const thumbs = await generate(source, 'image/jpeg', [spec(320, 240, 'scale'), spec(96, 32, 'crop'), spec(2000, 2000, 'scale')]);
    // Displayed as 400x600 (portrait): 320x240 scale → 160x240.
    expect(thumbs.map((t) => `${t.width}x${t.height}`)).toEqual(['160x240', '96x32', '400x600']);
    // Rotated sources are re-encoded even at their own size.
    expect(thumbs[2]!.original).toBe(false);
    for (const thumb of thumbs) {
      const metadata = await expectDecodable(thumb);
      expect(metadata.orientation).toBeUndefined();
      expect(metadata.exif).toBeUndefined();
      expect(metadata.icc).toBeUndefined();
      expect(metadata.xmp).toBeUndefined();
      expect(Buffer.from(thumb.bytes).includes('secret-owner')).toBe(false);
    }
  });
});

describe('SharpThumbnailer: bad input', () => {
  it('supports(): image types only, never SVG', () => {
    for (const type of ['image/jpeg', 'IMAGE/PNG; charset=x', 'image/gif', 'image/webp', 'image/apng', 'image/avif']) {
      expect(thumbnailer.supports(type)).toBe(true);
    }
    for (const type of ['image/svg+xml', 'image/svg', 'application/pdf', 'video/mp4', 'text/html', 'application/octet-stream', '']) {
      expect(thumbnailer.supports(type)).toBe(false);
    }
  });

  it('SVG is refused, declared as SVG or disguised as PNG', async () => {
    const svg = fixture('matrix-logo.svg');
    expect((await thumbnailError(generate(svg, 'image/svg+xml', [spec(32, 32, 'crop')]))).code).toBe('unsupported');
    expect((await thumbnailError(generate(svg, 'image/png', [spec(32, 32, 'crop')]))).code).toBe('unsupported');
  });

  it('a zero-byte file is unsupported', async () => {
    const error = await thumbnailError(generate(new Uint8Array(0), 'image/png', [spec(32, 32, 'crop')]));
    expect(error.code).toBe('unsupported');
  });

  it('bytes of no known image format are unsupported', async () => {
    const error = await thumbnailError(generate(Buffer.from('<html>not an image</html>'), 'image/jpeg', [spec(32, 32, 'crop')]));
    expect(error.code).toBe('unsupported');
  });

  it('a TIFF declared as image/png is unsupported (libvips could read it; we do not let it)', async () => {
    const tiff = await sharp({ create: { width: 10, height: 10, channels: 3, background: '#808080' } }).tiff().toBuffer();
    expect((await thumbnailError(generate(tiff, 'image/png', [spec(32, 32, 'crop')]))).code).toBe('unsupported');
  });

  it('a truncated JPEG is corrupt', async () => {
    const jpeg = await photoJpeg(300, 300);
    const error = await thumbnailError(generate(jpeg.subarray(0, jpeg.length / 2), 'image/jpeg', [spec(32, 32, 'crop')]));
    expect(error.code).toBe('corrupt');
  });

  it('a PNG with a damaged header is corrupt', async () => {
    const png = Buffer.from(await alphaPng(100, 100));
    png.fill(7, 20, 40);
    expect((await thumbnailError(generate(png, 'image/png', [spec(32, 32, 'crop')]))).code).toBe('corrupt');
  });

  it('a PNG claiming 100000x100000 is too large, refused from its header', async () => {
    const bomb = pngBomb(100_000, 100_000);
    expect(bomb.length).toBeLessThan(200);
    const error = await thumbnailError(generate(bomb, 'image/png', DEFAULT_THUMBNAIL_SIZES));
    expect(error.code).toBe('too_large');
    expect(error.message).toContain('100000x100000');
  });

  it('maxPixels is configurable', async () => {
    const small = new SharpThumbnailer({ maxPixels: 100 * 100 });
    const source = await photoJpeg(101, 100);
    expect((await thumbnailError(generate(source, 'image/jpeg', [spec(32, 32, 'crop')], small))).code).toBe('too_large');
    await expect(generate(await photoJpeg(100, 100), 'image/jpeg', [spec(32, 32, 'crop')], small)).resolves.toHaveLength(1);
  });

  it('a source over maxSourceBytes is refused while streaming, without reading the rest', async () => {
    const capped = new SharpThumbnailer({ maxSourceBytes: 10_000 });
    const source = await photoJpeg(400, 400);
    expect(source.length).toBeGreaterThan(20_000);
    let pulled = 0;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          controller.enqueue(source.subarray(pulled * 1000, (pulled + 1) * 1000));
          pulled++;
        },
        cancel() {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const error = await thumbnailError(capped.generate(stream, 'image/jpeg', [spec(32, 32, 'crop')]));
    expect(error.code).toBe('too_large');
    expect(pulled).toBeLessThanOrEqual(12);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancelled).toBe(true);
  });

  it('a source that stalls past timeoutMs is too_large (time budget), and its stream is released', async () => {
    const quick = new SharpThumbnailer({ timeoutMs: 20 });
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({
      pull: () => new Promise<void>(() => {}),
      cancel() {
        cancelled = true;
      },
    });
    const error = await thumbnailError(quick.generate(stalled, 'image/jpeg', [spec(32, 32, 'crop')]));
    expect(error.code).toBe('too_large');
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancelled).toBe(true);
  });

  it('invalid specs are programming errors (RangeError)', async () => {
    await expect(thumbnailer.generate(streamOf(Buffer.alloc(1)), 'image/png', [spec(0, 32, 'crop')])).rejects.toBeInstanceOf(
      RangeError,
    );
    expect(() => new SharpThumbnailer({ jpegQuality: 101 })).toThrow(RangeError);
  });
});

describe('SharpThumbnailer: sources, concurrency, abort', () => {
  it('takes a Node stream (async iterable) as well', async () => {
    const source = await photoJpeg(300, 200);
    const [thumb] = await thumbnailer.generate(Readable.from([source.subarray(0, 100), source.subarray(100)]), 'image/jpeg', [
      spec(96, 96, 'crop'),
    ]);
    expect([thumb!.width, thumb!.height]).toEqual([96, 96]);
  });

  it('runs at most maxConcurrent jobs; the rest wait in line and all finish', async () => {
    const one = new SharpThumbnailer({ maxConcurrent: 1, vipsThreads: 'keep' });
    const source = await photoJpeg(400, 300);
    const jobs = [1, 2, 3].map(() => one.generate(streamOf(source), 'image/jpeg', DEFAULT_THUMBNAIL_SIZES));
    expect(one.load).toEqual({ running: 1, waiting: 2 });
    const results = await Promise.all(jobs);
    expect(results.map((r) => r.length)).toEqual([5, 5, 5]);
    // Slots are given back once libvips is done.
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(one.load).toEqual({ running: 0, waiting: 0 });
  });

  it('an abort while waiting for a slot leaves the line; an abort before starting rejects with the reason', async () => {
    const one = new SharpThumbnailer({ maxConcurrent: 1, vipsThreads: 'keep' });
    const source = await photoJpeg(400, 300);
    const running = one.generate(streamOf(source), 'image/jpeg', [spec(32, 32, 'crop')]);
    const controller = new AbortController();
    const waiting = one.generate(streamOf(source), 'image/jpeg', [spec(32, 32, 'crop')], { signal: controller.signal });
    expect(one.load.waiting).toBe(1);
    controller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    expect(one.load.waiting).toBe(0);
    await expect(running).resolves.toHaveLength(1);
    await expect(
      one.generate(streamOf(source), 'image/jpeg', [spec(32, 32, 'crop')], { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
  });
});
