/**
 * Image type and pixel size from the first bytes of a file, without
 * decoding: enough to store a preview image with its dimensions and to
 * refuse decompression bombs before a single pixel is decoded.
 */

/** What {@link probeImageHeader} found. */
export interface ImageHeader {
  /** The type the bytes really are (`image/png`, `image/jpeg`, `image/gif`, `image/webp`). */
  readonly contentType: string;
  readonly width: number;
  readonly height: number;
}

/** The content types {@link probeImageHeader} recognises. */
export const PROBED_IMAGE_TYPES: readonly string[] = Object.freeze(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

function u16be(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}
function u16le(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8);
}
function u24le(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
}
function u32be(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) >>> 0) + ((b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!);
}
function ascii(b: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...b.subarray(start, start + length));
}

function header(contentType: string, width: number, height: number): ImageHeader | null {
  return width > 0 && height > 0 ? { contentType, width, height } : null;
}

function probePng(b: Uint8Array): ImageHeader | null {
  // Signature, then the IHDR chunk must come first (PNG spec §5.6).
  if (b.length < 24 || ascii(b, 12, 4) !== 'IHDR') return null;
  return header('image/png', u32be(b, 16), u32be(b, 20));
}

function probeGif(b: Uint8Array): ImageHeader | null {
  if (b.length < 10) return null;
  return header('image/gif', u16le(b, 6), u16le(b, 8));
}

function probeWebp(b: Uint8Array): ImageHeader | null {
  if (b.length < 30) return null;
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') {
    // Lossy: frame tag (3 bytes), start code 9d 01 2a, then 14-bit sizes.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
    return header('image/webp', u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return null;
    const bits = (b[21]! | (b[22]! << 8) | (b[23]! << 16) | (b[24]! << 24)) >>> 0;
    return header('image/webp', (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk === 'VP8X') return header('image/webp', u24le(b, 24) + 1, u24le(b, 27) + 1);
  return null;
}

function probeJpeg(b: Uint8Array): ImageHeader | null {
  // Walk the marker segments up to the first start-of-frame (SOF0..SOF15,
  // except DHT C4, JPG C8 and DAC CC, which share the range).
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return null; // end of image or start of scan before any frame
    const length = u16be(b, i + 2);
    if (length < 2) return null;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return header('image/jpeg', u16be(b, i + 7), u16be(b, i + 5));
    }
    i += 2 + length;
  }
  return null;
}

/**
 * The type and size of a PNG, JPEG, GIF or WebP image from its first bytes,
 * or `null` when the bytes are not (yet) enough to tell: callers pass a
 * growing prefix until it answers or a byte budget runs out. JPEG needs the
 * bytes up to the frame header, which follows any EXIF data.
 *
 * @example
 * probeImageHeader(firstBytes); // { contentType: 'image/png', width: 48, height: 48 }
 */
export function probeImageHeader(bytes: Uint8Array): ImageHeader | null {
  if (bytes.length >= 8 && u32be(bytes, 0) === 0x89504e47 && u32be(bytes, 4) === 0x0d0a1a0a) return probePng(bytes);
  if (bytes.length >= 6 && (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a')) return probeGif(bytes);
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return probeWebp(bytes);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return probeJpeg(bytes);
  return null;
}

/**
 * Whether `bytes` can never become a recognised image however many more
 * bytes arrive (wrong magic), so a caller can stop buffering early.
 */
export function isUnrecognisedImage(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  const png = u32be(bytes, 0) === 0x89504e47;
  const gif = ascii(bytes, 0, 3) === 'GIF';
  const webp = ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP';
  const jpeg = bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  return !(png || gif || webp || jpeg);
}
