import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { vectors } from '../test/vectors.js';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { isSignatureError } from './errors.js';
import {
  formatSigningKeyFile,
  generateSigningKey,
  parseKeyId,
  parseSigningKeyFile,
  publicKeyFromBase64,
  signBytes,
  signingKeyFromSeed,
  signingKeySeed,
  verifyBytes,
} from './signing-key.js';

const code = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return isSignatureError(error) ? error.code : error;
  }
  return undefined;
};

describe('signing keys', () => {
  // https://spec.matrix.org/v1.12/appendices/#signing-key
  it('derives the spec public key from the spec seed', () => {
    const key = signingKeyFromSeed(vectors.seed_b64, '1');
    expect(key.keyId).toBe('ed25519:1');
    expect(key.publicKey).toBe(vectors.public_key_b64);
    expect(Buffer.from(signingKeySeed(key)).toString('hex')).toBe(
      '6090c103d5e7af6b15a970fd563ed75549e6159719ae5c3c31dee4316fb75c0d',
    );
  });

  it('reads and writes the Synapse signing key file format', () => {
    const file = `ed25519 1 ${vectors.seed_b64}\n`;
    const [key] = parseSigningKeyFile(file);
    expect(key?.publicKey).toBe(vectors.public_key_b64);
    // The spec seed string has non-zero trailing bits; we write the canonical encoding.
    expect(formatSigningKeyFile(key!)).toBe('ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n');
    const two = `ed25519 a_AbCd ${encodeUnpaddedBase64(new Uint8Array(32).fill(7))}\r\n\nED25519 x y\n`;
    expect(code(() => parseSigningKeyFile(two))).toBe('INVALID_KEY');
    const keys = parseSigningKeyFile(`${file}\n  ed25519 a_AbCd ${'B'.repeat(43)}  \n`);
    expect(keys.map((k) => k.keyId)).toEqual(['ed25519:1', 'ed25519:a_AbCd']);
    expect(parseSigningKeyFile(formatSigningKeyFile(keys)).map((k) => k.publicKey)).toEqual(keys.map((k) => k.publicKey));
  });

  it.each([
    ['', 'INVALID_KEY'],
    ['ed25519 1', 'INVALID_KEY'],
    ['rsa 1 AAAA', 'INVALID_KEY'],
    ['ed25519 bad-version AAAA', 'INVALID_KEY'],
    ['ed25519 1 Zm9v', 'INVALID_KEY'],
    ['ed25519 1 !!!!', 'INVALID_BASE64'],
  ])('refuses key file %j', (text, expected) => {
    expect(code(() => parseSigningKeyFile(text))).toBe(expected);
  });

  it('generates Synapse-style key versions and usable keys', () => {
    const key = generateSigningKey();
    expect(key.version).toMatch(/^a_[A-Za-z0-9]{4}$/);
    const msg = new TextEncoder().encode('hello');
    expect(verifyBytes(key.publicKey, msg, signBytes(key, msg))).toBe(true);
    expect(generateSigningKey('v2').keyId).toBe('ed25519:v2');
  });

  it('signs like tweetnacl', () => {
    const seed = decodeBase64(vectors.seed_b64);
    const pair = nacl.sign.keyPair.fromSeed(seed);
    const key = signingKeyFromSeed(seed, '1');
    const msg = new TextEncoder().encode('{"one":1}');
    expect(signBytes(key, msg)).toBe(encodeUnpaddedBase64(nacl.sign.detached(msg, pair.secretKey)));
    expect(encodeUnpaddedBase64(pair.publicKey)).toBe(key.publicKey);
  });

  it('verifyBytes answers false for bad, short or non-base64 signatures', () => {
    const key = signingKeyFromSeed(vectors.seed_b64, '1');
    const msg = new TextEncoder().encode('x');
    const sig = signBytes(key, msg);
    expect(verifyBytes(key.publicKey, new TextEncoder().encode('y'), sig)).toBe(false);
    expect(verifyBytes(key.publicKey, msg, sig.slice(0, 40))).toBe(false);
    expect(verifyBytes(key.publicKey, msg, `${sig.slice(0, -1)}!`)).toBe(false);
    expect(verifyBytes(publicKeyFromBase64(key.publicKey), msg, `${sig}==`)).toBe(true);
  });

  it('checks public key length and key ID shape', () => {
    expect(code(() => publicKeyFromBase64('Zm9v'))).toBe('INVALID_KEY');
    expect(parseKeyId('ed25519:a:b')).toEqual({ algorithm: 'ed25519', version: 'a:b' });
    expect(parseKeyId('ed25519:')).toBeUndefined();
    expect(parseKeyId(':x')).toBeUndefined();
    expect(parseKeyId('nocolon')).toBeUndefined();
  });
});
