import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobDirOf, blobPathOf, isValidBlobId, jailedPath, stagingPathOf } from './blob-path.js';

const root = resolve('/srv/media');

describe('isValidBlobId', () => {
  it('accepts 8..255 characters of [A-Za-z0-9_-]', () => {
    for (const id of ['abcdefgh', 'A-b_C-d_0123', '-'.repeat(8), 'x'.repeat(255)]) expect(isValidBlobId(id)).toBe(true);
  });
  it('refuses everything else', () => {
    for (const id of ['', 'short', 'abcdefg', 'x'.repeat(256), '../abcdefgh', 'abcd/efgh', 'abcd\\efgh', 'abcdefgh.', 'abcd%2Fefgh', 'abcd\0efgh', 'abcdefgh\n', 'äbcdefgh', ' abcdefgh'])
      expect(isValidBlobId(id), JSON.stringify(id)).toBe(false);
  });
});

describe('blobPathOf', () => {
  it('shards by the first two pairs of characters', () => {
    expect(blobPathOf(root, 'AbCdEfGhIjKl')).toBe(join(root, 'blobs', 'Ab', 'Cd', 'AbCdEfGhIjKl'));
    expect(blobDirOf(root, 'AbCdEfGhIjKl')).toBe(join(root, 'blobs', 'Ab', 'Cd'));
  });
  it('answers null for an invalid ID', () => {
    for (const id of ['../../etc/passwd', '..', '', 'a'.repeat(300), '/abs/olute'])
      expect(blobPathOf(root, id)).toBeNull();
    expect(blobDirOf(root, '..')).toBeNull();
  });
  it('resolves a relative root', () => {
    expect(blobPathOf('data', 'abcdefgh')).toBe(resolve('data', 'blobs', 'ab', 'cd', 'abcdefgh'));
  });
});

describe('jailedPath', () => {
  it('keeps paths inside the root', () => {
    expect(jailedPath(root, 'blobs', 'x')).toBe(join(root, 'blobs', 'x'));
    expect(jailedPath(root, 'a/../b')).toBe(join(root, 'b'));
    expect(jailedPath(root, '..foo')).toBe(join(root, '..foo'));
  });
  it('refuses the root itself, parents, siblings, absolute paths and NUL', () => {
    expect(jailedPath(root)).toBeNull();
    expect(jailedPath(root, '.')).toBeNull();
    expect(jailedPath(root, '..')).toBeNull();
    expect(jailedPath(root, 'blobs', '..', '..', 'etc')).toBeNull();
    expect(jailedPath(root, '../media-other/x')).toBeNull();
    expect(jailedPath(root, '/etc/passwd')).toBeNull();
    expect(jailedPath(root, 'a\0b')).toBeNull();
  });
});

describe('stagingPathOf', () => {
  it('puts a name under staging/ and refuses separators', () => {
    expect(stagingPathOf(root, 'abc.tmp')).toBe(join(root, 'staging', 'abc.tmp'));
    expect(stagingPathOf(root, '../x')).toBeNull();
    expect(stagingPathOf(root, 'a\\b')).toBeNull();
    expect(stagingPathOf(root, '..')).toBeNull();
  });
});
