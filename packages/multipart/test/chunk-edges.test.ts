import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeMultipart, MultipartParseError } from '@hsmedia/multipart';
import { fromChunks } from './helpers.js';

// What the decoder does at chunk edges: a chunk that is all payload passes
// through as it is; a tail that could start a delimiter is held back and
// settled with the head of the next chunk, whose rest passes through as is.

const B = 'edge0edge0edge0e';
const CT = `multipart/mixed; boundary=${B}`;
const HEAD = `\r\n--${B}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${B}\r\nContent-Type: application/octet-stream\r\n\r\n`;
const enc = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Random payload bytes without CR, LF or '-', so only the planted edges look like delimiters. */
function payload(size: number): Buffer {
  const b = randomBytes(size);
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x2d) b[i] = 0x41;
  return b;
}

async function decodeChunks(chunks: Buffer[]): Promise<{ bytes: Buffer; pieces: Uint8Array[] }> {
  const r = await decodeMultipart(CT, fromChunks(chunks), { maxContentBytes: 1 << 24 });
  if (r.kind !== 'content') throw new Error('expected content');
  const pieces: Uint8Array[] = [];
  const reader = r.stream.getReader();
  for (;;) {
    const x = await reader.read();
    if (x.done) break;
    pieces.push(x.value);
  }
  return { bytes: Buffer.concat(pieces), pieces };
}

describe('chunk edges', () => {
  it('passes chunks that are all payload through without copying them', async () => {
    const middle = [payload(65536), payload(65536), payload(65536)];
    const { bytes, pieces } = await decodeChunks([enc(HEAD), ...middle, enc(`\r\n--${B}--\r\n`)]);
    expect(bytes.equals(Buffer.concat(middle))).toBe(true);
    for (const chunk of middle) expect(pieces).toContain(chunk);
  });

  it('holds back only tails that could start a delimiter, and loses or reorders nothing', async () => {
    // Each chunk ends with a possible delimiter start that the next chunk disproves.
    const tails = ['\r', '\r\n', '\n', `\r\n-`, `\r\n--${B.slice(0, 7)}`, `\n--${B}`, `\r\n--${B}-`, `\r\n--${B} \t`];
    const content: Buffer[] = [];
    for (const t of tails) content.push(payload(5000), enc(t));
    content.push(payload(5000));
    const all = Buffer.concat(content);
    // Chunks cut right after each planted tail; the last tail is followed by 'x', not a line end.
    const chunks: Buffer[] = [enc(HEAD)];
    let off = 0;
    for (let i = 0; i < tails.length; i++) {
      const end = off + 5000 + tails[i]!.length;
      chunks.push(all.subarray(off, end));
      off = end;
    }
    chunks.push(Buffer.concat([all.subarray(off), enc(`\r\n--${B}--\r\n`)]));
    const { bytes, pieces } = await decodeChunks(chunks);
    expect(bytes.equals(all)).toBe(true);
    // A held-back tail costs at most one extra piece per chunk.
    expect(pieces.length).toBeLessThanOrEqual(2 * chunks.length);
  });

  it('finds a delimiter split across a chunk edge, before a large next chunk', async () => {
    const body = payload(70_000);
    for (const cut of [1, 2, 3, 5, 10, B.length + 4]) {
      const delim = enc(`\r\n--${B}--\r\n`);
      const chunks = [
        enc(HEAD),
        Buffer.concat([body, delim.subarray(0, cut)]),
        Buffer.concat([delim.subarray(cut), enc(' epilogue '.repeat(300))]),
      ];
      const { bytes } = await decodeChunks(chunks);
      expect(bytes.equals(body)).toBe(true);
    }
  });

  it('judges long transport padding after a held-back delimiter as if the chunk were whole', async () => {
    const body = payload(10_000);
    // 1500 spaces: more than the spliced head, fewer than the chunk: accepted.
    const ok = [enc(HEAD), Buffer.concat([body, enc(`\r\n--${B}`)]), enc(`${' '.repeat(1500)}\r\n${' '.repeat(900)}`)];
    expect((await decodeChunks(ok)).bytes.equals(body)).toBe(true);
    // Padding running past the end of the chunk: rejected, as before.
    const bad = [enc(HEAD), Buffer.concat([body, enc(`\r\n--${B}`)]), enc(' '.repeat(3000)), enc('\r\n')];
    await expect(decodeChunks(bad)).rejects.toBeInstanceOf(MultipartParseError);
  });
});
