import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sha256Hasher } from './sha256-hasher.js';

async function hashInPieces(data: Buffer, piece: number): Promise<string> {
  const hasher = new Sha256Hasher();
  for (let offset = 0; offset < data.byteLength; offset += piece) {
    await hasher.update(data.subarray(offset, offset + piece));
  }
  return hasher.digest();
}

const expected = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('Sha256Hasher', () => {
  it('hashes nothing, and blobs below the worker threshold, inline', async () => {
    expect(await new Sha256Hasher().digest()).toBe(expected(Buffer.alloc(0)));
    const small = randomBytes(100_000);
    expect(await hashInPieces(small, 7_000)).toBe(expected(small));
  });

  it('hashes large blobs on the worker, across odd chunk and batch boundaries', async () => {
    const large = randomBytes(12 * 1024 * 1024 + 12_345);
    expect(await hashInPieces(large, 65_537)).toBe(expected(large));
    expect(await hashInPieces(large, 3 * 1024 * 1024 + 1)).toBe(expected(large));
  });

  it('keeps concurrent hashes apart', async () => {
    const blobs = [randomBytes(3 * 1024 * 1024), randomBytes(5 * 1024 * 1024 + 1), randomBytes(2 * 1024 * 1024 - 1)];
    const digests = await Promise.all(blobs.map((blob, i) => hashInPieces(blob, 40_000 + i)));
    expect(digests).toEqual(blobs.map(expected));
  });

  it('can be disposed mid-way without disturbing the next hash', async () => {
    const hasher = new Sha256Hasher();
    await hasher.update(randomBytes(3 * 1024 * 1024));
    hasher.dispose();
    const data = randomBytes(2 * 1024 * 1024);
    expect(await hashInPieces(data, 64 * 1024)).toBe(expected(data));
  });
});
