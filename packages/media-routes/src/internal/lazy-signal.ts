import { abortSignalFor } from '@hsmedia/koa-matrix';
import type { Context } from 'koa';

/**
 * Options whose `signal` (`abortSignalFor(ctx)`) is created on first read.
 * A cache hit never reads it, and creating an AbortSignal (with its two
 * listeners) costs more than the rest of the hit; remote fetches, upload
 * waits and disk reads read it and get the same signal as ever. The getter
 * lives on the prototype because an object literal with a getter is slow to
 * create in V8. Never spread these objects: a copy has no signal.
 */
class LazySignalOptions {
  readonly #ctx: Context;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  get signal(): AbortSignal {
    return abortSignalFor(this.#ctx);
  }
}

/** `MediaService.getMedia` / `ThumbnailService.getThumbnail` options with a lazy signal. */
export class LazyMediaLookup extends LazySignalOptions {
  readonly legacy: boolean;
  readonly allowRemote: boolean;
  readonly timeoutMs: number | undefined;

  constructor(ctx: Context, legacy: boolean, allowRemote: boolean, timeoutMs: number | undefined) {
    super(ctx);
    this.legacy = legacy;
    this.allowRemote = allowRemote;
    this.timeoutMs = timeoutMs;
  }
}

/** `sendMedia` options with a lazy signal. */
export class LazySendOptions extends LazySignalOptions {
  readonly fileName: string | undefined;
  readonly cacheControl: string;

  constructor(ctx: Context, cacheControl: string, fileName?: string) {
    super(ctx);
    this.cacheControl = cacheControl;
    this.fileName = fileName;
  }
}
