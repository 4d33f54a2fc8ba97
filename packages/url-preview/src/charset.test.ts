import { describe, expect, it } from 'vitest';
import { charsetOfContentType, encodingForLabel, sniffHtmlEncoding } from './charset.js';

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('sniffHtmlEncoding', () => {
  it('prefers a byte order mark over everything', () => {
    expect(sniffHtmlEncoding(new Uint8Array([0xef, 0xbb, 0xbf, 0x3c]), 'text/html; charset=windows-1251')).toBe('utf-8');
    expect(sniffHtmlEncoding(new Uint8Array([0xff, 0xfe, 0x3c, 0]), 'text/html; charset=utf-8')).toBe('utf-16le');
    expect(sniffHtmlEncoding(new Uint8Array([0xfe, 0xff, 0, 0x3c]), null)).toBe('utf-16be');
  });

  it('uses the header charset, then <meta>, then UTF-8', () => {
    expect(sniffHtmlEncoding(ascii('<meta charset="koi8-r">'), 'text/html; charset="Windows-1251"')).toBe('windows-1251');
    expect(sniffHtmlEncoding(ascii('<meta charset="koi8-r">'), 'text/html')).toBe('koi8-r');
    expect(sniffHtmlEncoding(ascii('<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS">'), null)).toBe('shift_jis');
    expect(sniffHtmlEncoding(ascii('<?xml version="1.0" encoding="ISO-8859-2"?><html>'), null)).toBe('iso-8859-2');
    expect(sniffHtmlEncoding(ascii('<html><title>x</title>'), 'text/html')).toBe('utf-8');
  });

  it('skips unknown labels and treats a <meta> UTF-16 claim as UTF-8', () => {
    expect(sniffHtmlEncoding(ascii('<meta charset="windows-1251">'), 'text/html; charset=bogus')).toBe('windows-1251');
    expect(sniffHtmlEncoding(ascii('<meta charset="nonsense">'), null)).toBe('utf-8');
    expect(sniffHtmlEncoding(ascii('<meta charset="utf-16">'), null)).toBe('utf-8');
  });

  it('maps WHATWG labels', () => {
    expect(encodingForLabel('latin1')).toBe('windows-1252');
    expect(encodingForLabel('cp1251')).toBe('windows-1251');
    expect(encodingForLabel('x-nothing')).toBeUndefined();
    expect(charsetOfContentType('text/html;charset=UTF-8')).toBe('UTF-8');
    expect(charsetOfContentType('text/html')).toBeUndefined();
    expect(charsetOfContentType(undefined)).toBeUndefined();
  });
});
