import { SignatureError } from './errors.js';

const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Unpadded base64 with the standard alphabet (spec appendix "Unpadded
 * Base64"), as used for keys and signatures.
 *
 * @example
 * encodeUnpaddedBase64(new TextEncoder().encode('foo')); // 'Zm9v'
 */
export function encodeUnpaddedBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
}

/**
 * Decodes standard base64, padded or not (the spec says decoders SHOULD
 * accept both). Unlike `Buffer.from(s, 'base64')`, anything outside the
 * alphabet, misplaced padding or an impossible length is an error, so a
 * mangled signature fails instead of decoding to other bytes.
 *
 * @throws {SignatureError} `INVALID_BASE64`.
 */
export function decodeBase64(text: string): Uint8Array {
  const ok =
    STANDARD.test(text) &&
    (text.includes('=') ? text.length % 4 === 0 : text.length % 4 !== 1);
  if (!ok) throw new SignatureError('INVALID_BASE64', 'Value is not valid base64');
  const buf = Buffer.from(text, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
