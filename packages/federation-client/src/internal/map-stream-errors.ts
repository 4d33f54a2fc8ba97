/**
 * Re-emits `source` chunk for chunk, turning its errors into `map(error)`:
 * how the transport reports body failures as `FederationError`s and
 * `fetchMedia` as `RemoteMediaError`s. Cancelling it cancels `source`.
 */
export function mapStreamErrors(source: ReadableStream<Uint8Array>, map: (error: unknown) => unknown): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(map(error));
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
