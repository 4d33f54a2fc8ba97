import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { isSignatureError } from './errors.js';

const spec: [string, string][] = [
  ['', ''],
  ['f', 'Zg'],
  ['fo', 'Zm8'],
  ['foo', 'Zm9v'],
  ['foob', 'Zm9vYg'],
  ['fooba', 'Zm9vYmE'],
  ['foobar', 'Zm9vYmFy'],
];

// https://spec.matrix.org/v1.12/appendices/#unpadded-base64
describe('unpadded base64', () => {
  it.each(spec)('%j encodes to %j and back', (plain, encoded) => {
    expect(encodeUnpaddedBase64(new TextEncoder().encode(plain))).toBe(encoded);
    expect(Buffer.from(decodeBase64(encoded)).toString()).toBe(plain);
  });

  it('decodes padded input too', () => {
    expect(Buffer.from(decodeBase64('Zm8=')).toString()).toBe('fo');
    expect(Buffer.from(decodeBase64('Zg==')).toString()).toBe('f');
  });

  it('encodes a subarray view, not its whole buffer', () => {
    const bytes = new TextEncoder().encode('xxfooxx').subarray(2, 5);
    expect(encodeUnpaddedBase64(bytes)).toBe('Zm9v');
  });

  it.each(['Zm9v!', 'Zm9vY', 'Zg=', 'Z===', 'Zm 9v', 'Zm9v-_', '=Zg'])('rejects %j', (bad) => {
    let caught: unknown;
    try {
      decodeBase64(bad);
    } catch (error) {
      caught = error;
    }
    expect(isSignatureError(caught) && caught.code).toBe('INVALID_BASE64');
  });
});
