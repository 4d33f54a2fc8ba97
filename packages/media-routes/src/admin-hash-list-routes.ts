import { Readable } from 'node:stream';
import { errors, MatrixError } from '@hsmedia/errors';
import { readJsonBody } from '@hsmedia/koa-matrix';
import {
  BlockedHashCsvReader,
  blockedHashListChunks,
  blockedHashListItem,
  iterateBlockedHashes,
  MAX_BLOCKED_HASH_IMPORT,
  MAX_BLOCKED_HASH_SEARCH,
  parseBlockedHashJson,
  type AdminContext,
  type MediaAdmin,
  type ParsedHashList,
} from '@hsmedia/media-core';
import type { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { checkReason } from './internal/admin-inputs.js';
import { nonNegativeIntParam, queryParam } from './internal/query-params.js';
import { requesterOf, type MediaRouteState, type MediaStateContext, type PathParams } from './route-context.js';

/** Our admin prefix (as `HSMEDIA_ADMIN_PREFIX`; repeated so this module does not import the router that mounts it). */
const PREFIX = '/_hsmedia/admin/v1/blocked_hashes';
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1_000;
/** Default bound of an import body: about 100 000 CSV lines with short reasons. */
export const DEFAULT_MAX_HASH_LIST_BYTES: number = 16 * 1024 * 1024;
const HASH_PARAM_RE = /^[0-9A-Fa-f]{64}$/;

/** What {@link addBlockedHashListRoutes} needs from the admin router. */
export interface BlockedHashListRoutesOptions {
  readonly admin: MediaAdmin;
  /** Authentication and the admin check, run before anything else. */
  readonly guard: readonly Middleware[];
  /** Who acts and why (`reason` from the query or a JSON body). */
  readonly context: (ctx: MediaStateContext & Context) => Promise<AdminContext>;
  /** Largest import body accepted, in bytes. Default {@link DEFAULT_MAX_HASH_LIST_BYTES}. */
  readonly maxImportBytes?: number | undefined;
}

function hashParam(raw: string): string {
  if (!HASH_PARAM_RE.test(raw)) throw errors.invalidParam('Expected a SHA-256 as 64 hex digits');
  return raw.toLowerCase();
}

/** The malformed lines of an import, all at once: 400 with `errors: [{line, error}]`; nothing was imported. */
function malformed(parsed: ParsedHashList, errcode: 'M_BAD_JSON' | 'M_INVALID_PARAM'): MatrixError {
  const count = parsed.errors.length;
  return new MatrixError(errcode, `The hash list has ${count} malformed ${count === 1 ? 'line' : 'lines'}; nothing was imported`, {
    data: { errors: parsed.errors },
  });
}

/** Reads a CSV body into the reader as it arrives, at most `maxBytes`; invalid UTF-8 is 400. */
async function readCsvBody(ctx: Context, maxBytes: number): Promise<ParsedHashList> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > maxBytes) throw errors.tooLarge(`Request body exceeds ${maxBytes} bytes`);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const reader = new BlockedHashCsvReader();
  let total = 0;
  try {
    for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        ctx.set('Connection', 'close');
        throw errors.tooLarge(`Request body exceeds ${maxBytes} bytes`);
      }
      reader.push(decoder.decode(chunk, { stream: true }));
    }
    reader.push(decoder.decode());
  } catch (err) {
    if (err instanceof TypeError) throw errors.invalidParam('The hash list is not valid UTF-8');
    throw err;
  }
  return reader.end();
}

/**
 * The blocked-hash list in the admin API (`/_hsmedia/admin/v1/blocked_hashes`),
 * so operators can share lists between servers:
 *
 * - `GET` lists, searches and exports: `limit`, `from` (the `next_batch` of
 *   the previous page: a hash), `q` (a hash prefix or a reason substring),
 *   `format=json` (default: `{"hashes": [{sha256, reason, blocked_by,
 *   blocked_ts}], "next_batch"?}`, 1 to 1000 entries, default 100) or
 *   `format=csv` (streamed: a header line then every matching entry after
 *   `from`, or at most `limit`).
 * - `POST .../import`: a JSON body of the export shape or a `text/csv` body
 *   (same columns, only `sha256` required), at most `maxImportBytes`. Every
 *   line is checked first: any malformed one answers 400 (`M_BAD_JSON` for
 *   JSON, `M_INVALID_PARAM` for CSV) with `errors: [{line, error}]` and
 *   nothing is imported; otherwise all entries are added in one transaction,
 *   hashes already listed keep their entry: `{imported, already_present}`.
 *   `reason` in the query (or top level of the JSON body).
 * - `PUT .../{sha256}` (`{"reason": ...}`) blocks one hash:
 *   `{already_present}`; `DELETE .../{sha256}` unblocks one: `{}`, 404
 *   `M_NOT_FOUND` when it was not listed.
 *
 * Every mutation is recorded in the audit log (`import_hashes`,
 * `block_hash`, `unblock_hash`) with the acting admin and the reason.
 */
