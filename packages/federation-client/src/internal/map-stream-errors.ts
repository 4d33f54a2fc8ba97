/**
 * Re-emits `source` chunk for chunk, turning its errors into `map(error)`:
 * how the transport reports body failures as `FederationError`s and
 * `fetchMedia` as `RemoteMediaError`s. Cancelling it cancels `source`.
 * `onEnd` runs once when the stream ends, fails or is cancelled.
 */
export function mapStreamErrors(
  source: ReadableStream<Uint8Array>,
  map: (error: unknown) => unknown,
  onEnd?: () => void,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            onEnd?.();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          const mapped = map(error);
          onEnd?.();
          controller.error(mapped);
        }
      },
      cancel(reason) {
        onEnd?.();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
