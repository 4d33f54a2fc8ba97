import { describe, expect, it } from 'vitest';
import { encodeMultipart, multipartFrame } from '../src/index.js';

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(stream).arrayBuffer());
}

describe('multipartFrame', () => {
  it('is byte for byte what encodeMultipart writes around the content', async () => {
    const content = Buffer.from('the media bytes \r\n--not-a-boundary');
    const options = {
      boundary: 'b0undary',
      metadata: { a: 1 },
      content: { contentType: 'image/png', contentDisposition: 'inline; filename="x.png"' },
    } as const;
    const frame = multipartFrame(options);
    const encoded = encodeMultipart({ ...options, content: { ...options.content, stream: new Response(content).body!, contentLength: content.length } });
    expect(frame.contentType).toBe(encoded.contentType);
    expect(frame.boundary).toBe('b0undary');
    expect(Buffer.concat([frame.head, content, frame.tail]).equals(await bytesOf(encoded.body))).toBe(true);
    expect(encoded.contentLength).toBe(frame.head.length + content.length + frame.tail.length);
  });

  it('refuses what encodeMultipart refuses', () => {
    expect(() => multipartFrame({ boundary: 'bad boundary', content: { contentType: 'a/b' } })).toThrow(TypeError);
    expect(() => multipartFrame({ content: { contentType: 'a/b\r\nX-Injected: 1' } })).toThrow(TypeError);
  });
});
