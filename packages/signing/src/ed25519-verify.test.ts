import { generateKeyPairSync, sign } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createEd25519Verify, ed25519Backend, type SodiumVerify } from './internal/ed25519-verify.js';

const sodium = createRequire(import.meta.url)('sodium-native') as SodiumVerify;

describe('Ed25519 verification backends', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const message = Buffer.from('{"destination":"a.example","method":"GET","origin":"b.example","uri":"/x"}');
  const signature = sign(null, message, privateKey);
  const backends = { libsodium: createEd25519Verify(sodium), 'node:crypto': createEd25519Verify(undefined) };

  it('uses libsodium in this repository (sodium-native is installed)', () => {
    expect(ed25519Backend).toBe('libsodium');
  });

  for (const [name, verify] of Object.entries(backends)) {
    it(`${name}: accepts the right signature and refuses every altered input`, () => {
      expect(verify(publicKey, message, signature)).toBe(true);
      // The same key object again: its raw bytes are reused, the verification is not.
      expect(verify(publicKey, message, signature)).toBe(true);
      const otherMessage = Buffer.from(message);
      otherMessage[5] = otherMessage[5]! ^ 1;
      expect(verify(publicKey, otherMessage, signature)).toBe(false);
      const otherSignature = Buffer.from(signature);
      otherSignature[10] = otherSignature[10]! ^ 1;
      expect(verify(publicKey, message, otherSignature)).toBe(false);
      expect(verify(generateKeyPairSync('ed25519').publicKey, message, signature)).toBe(false);
      // A private key stands for its public half, as node:crypto takes it.
      expect(verify(privateKey, message, signature)).toBe(true);
    });
  }

  it('libsodium refuses a signature whose S is not reduced, like node:crypto', () => {
    // S + L (the group order) verifies under a lax check; both backends must refuse it (RFC 8032 §5.1.7).
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString('hex')}`) + L;
    const malleable = Buffer.from(signature);
    Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse().copy(malleable, 32);
    expect(backends['node:crypto'](publicKey, message, malleable)).toBe(false);
    expect(backends.libsodium(publicKey, message, malleable)).toBe(false);
  });
});
