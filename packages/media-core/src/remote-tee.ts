/**
 * Internal to MediaService: the tee that streams a remote body into the blob
 * store and, at the same time, to the first client that asked for it.
 */
import { ContentTooLargeError } from '@hsmedia/errors';
import { RemoteMediaError } from './errors.js';
import { offerPushBody, type BodySink, type PushBody, type PushBodyControls } from './file-body.js';

/** Options of {@link RemoteTee}. */
export interface RemoteTeeOptions {
  /** Most bytes accepted from the remote; more errors the source with `ContentTooLargeError`. */
  readonly maxBytes: number;
  /**
   * The length the remote declared (the live response's `Content-Length`), or null. A body that
   * ends short of it or goes past it is a remote failure (`RemoteMediaError` `bad_response`): no
   * byte past it reaches either consumer, and the chunk that completes it reaches the live reader
   * only once the body has really ended there, so a live response is aborted, never complete
   * with bytes the cache refused (RFC 9110 §8.6: a message must carry exactly its Content-Length).
   */
  readonly declaredLength?: number | null;
  /** Bytes queued for the live reader before reading from the remote waits for it. */
  readonly liveBufferBytes: number;
  /** Bytes queued for the blob writer before reading from the remote waits for it. */
  readonly storeBufferBytes: number;
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
 * reader ({@link RemoteTee.live}). The remote is read by its own loop, so
 * the network, the live reader and the disk work at the same time; each
 * consumer has a bounded queue and reading waits while either is full. The
 * live reader may leave at any time (cancel, {@link RemoteTee.detach}); the
 * blob write goes on for the other callers.
 *
 * The live side is a Web stream, which also offers itself as a push body
 * (`offerPushBody`): a server that takes it gets every chunk written straight
 * to its socket from the loop reading the remote, with no pull and no
 * promise per chunk (docs/byte-path.md, "The remote relay").
 */
export class RemoteTee {
  readonly live: ReadableStream<Uint8Array>;
  readonly #body: ReadableStream<Uint8Array>;
  readonly #options: RemoteTeeOptions;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  /** The live reader is there and its stream has neither failed nor ended. */
  #liveOpen = true;
  /** Every byte is queued for the live reader: end it once the queue is empty. */
  #liveEnding = false;
  readonly #liveQueue: Uint8Array[] = [];
  #liveQueued = 0;
  /** The live Web stream has a read waiting for a chunk. */
  #pullPending = false;
  /** The socket the live side pushes to, once taken as a push body. */
  #sink: BodySink | null = null;
  /** The sink asked to wait (`write` answered false) until `drained()`. */
  #sinkFull = false;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  readonly #storeQueue: Uint8Array[] = [];
  #storeQueued = 0;
  #ended = false;
  #failure: { readonly error: unknown } | null = null;
  #abandoned = false;
  #wakePump: (() => void) | null = null;
  #wakeSource: (() => void) | null = null;
  #windowReached = false;
  #received = 0;
  /** The chunk that completed `declaredLength`, kept from the live reader until the body ends. */
  #heldForLive: Uint8Array | null = null;

  constructor(body: ReadableStream<Uint8Array>, options: RemoteTeeOptions) {
    this.#body = body;
    this.#options = options;
    this.live = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => {
          this.#pullPending = true;
          this.#flushLive();
        },
        cancel: () => {
          // The live reader left (client disconnected): the blob write goes on alone.
          this.#dropLive();
        },
      },
      // The queue is the tee's own (bounded by liveBufferBytes): the stream holds nothing.
      { highWaterMark: 0 },
    );
    offerPushBody(this.live, () => this.#takeAsPushBody());
  }

  /** Bytes received from the remote so far. */
  get received(): number {
    return this.#received;
  }

  /**
   * The remote body as the blob store should read it (call once). It errors
   * as soon as the remote fails or passes `maxBytes`; ending it early (the
   * blob store gave up) cancels the remote body.
   */
  async *source(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#abandoned) throw new Error('remote body cancelled');
    void this.#pump();
    let complete = false;
    try {
      for (;;) {
        if (this.#failure !== null) throw this.#failure.error;
        const chunk = this.#storeQueue.shift();
        if (chunk !== undefined) {
          this.#storeQueued -= chunk.byteLength;
          this.#wake();
          yield chunk;
          continue;
        }
        if (this.#ended) {
          complete = true;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wakeSource = resolve;
        });
      }
    } finally {
      if (!complete) {
        this.#abandoned = true;
        this.#wake();
        await this.#reader?.cancel().catch(() => undefined);
      }
    }
  }

