import { describe, expect, it } from 'vitest';
import {
  MultipartParseError,
  MultipartPushDecoder,
  MultipartTooLargeError,
  MultipartTruncatedError,
  type MultipartHead,
  type PushDecoderLimits,
} from '@hsmedia/multipart';

const B = 'b0b0b0b0b0b0b0b0';
const enc = (s: string): Buffer => Buffer.from(s, 'latin1');
const LIMITS: PushDecoderLimits = {
  maxContentBytes: 1 << 20,
  maxMetadataBytes: 1024,
  maxHeaderBytes: 1024,
  maxHeaderLines: 8,
  maxPreambleBytes: 1024,
};
// How Synapse writes it: a leading CRLF before the first delimiter.
const SYNAPSE_HEAD = `\r\n--${B}\r\nContent-Type: application/json\r\n\r\n{"k":1}\r\n--${B}\r\nContent-Type: text/plain\r\n\r\n`;

function recorder(limits: PushDecoderLimits = LIMITS) {
  const events: Array<{ head: MultipartHead } | { content: Buffer } | 'end'> = [];
  const decoder = new MultipartPushDecoder(B, limits, {
    onHead: (head) => events.push({ head }),
    onContent: (content) => events.push({ content }),
    onEnd: () => events.push('end'),
  });
  const content = (): string =>
    events
      .filter((event): event is { content: Buffer } => typeof event === 'object' && 'content' in event)
      .map((event) => event.content.toString('latin1'))
      .join('');
  return { decoder, events, content };
}

describe('MultipartPushDecoder', () => {
  it('reports the head, the media and the end synchronously from push, for a body starting with CRLF', () => {
    const { decoder, events, content } = recorder();
    decoder.push(enc(`${SYNAPSE_HEAD}hello`));
    expect(events[0]).toEqual({
      head: { metadata: { k: 1 }, headers: { 'content-type': 'text/plain' }, location: undefined },
    });
    decoder.push(enc(` world\r\n--${B}--\r\n`));
    expect(content()).toBe('hello world');
    expect(events.at(-1)).toBe('end');
    expect(decoder.done).toBe(true);
    decoder.push(enc('epilogue is ignored'));
    decoder.end();
  });

  it('gives the same events fed one byte at a time', () => {
    const body = enc(`${SYNAPSE_HEAD}a\r\nb--${B}x\r\n--${B}--`);
    const { decoder, content, events } = recorder();
    for (let i = 0; i < body.length; i++) decoder.push(body.subarray(i, i + 1));
    decoder.end();
    expect(content()).toBe(`a\r\nb--${B}x`);
    expect(events.at(-1)).toBe('end');
  });

  it('hands on media as views of the pushed chunk, not copies', () => {
    const { decoder, events } = recorder();
    decoder.push(enc(SYNAPSE_HEAD));
    const chunk = Buffer.alloc(65536, 0x61);
    decoder.push(chunk);
    const pieces = events.filter((event): event is { content: Buffer } => typeof event === 'object' && 'content' in event);
    expect(pieces.length).toBeGreaterThan(0);
    for (const piece of pieces) expect(piece.content.buffer).toBe(chunk.buffer);
  });

  it('reports a Location answer once the body is complete', () => {
    const { decoder, events } = recorder();
    decoder.push(enc(`--${B}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${B}\r\nLocation: https://cdn.example/x\r\n\r\n\r\n--${B}`));
    expect(events).toEqual([]);
    decoder.end();
    expect(events).toEqual([{ head: { metadata: {}, headers: { location: 'https://cdn.example/x' }, location: 'https://cdn.example/x' } }, 'end']);
  });

  it('enforces the media limit on the chunk that passes it, and stays failed', () => {
    const { decoder } = recorder({ ...LIMITS, maxContentBytes: 10 });
    decoder.push(enc(`${SYNAPSE_HEAD}0123456789`));
    expect(() => decoder.push(enc('x'))).toThrow(MultipartTooLargeError);
    expect(() => decoder.push(enc(`\r\n--${B}--`))).toThrow(MultipartTooLargeError);
  });

  it('refuses a declared Content-Length over the limit before any media byte', () => {
    const { decoder, events } = recorder({ ...LIMITS, maxContentBytes: 10 });
    expect(() =>
      decoder.push(enc(`--${B}\r\n\r\n{}\r\n--${B}\r\nContent-Length: 11\r\n\r\n`)),
    ).toThrow(MultipartTooLargeError);
    expect(events).toEqual([]);
  });

  it('throws MultipartTruncatedError when the body ends early, and MultipartParseError for a third part', () => {
    const truncated = recorder();
    truncated.decoder.push(enc(`${SYNAPSE_HEAD}partial`));
    expect(() => truncated.decoder.end()).toThrow(MultipartTruncatedError);
    const third = recorder();
    expect(() => third.decoder.push(enc(`${SYNAPSE_HEAD}x\r\n--${B}\r\n\r\nmore\r\n--${B}--`))).toThrow(MultipartParseError);
    expect(third.content()).toBe('x');
    const headers = recorder();
    headers.decoder.push(enc(`--${B}\r\nContent-Type: appl`));
    expect(() => headers.decoder.end()).toThrow(MultipartTruncatedError);
  });

  it('refuses limits that are not non-negative integers', () => {
    expect(() => recorder({ ...LIMITS, maxHeaderLines: -1 })).toThrow(RangeError);
    expect(() => recorder({ ...LIMITS, maxContentBytes: Number.NaN })).toThrow(RangeError);
  });
});
