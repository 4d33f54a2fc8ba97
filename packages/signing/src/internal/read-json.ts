/**
 * Reads a fetch response body as JSON, refusing more than `maxBytes`. The
 * limit is enforced while streaming, so a hostile key server cannot make us
 * buffer an unbounded body.
 */
export async function readJsonLimited(response: Response, maxBytes: number): Promise<unknown> {
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    await response.body?.cancel();
    throw new Error(`Response of ${declared} bytes exceeds the ${maxBytes} byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw new Error(`Response exceeds the ${maxBytes} byte limit`);
      }
      chunks.push(value);
    }
  }
  const text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  return JSON.parse(text) as unknown;
}