  /** Ends the live stream successfully (every byte arrived) once the live reader has taken what is queued. */
  close(): void {
    if (!this.#liveOpen) return;
    this.#liveEnding = true;
    this.#flushLive();
  }

  /**
   * Errors the live stream, so the response carrying it is aborted rather than ending short.
   * A live stream already closed (every byte arrived) stays complete.
   */
  fail(reason: unknown): void {
    this.#wake();
    if (!this.#liveOpen || this.#liveEnding) return;
    const sink = this.#sink;
    const controller = this.#controller;
    this.#dropLive();
    if (sink !== null) sink.abort(reason);
    else {
      try {
        controller?.error(reason);
      } catch {
        // already cancelled
      }
    }
  }

  /**
   * Gives up on the remote body: errors the live stream and cancels the
   * body, whether or not the blob store ever started reading it.
   */
  cancel(reason: unknown): void {
    this.fail(reason);
    if (this.#abandoned) return;
    this.#abandoned = true;
    this.#wake();
    this.#wakeSourceNow();
    if (this.#reader !== null) void this.#reader.cancel(reason).catch(() => undefined);
    else if (!this.#body.locked) void this.#body.cancel(reason).catch(() => undefined);
  }

  /** Drops the live reader (it will never read): the blob write goes on without waiting for it. */
  detach(reason: unknown): void {
    this.fail(reason);
  }

  /** Reads the remote as fast as both queues allow. */
  async #pump(): Promise<void> {
    const reader = this.#body.getReader();
    this.#reader = reader;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.#abandoned) return;
        if (done) {
          this.#checkEnd();
          if (this.#heldForLive !== null) this.#enqueueLive(this.#heldForLive);
          this.#ended = true;
          // Every byte arrived within the limit: the live reader is done now, not after
          // the store's fsync and rename (which only decide whether the cache keeps it).
          this.close();
          return;
        }
        this.#received += value.byteLength;
        // Enforced here, so neither consumer ever sees a byte past the limit.
        if (this.#received > this.#options.maxBytes) throw new ContentTooLargeError(this.#options.maxBytes);
        const declared = this.#options.declaredLength ?? null;
        if (declared !== null && this.#received > declared) {
          throw new RemoteMediaError('bad_response', `Remote body is longer than its declared ${declared} bytes`);
        }
        if (declared !== null && this.#received === declared) this.#heldForLive = value;
        else this.#enqueueLive(value);
        this.#storeQueue.push(value);
        this.#storeQueued += value.byteLength;
        this.#wakeSourceNow();
        if (!this.#windowReached && this.#received >= this.#options.windowBytes) {
          this.#windowReached = true;
          this.#options.onWindow();
        }
        await this.#waitForRoom();
        if (this.#abandoned) return;
      }
    } catch (error) {
      this.#failure = { error };
      if (!this.#abandoned) await reader.cancel(error).catch(() => undefined);
    } finally {
      reader.releaseLock();
      this.#wakeSourceNow();
    }
  }

  /** A body that ends short of its declared length is cut short, not complete. */
  #checkEnd(): void {
    const declared = this.#options.declaredLength ?? null;
    if (declared !== null && this.#received !== declared) {
      throw new RemoteMediaError('bad_response', `Remote body ended after ${this.#received} of its declared ${declared} bytes`);
    }
  }

  #enqueueLive(chunk: Uint8Array): void {
    if (!this.#liveOpen) return;
    this.#liveQueue.push(chunk);
    this.#liveQueued += chunk.byteLength;
    this.#flushLive();
  }

  /** Hands queued chunks to the live reader as far as it takes them, and ends it once all are taken. */
  #flushLive(): void {
    if (!this.#liveOpen) return;
    const queuedBefore = this.#liveQueued;
    const sink = this.#sink;
    if (sink !== null) {
      while (!this.#sinkFull && this.#liveQueue.length > 0) {
        const chunk = this.#liveQueue.shift()!;
        this.#liveQueued -= chunk.byteLength;
        if (!sink.write(chunk)) this.#sinkFull = true;
        if (this.#sink !== sink) return; // gone while writing
      }
    } else if (this.#pullPending && this.#liveQueue.length > 0) {
      const chunk = this.#liveQueue.shift()!;
      this.#liveQueued -= chunk.byteLength;
      this.#pullPending = false;
      try {
        this.#controller?.enqueue(chunk);
      } catch {
        this.#dropLive();
        return;
      }
    }
    if (this.#liveEnding && this.#liveQueue.length === 0) {
      this.#liveOpen = false;
      this.#sink = null;
      if (sink !== null) sink.end();
      else {
        try {
          this.#controller?.close();
        } catch {
          // already cancelled
        }
      }
    }
    if (this.#liveQueued < queuedBefore) this.#wake();
  }

  /** The live reader is gone: nothing more is queued for it, and reading the remote no longer waits for it. */
  #dropLive(): void {
    this.#liveOpen = false;
    this.#sink = null;
    this.#liveQueue.length = 0;
    this.#liveQueued = 0;
    this.#wake();
  }

  /** The live side as a push body (see `offerPushBody`), while it is still open. */
  #takeAsPushBody(): PushBody | undefined {
    if (!this.#liveOpen) return undefined;
    return {
      attach: (sink: BodySink): PushBodyControls => {
        this.#sink = sink;
        this.#flushLive();
        return {
          drained: () => {
            if (this.#sink !== sink) return;
            this.#sinkFull = false;
            this.#flushLive();
          },
          gone: () => {
            if (this.#sink === sink) this.#dropLive();
          },
        };
      },
    };
  }

  async #waitForRoom(): Promise<void> {
    for (;;) {
      if (this.#abandoned) return;
      const liveFull = this.#liveOpen && this.#liveQueued >= this.#options.liveBufferBytes;
      const storeFull = this.#storeQueued >= this.#options.storeBufferBytes;
      if (!liveFull && !storeFull) return;
      await new Promise<void>((resolve) => {
        this.#wakePump = resolve;
      });
    }
  }

  #wake(): void {
    const wake = this.#wakePump;
    this.#wakePump = null;
    wake?.();
  }

  #wakeSourceNow(): void {
    const wake = this.#wakeSource;
    this.#wakeSource = null;
    wake?.();
  }
}
