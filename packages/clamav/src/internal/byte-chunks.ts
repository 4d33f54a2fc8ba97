/** A byte source as `@hsmedia/*` APIs take it: a WHATWG stream or any async iterable (Node streams are). */
export type ScanSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

function isReadableStream(source: ScanSource): source is ReadableStream<Uint8Array> {
  return typeof (source as Partial<ReadableStream<Uint8Array>>).getReader === 'function';
}

/**
 * The chunks of `source`, each at most `maxBytes` long (clamd frames a
 * stream in chunks; smaller frames keep its buffer and ours small). A
 * consumer that stops early cancels a WHATWG stream.
 */
export async function* boundedChunks(source: ScanSource, maxBytes: number): AsyncGenerator<Uint8Array> {
  if (!isReadableStream(source)) {
    for await (const chunk of source) yield* split(chunk, maxBytes);
    return;
  }
  const reader = source.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield* split(next.value, maxBytes);
    }
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

function* split(chunk: Uint8Array, maxBytes: number): Generator<Uint8Array> {
  for (let offset = 0; offset < chunk.byteLength; offset += maxBytes) yield chunk.subarray(offset, offset + maxBytes);
}
