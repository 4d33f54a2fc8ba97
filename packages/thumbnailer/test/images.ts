/** Test images, made with sharp or by hand. */
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

/** A noisy gradient photo, so JPEG has content to encode. */
export async function photoJpeg(width: number, height: number, quality = 90): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = ((x ^ y) * 7) & 255;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

/** An RGBA PNG: an opaque red square on a transparent background. */
export async function alphaPng(width: number, height: number): Promise<Buffer> {
  const square = await sharp({
    create: { width: Math.floor(width / 2), height: Math.floor(height / 2), channels: 4, background: '#ff0000ff' },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .composite([{ input: square, gravity: 'centre' }])
    .png()
    .toBuffer();
}

export async function cmykJpeg(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#3080c0' } })
    .toColourspace('cmyk')
    .jpeg({ quality: 90 })
    .toBuffer();
}

const FRAME_COLOURS = ['#ff0000', '#00ff00', '#0000ff', '#ffff00'];

/** Animated GIF or WebP of `frames` solid frames (100 ms each), joined by sharp. */
export async function animated(format: 'gif' | 'webp', width: number, height: number, frames = 3): Promise<Buffer> {
  const parts = await Promise.all(
    Array.from({ length: frames }, (_, index) =>
      sharp({ create: { width, height, channels: 4, background: FRAME_COLOURS[index % FRAME_COLOURS.length]! } })
        .png()
        .toBuffer(),
    ),
  );
  const joined = sharp(parts, { join: { animated: true } });
  const delay = Array.from({ length: frames }, () => 100);
  return format === 'gif' ? joined.gif({ delay, loop: 0 }).toBuffer() : joined.webp({ delay, loop: 0 }).toBuffer();
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(width: number, height: number): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = 8; // bit depth
  data[9] = 2; // RGB
  return chunk('IHDR', data);
}

/**
 * A decompression bomb: a valid PNG header (correct CRC) claiming `width`x`height`, followed by a
 * tiny IDAT. Decoding it would need width*height*3 bytes.
 */
export function pngBomb(width = 100_000, height = 100_000): Buffer {
  return Buffer.concat([PNG_SIGNATURE, ihdr(width, height), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

/** A 2-frame APNG, 4x4, built chunk by chunk (libvips reads only its default image). */
export function apng(width = 4, height = 4): Buffer {
  const frame = (r: number, g: number, b: number): Buffer => {
    const rows: Buffer[] = [];
    for (let y = 0; y < height; y++) rows.push(Buffer.from([0, ...Array.from({ length: width }, () => [r, g, b]).flat()]));
    return deflateSync(Buffer.concat(rows));
  };
  const fctl = (sequence: number): Buffer => {
    const data = Buffer.alloc(26);
    data.writeUInt32BE(sequence, 0);
    data.writeUInt32BE(width, 4);
    data.writeUInt32BE(height, 8);
    data.writeUInt16BE(1, 20);
    data.writeUInt16BE(10, 22);
    return chunk('fcTL', data);
  };
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(2, 0);
  return Buffer.concat([
    PNG_SIGNATURE,
    ihdr(width, height),
    chunk('acTL', actl),
    fctl(0),
    chunk('IDAT', frame(255, 0, 0)),
    fctl(1),
    chunk('fdAT', Buffer.concat([Buffer.from([0, 0, 0, 2]), frame(0, 0, 255)])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The bytes as a WHATWG stream of `chunkSize` pieces, as a blob store hands them over. */
export function streamOf(bytes: Uint8Array, chunkSize = 4096): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}
