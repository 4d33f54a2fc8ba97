import { describe, expect, it } from 'vitest';
import {
  contentDispositionFor,
  dispositionFilenameParam,
  essenceOf,
  isInlineContentType,
  normaliseUploadContentType,
  normaliseUploadFilename,
  parseContentDisposition,
} from './content-headers.js';

describe('Content-Disposition for downloads (spec v1.12, MSC2702)', () => {
  it.each([
    ['image/png', 'cat.png', 'inline; filename=cat.png'],
    ['text/html', 'page.html', 'attachment; filename=page.html'],
    ['image/svg+xml', 'logo.svg', 'attachment; filename=logo.svg'],
    ['application/pdf', null, 'attachment'],
    ['text/plain; charset=utf-8', 'a.txt', 'inline; filename=a.txt'],
    ['IMAGE/PNG', 'x', 'inline; filename=x'],
    ['application/octet-stream', undefined, 'attachment'],
    ['video/mp4', 'Ünïcødé.mp4', "inline; filename*=utf-8''%C3%9Cn%C3%AFc%C3%B8d%C3%A9.mp4"],
    ['image/jpeg', 'War and Peace.jpg', 'inline; filename="War and Peace.jpg"'],
  ])('%s + %s → %s', (type, name, expected) => {
    expect(contentDispositionFor(type, name)).toBe(expected);
  });
  it('forces inline for thumbnails', () => {
    expect(contentDispositionFor('application/x-whatever', 'thumbnail.png', true)).toBe('inline; filename=thumbnail.png');
  });
  it('escapes quotes and backslashes, and never lets a name inject header syntax', () => {
    expect(dispositionFilenameParam('a"b\\c d')).toBe('filename="a\\"b\\\\c d"');
    const evil = 'x\r\nSet-Cookie: a=b';
    const param = dispositionFilenameParam(evil);
    expect(param).not.toMatch(/[\r\n]/);
    expect(parseContentDisposition(`inline; ${param}`)?.filename).toBe(evil);
  });
  it('round-trips every kind of name through parse', () => {
    for (const name of ['cat.png', 'War and Peace.pdf', 'a"b', 'Ünïcødé.mp4', '日本語.txt', "it's (1)*.txt", '😀']) {
      expect(parseContentDisposition(contentDispositionFor('image/png', name))?.filename).toBe(name);
    }
  });
});

describe('parseContentDisposition (remote headers)', () => {
  it.each([
    ['inline; filename=test_upload', 'inline', 'test_upload'],
    ['attachment; filename="a b.txt"', 'attachment', 'a b.txt'],
    ["attachment; filename*=UTF-8''%E2%82%AC%20rates", 'attachment', '€ rates'],
    ["attachment; filename=\"fallback.txt\"; filename*=utf-8''r%C3%A9el.txt", 'attachment', 'réel.txt'],
    ["inline; filename*=iso-8859-1''%E9t%E9.txt", 'inline', 'été.txt'],
    ['INLINE', 'inline', null],
    ['attachment;', 'attachment', null],
  ])('%s', (header, type, filename) => {
    expect(parseContentDisposition(header)).toEqual({ type, filename });
  });
  it.each(['', ';filename=x', 'inline; filename="unterminated', 'inline filename=x', 'inline; =x'])('rejects %j', (h) => {
    expect(parseContentDisposition(h)).toBeNull();
  });
  it('falls back to the plain filename when filename* is broken', () => {
    expect(parseContentDisposition("inline; filename=a.txt; filename*=utf-8''%E2%82")?.filename).toBe('a.txt');
  });
});

describe('content types', () => {
  it('compares type/subtype only', () => {
    expect(essenceOf(' Text/Plain ; charset=utf-8')).toBe('text/plain');
    expect(isInlineContentType('text/plain; charset=utf-8')).toBe(true);
    expect(isInlineContentType('text/html')).toBe(false);
    expect(isInlineContentType('image/svg+xml')).toBe(false);
  });
  it('normalises upload types: missing → octet-stream, verbatim otherwise, control chars refused', () => {
    expect(normaliseUploadContentType(undefined)).toBe('application/octet-stream');
    expect(normaliseUploadContentType('  ')).toBe('application/octet-stream');
    expect(normaliseUploadContentType('img/png')).toBe('img/png');
    expect(normaliseUploadContentType('text/plain; charset=utf-8')).toBe('text/plain; charset=utf-8');
    expect(normaliseUploadContentType('a/b\r\nX: y')).toBeNull();
    expect(normaliseUploadContentType('a/' + 'b'.repeat(300))).toBeNull();
  });
  it('normalises filenames: empty is none, control chars refused', () => {
    expect(normaliseUploadFilename(undefined)).toBeUndefined();
    expect(normaliseUploadFilename('')).toBeUndefined();
    expect(normaliseUploadFilename('a b.txt')).toBe('a b.txt');
    expect(normaliseUploadFilename('a\nb')).toBeNull();
    expect(normaliseUploadFilename('x'.repeat(256))).toBeNull();
  });
});
