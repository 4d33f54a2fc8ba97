/**
 * Internal to MediaService: the tee that streams a remote body into the blob
 * store and, at the same time, to the first client that asked for it.
 */
import { ContentTooLargeError } from './errors.js';

/** Options of {@link RemoteTee}. */
export interface RemoteTeeOptions {
  /** Most bytes accepted from the remote; more errors the source with `ContentTooLargeError`. */
  readonly maxBytes: number;
  /** Bytes queued for the live reader before the fetch waits for it to read. */
  readonly liveBufferBytes: number;
  /**
   * Bytes that must arrive before {@link RemoteTeeOptions.onWindow} fires. A
   * body that ends (or fails) sooner never goes live: its callers get the
   * stored media (or a clean error) instead of a half-sent response.
   */
  readonly windowBytes: number;
  /** Called once, when `windowBytes` have arrived and the body goes on. */
  readonly onWindow: () => void;
}

/**
 * Reads a remote body once and hands every chunk to two consumers: the blob
 * store (through {@link RemoteTee.source}, which it pulls) and one live
 * reader ({@link RemoteTee.live}). The live reader may leave at any time
 * (cancel, {@link RemoteTee.detach}); the blob write goes on for the other
 * callers. Buffering is bounded: when the live reader has
 * `liveBufferBytes` unread, reading from the remote waits for it.
 */
export class RemoteTee {
  readonly live: ReadableStream<Uint8Array>;
  readonly #body: ReadableStream<Uint8Array>;
  readonly #options: RemoteTeeOptions;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #wakeWriter: (() => void) | null = null;
  #windowReached = false;
  #received = 0;

  constructor(body: ReadableStream<Uint8Array>, options: RemoteTeeOptions) {
    this.#body = body;
    this.#options = options;
    this.live = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => {
          this.#wake();
        },
        cancel: () => {
          // The live reader left (client disconnected): the blob write goes on alone.
          this.#controller = null;
          this.#wake();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: options.liveBufferBytes }),
    );
  }

  /** Bytes received from the remote so far. */
  get received(): number {
    return this.#received;
  }

  /**
   * The remote body as the blob store should read it. Each chunk is queued
   * for the live reader before it is yielded, so the live reader is never
   * behind the stored bytes by more than its buffer. Ending early (the blob
   * store gave up) cancels the remote body.
   */
  async *source(): AsyncGenerator<Uint8Array, void, undefined> {
    const reader = this.#body.getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          return;
        }
        this.#received += value.byteLength;
        // Enforced here too, so the live reader never sees a byte past the limit.
        if (this.#received > this.#options.maxBytes) throw new ContentTooLargeError(this.#options.maxBytes);
        this.#enqueue(value);
        if (!this.#windowReached && this.#received >= this.#options.windowBytes) {
          this.#windowReached = true;
          this.#options.onWindow();
        }
        await this.#waitForLiveReader();
        yield value;
      }
    } finally {
      if (!finished) await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  }

  /** Ends the live stream successfully (every byte was stored). */
  close(): void {
    const controller = this.#controller;
    this.#controller = null;
    try {
      controller?.close();
    } catch {
      // already cancelled
    }
  }

  /** Errors the live stream, so the response carrying it is aborted rather than ending short. */
  fail(reason: unknown): void {
    const controller = this.#controller;
    this.#controller = null;
    this.#wake();
    try {
      controller?.error(reason);
    } catch {
      // already cancelled
    }
  }

  /** Drops the live reader (it will never read): the blob write goes on without waiting for it. */
  detach(reason: unknown): void {
    this.fail(reason);
  }

  #enqueue(chunk: Uint8Array): void {
    const controller = this.#controller;
    if (controller === null) return;
    try {
      controller.enqueue(chunk);
    } catch {
      this.#controller = null;
    }
  }

  async #waitForLiveReader(): Promise<void> {
    for (;;) {
      const controller = this.#controller;
      if (controller === null || (controller.desiredSize ?? 1) > 0) return;
      await new Promise<void>((resolve) => {
        this.#wakeWriter = resolve;
      });
    }
  }

  #wake(): void {
    const wake = this.#wakeWriter;
    this.#wakeWriter = null;
    wake?.();
  }
}
