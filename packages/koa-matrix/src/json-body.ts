import { errors } from '@hsmedia/errors';
import type { Context } from 'koa';

/** Options for {@link readJsonBody}. */
export interface ReadJsonBodyOptions {
  /** Refuse (413 `M_TOO_LARGE`) bodies over this many bytes; counted while streaming. */
  readonly maxBytes: number;
  /** Treat an empty body as `{}` (e.g. `POST /_matrix/media/v1/create`). Default false. */
  readonly allowEmpty?: boolean;
}

/**
 * Reads a JSON object request body with a byte limit enforced while it
 * arrives (a lying or absent Content-Length cannot get past it).
 *
 * Errors: 413 `M_TOO_LARGE` over the limit; 400 `M_NOT_JSON` for bytes that
 * are not UTF-8 JSON; 400 `M_BAD_JSON` for JSON that is not an object.
 */
export async function readJsonBody(ctx: Context, options: ReadJsonBodyOptions): Promise<Record<string, unknown>> {
  const { maxBytes } = options;
  const declared = ctx.request.length;
  if (declared !== undefined && declared > maxBytes) {
    throw errors.tooLarge(`Request body exceeds ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  // destroyOnReturn: false — stopping early must not destroy the socket before the 413 is sent.
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      // Stop reading; the connection will not be reused with an unread body.
      ctx.set('Connection', 'close');
      throw errors.tooLarge(`Request body exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  if (total === 0 && options.allowEmpty === true) return {};
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, total));
  } catch {
    throw errors.notJson('Request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw errors.notJson('Request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw errors.badJson('Request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