export function addBlockedHashListRoutes(router: Router<MediaRouteState>, options: BlockedHashListRoutesOptions): void {
  const { admin, guard, context } = options;
  const maxImportBytes = options.maxImportBytes ?? DEFAULT_MAX_HASH_LIST_BYTES;

  router.get(PREFIX, ...guard, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    const format = queryParam(query, 'format') ?? 'json';
    if (format !== 'json' && format !== 'csv') throw errors.invalidParam('Query parameter format must be json or csv');
    const limit = nonNegativeIntParam(query, 'limit');
    const maxLimit = format === 'json' ? MAX_PAGE : MAX_BLOCKED_HASH_IMPORT;
    if (limit !== undefined && (limit < 1 || limit > maxLimit)) throw errors.invalidParam(`Query parameter limit must be from 1 to ${maxLimit}`);
    const fromRaw = queryParam(query, 'from');
    const after = fromRaw === undefined ? undefined : hashParam(fromRaw);
    const search = queryParam(query, 'q');
    if (search !== undefined && (search === '' || search.length > MAX_BLOCKED_HASH_SEARCH || search.includes('\0'))) {
      throw errors.invalidParam(`Query parameter q must be 1 to ${MAX_BLOCKED_HASH_SEARCH} characters`);
    }
    if (format === 'json') {
      const pageLimit = limit ?? DEFAULT_PAGE;
      const entries = await admin.listBlockedHashes({ limit: pageLimit, ...(after === undefined ? {} : { after }), ...(search === undefined ? {} : { search }) });
      ctx.body = { hashes: entries.map(blockedHashListItem), ...(entries.length === pageLimit ? { next_batch: entries.at(-1)!.sha256 } : {}) };
      return;
    }
    const entries = iterateBlockedHashes((page) => admin.listBlockedHashes(page), { after, search, limit });
    ctx.type = 'text/csv; charset=utf-8; header=present';
    ctx.set('Content-Disposition', 'attachment; filename="blocked-hashes.csv"');
    ctx.body = Readable.from(blockedHashListChunks(entries, 'csv'));
  });

  router.post(`${PREFIX}/import`, ...guard, async (ctx) => {
    const query = new URLSearchParams(ctx.querystring);
    const by = requesterOf(ctx).userId;
    const queryReason = queryParam(query, 'reason');
    let reason = queryReason === undefined ? undefined : checkReason(queryReason);
    let parsed: ParsedHashList;
    const csv = ctx.is('text/csv') === 'text/csv';
    if (csv) {
      parsed = await readCsvBody(ctx, maxImportBytes);
    } else {
      if (ctx.request.type !== '' && ctx.is('application/json') === false) {
        throw errors.invalidParam('Send the hash list as application/json or text/csv');
      }
      const body = await readJsonBody(ctx, { maxBytes: maxImportBytes });
      if (body['reason'] !== undefined) {
        if (reason !== undefined) throw errors.invalidParam('Give reason in the query or the body, not both');
        reason = checkReason(body['reason']);
      }
      parsed = parseBlockedHashJson(body);
    }
    if (parsed.errors.length > 0) throw malformed(parsed, csv ? 'M_INVALID_PARAM' : 'M_BAD_JSON');
    if (parsed.entries.length > MAX_BLOCKED_HASH_IMPORT) throw errors.invalidParam(`At most ${MAX_BLOCKED_HASH_IMPORT} hashes per import`);
    const result = await admin.importBlockedHashes(parsed.entries, { by, ...(reason === undefined ? {} : { reason }) });
    ctx.body = { imported: result.imported, already_present: result.alreadyPresent };
  });

  router.put<MediaRouteState, PathParams<{ sha256: string }>>(`${PREFIX}/:sha256`, ...guard, async (ctx) => {
    const sha256 = hashParam(ctx.params.sha256);
    const { by, reason } = await context(ctx);
    const added = await admin.blockHash({ sha256, reason: reason ?? null, blockedBy: by ?? null });
    ctx.body = { already_present: !added };
  });

  router.delete<MediaRouteState, PathParams<{ sha256: string }>>(`${PREFIX}/:sha256`, ...guard, async (ctx) => {
    const sha256 = hashParam(ctx.params.sha256);
    if (!(await admin.unblockHash(sha256, await context(ctx)))) throw errors.notFound('This hash is not blocked');
    ctx.body = {};
  });
}
