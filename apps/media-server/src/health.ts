import type { BlobStore, MediaMetadataStore } from '@hsmedia/media-core';
import { Router } from '@koa/router';

/** One dependency's state in a {@link HealthReport}. */
export interface HealthCheck {
  readonly ok: boolean;
  /** Why it failed (an error code or class, never a path or a secret). */
  readonly error?: string;
}

/** What `GET /health` answers: 200 when every check is ok, else 503. */
export interface HealthReport {
  readonly status: 'ok' | 'unavailable';
  readonly checks: { readonly database: HealthCheck; readonly storage: HealthCheck };
}

/** Options for {@link createHealthCheck}. */
export interface HealthCheckOptions {
  readonly metadata: MediaMetadataStore;
  readonly blobs: BlobStore;
  /** A check slower than this fails. Default 5000 ms. */
  readonly timeoutMs?: number;
}

/** Probe bytes written and deleted by the storage check. */
const PROBE = new TextEncoder().encode('hsmedia health probe\n');

async function* probeBytes(): AsyncGenerator<Uint8Array> {
  yield PROBE;
}

function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code;
  return err instanceof Error ? err.name : 'Error';
}

async function within(promise: Promise<unknown>, timeoutMs: number): Promise<HealthCheck> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<HealthCheck>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: 'timeout' }), timeoutMs);
  });
  try {
    return await Promise.race([promise.then((): HealthCheck => ({ ok: true })), timeout]);
  } catch (err) {
    return { ok: false, error: describeError(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A health probe of the two things a media server cannot work without: the
 * metadata database answers a query, and the blob store accepts, and then
 * deletes, a small write (a read-only or vanished media directory fails it).
 */
export function createHealthCheck(options: HealthCheckOptions): () => Promise<HealthReport> {
  const { metadata, blobs } = options;
  const timeoutMs = options.timeoutMs ?? 5_000;
  return async () => {
    const [database, storage] = await Promise.all([
      // A primary-key lookup that matches nothing: a real round trip, no side effect.
      within(metadata.getMedia('health.invalid', 'healthcheck'), timeoutMs),
      within(
        (async () => {
          const stored = await blobs.put(probeBytes(), { maxBytes: PROBE.byteLength });
          // A content-addressed store holds the put's claim until it is released, not deleted.
          if (blobs.release !== undefined) await blobs.release(stored.blobId);
          else await blobs.delete(stored.blobId);
        })(),
        timeoutMs,
      ),
    ]);
    return { status: database.ok && storage.ok ? 'ok' : 'unavailable', checks: { database, storage } };
  };
}

/** The HTTP status of a report: 200 or 503. */
export function healthStatus(report: HealthReport): number {
  return report.status === 'ok' ? 200 : 503;
}

/** `GET /health` on the main listener (also served by the metrics listener). */
export function createHealthRouter(check: () => Promise<HealthReport>): Router {
  const router = new Router();
  router.get('/health', async (ctx) => {
    const report = await check();
    ctx.status = healthStatus(report);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = report;
  });
  return router;
}
