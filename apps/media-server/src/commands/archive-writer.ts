import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack, type Pack } from 'tar-stream';

/**
 * Writes tar.gz parts one entry at a time, streamed: an entry's bytes go
 * from their source through tar and gzip to the file, with back-pressure,
 * never whole in memory. A part is written as `<name>.partial` and renamed
 * once complete; `abort()` removes every file this writer created, so a
 * failed export leaves nothing that looks like an archive. Given a stream
 * instead of a directory (an HTTP answer), it writes one part into it and
 * `abort()` destroys the stream, so the reader sees a truncated gzip.
 */
export class ArchivePartWriter {
  #tar: Pack | undefined;
  #piping: Promise<void> | undefined;
  #partial: string | undefined;
  #finalName: string | undefined;
  readonly #written: string[] = [];

  readonly #dir: string | Writable;

  constructor(destination: string | Writable) {
    this.#dir = destination;
  }

  /** Whether parts go to files (else into one stream, which takes a single part). */
  get toFiles(): boolean {
    return typeof this.#dir === 'string';
  }

  /** The part files completed so far. */
  get completed(): readonly string[] {
    return this.#written;
  }

  /** Starts a new part (the caller finishes the previous one first). */
  begin(fileName: string): void {
    if (this.#tar !== undefined) throw new Error('a part is still open');
    this.#tar = pack();
    if (typeof this.#dir === 'string') {
      this.#finalName = join(this.#dir, fileName);
      this.#partial = `${this.#finalName}.partial`;
    } else if (this.#piping !== undefined) {
      throw new Error('a stream takes one part');
    }
    // Level 6 (zlib's default): media is mostly compressed already; gzip frames it.
    this.#piping = pipeline(this.#tar, createGzip(), typeof this.#dir === 'string' ? createWriteStream(this.#partial!, { flags: 'wx' }) : this.#dir);
    this.#piping.catch(() => undefined);
  }

  /** Adds a small entry from memory. */
  async addBuffer(name: string, body: Uint8Array, mtime: Date = new Date()): Promise<void> {
    const tar = this.#open();
    await new Promise<void>((resolve, reject) => {
      tar.entry({ name, size: body.length, mode: 0o644, mtime }, Buffer.from(body.buffer, body.byteOffset, body.length), (error) => (error ? reject(error) : resolve()));
    });
  }

  /**
   * Adds an entry of exactly `size` bytes streamed from `source`. Fewer or
   * more bytes make the entry (and so the export) fail: tar needs the size
   * up front.
   */
  async addStream(name: string, size: number, source: AsyncIterable<Uint8Array>, mtime: Date = new Date()): Promise<void> {
    const tar = this.#open();
    let failed: Error | undefined;
    const done = new Promise<void>((resolve, reject) => {
      const entry = tar.entry({ name, size, mode: 0o644, mtime }, (error) => (error ? reject(error) : resolve()));
      void (async () => {
        try {
          let seen = 0;
          for await (const chunk of source) {
            seen += chunk.length;
            if (seen > size) throw new Error(`${name}: more than the ${size} bytes expected`);
            if (!entry.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))) await new Promise<void>((drained) => entry.once('drain', () => drained()));
          }
          if (seen !== size) throw new Error(`${name}: ${seen} bytes where ${size} were expected`);
          entry.end(undefined);
        } catch (error) {
          failed = error as Error;
          entry.destroy(failed);
          reject(failed);
        }
      })();
    });
    await done;
    if (failed !== undefined) throw failed;
  }

  /** Finishes the current part and renames it into place. */
  async finish(): Promise<void> {
    const tar = this.#open();
    tar.finalize();
    await this.#piping;
    this.#tar = undefined;
    if (typeof this.#dir !== 'string') return;
    await rename(this.#partial!, this.#finalName!);
    this.#written.push(this.#finalName!);
  }

  /** Stops and removes the open part and every part written before. */
  async abort(): Promise<void> {
    if (this.#tar !== undefined) {
      this.#tar.destroy();
      await this.#piping?.catch(() => undefined);
      if (this.#partial !== undefined) await rm(this.#partial, { force: true });
      this.#tar = undefined;
    }
    if (typeof this.#dir !== 'string') this.#dir.destroy(new Error('export failed'));
    for (const file of this.#written) await rm(file, { force: true });
    this.#written.length = 0;
  }

  #open(): Pack {
    if (this.#tar === undefined) throw new Error('no part is open');
    return this.#tar;
  }
}
