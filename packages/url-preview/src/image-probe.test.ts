import { describe, expect, it } from 'vitest';
import { isUnrecognisedImage, probeImageHeader } from './image-probe.js';

function png(width: number, height: number): Uint8Array {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return new Uint8Array(b);
}

function gif(width: number, height: number): Uint8Array {
  const b = Buffer.alloc(13);
  b.write('GIF89a', 0, 'latin1');
  b.writeUInt16LE(width, 6);
  b.writeUInt16LE(height, 8);
  return new Uint8Array(b);
}

function jpeg(width: number, height: number, exifBytes: number = 0): Uint8Array {
  const app1 = exifBytes > 0 ? Buffer.concat([Buffer.from([0xff, 0xe1, (exifBytes + 2) >> 8, (exifBytes + 2) & 0xff]), Buffer.alloc(exifBytes)]) : Buffer.alloc(0);
  const sof = Buffer.from([0xff, 0xc2, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return new Uint8Array(Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.from([0xff, 0xe0, 0x00, 0x10]), Buffer.alloc(14), app1, sof, Buffer.from([0xff, 0xd9])]));
}

function webp(chunk: 'VP8 ' | 'VP8L' | 'VP8X', width: number, height: number): Uint8Array {
  const b = Buffer.alloc(40);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(32, 4);
  b.write('WEBP', 8, 'latin1');
  b.write(chunk, 12, 'latin1');
  if (chunk === 'VP8 ') {
    b.set([0x9d, 0x01, 0x2a], 23);
    b.writeUInt16LE(width, 26);
    b.writeUInt16LE(height, 28);
  } else if (chunk === 'VP8L') {
    b[20] = 0x2f;
    b.writeUInt32LE(((width - 1) | ((height - 1) << 14)) >>> 0, 21);
  } else {
    b.writeUIntLE(width - 1, 24, 3);
    b.writeUIntLE(height - 1, 27, 3);
  }
  return new Uint8Array(b);
}

describe('probeImageHeader', () => {
  it.each([
    ['PNG', png(640, 480), 'image/png', 640, 480],
    ['GIF', gif(320, 200), 'image/gif', 320, 200],
    ['JPEG', jpeg(1024, 768), 'image/jpeg', 1024, 768],
    ['JPEG after 60 KiB of EXIF', jpeg(33, 44, 60_000), 'image/jpeg', 33, 44],
    ['lossy WebP', webp('VP8 ', 300, 150), 'image/webp', 300, 150],
    ['lossless WebP', webp('VP8L', 16000, 2), 'image/webp', 16000, 2],
    ['extended WebP', webp('VP8X', 100_000, 100_000), 'image/webp', 100_000, 100_000],
  ])('reads %s', (_what, bytes, contentType, width, height) => {
    expect(probeImageHeader(bytes)).toEqual({ contentType, width, height });
  });

  it('answers null until enough bytes have arrived', () => {
    const full = jpeg(10, 20, 1000);
    expect(probeImageHeader(full.subarray(0, 500))).toBeNull();
    expect(isUnrecognisedImage(full.subarray(0, 500))).toBe(false);
    expect(probeImageHeader(png(1, 1).subarray(0, 20))).toBeNull();
  });

  it('refuses what is not a supported image, and zero sizes', () => {
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    expect(probeImageHeader(svg)).toBeNull();
    expect(isUnrecognisedImage(svg)).toBe(true);
    expect(probeImageHeader(png(0, 10))).toBeNull();
    expect(probeImageHeader(new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 2, 0, 0, 0, 0, 0, 0]))).toBeNull();
  });

  it('never throws on truncated or random input', () => {
    let seed = 7;
    for (let n = 0; n < 500; n += 1) {
      const length = n % 64;
      const bytes = new Uint8Array(length);
      for (let i = 0; i < length; i += 1) bytes[i] = (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
      if (n % 4 === 0) bytes.set([0xff, 0xd8, 0xff].slice(0, length));
      expect(() => probeImageHeader(bytes)).not.toThrow();
    }
  });
});
