/** Test helpers: chunked sources and stream collectors. */

/** A Web stream yielding `body` in pieces of the given sizes (cycled). */
export function chunked(body: Uint8Array, sizes: readonly number[] = [body.length || 1]): ReadableStream<Uint8Array> {
  let off = 0;
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        if (off >= body.length) {
          c.close();
          return;
        }
        const n = Math.max(1, sizes[i++ % sizes.length] ?? 1);
        // copy: each chunk is its own buffer, as on the wire
        c.enqueue(Uint8Array.prototype.slice.call(body, off, off + n));
        off += n;
      },
    },
    { highWaterMark: 0 },
  );
}

/** Reads a whole stream into one Buffer. */
export async function collect(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  const reader = stream.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(Buffer.from(r.value));
  }
  return Buffer.concat(parts);
}

/** Splits `body` at the given cut points into a list of chunks. */
export function splitAt(body: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const sorted = [...new Set(cuts.map((c) => Math.max(0, Math.min(body.length, c))))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...sorted, body.length]) {
    if (c > prev) out.push(body.slice(prev, c));
    prev = c;
  }
  return out;
}

/** A Web stream of the given chunks. */
export function fromChunks(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(c) {
        const next = chunks[i++];
        if (next === undefined) c.close();
        else c.enqueue(next);
      },
    },
    { highWaterMark: 0 },
  );
}
