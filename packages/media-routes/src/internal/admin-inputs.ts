import { errors } from '@hsmedia/errors';
import { readJsonBody } from '@hsmedia/koa-matrix';
import { isAdminActionName, type AdminActionQuery, type AdminContext } from '@hsmedia/media-core';
import type { Context } from 'koa';
import { nonNegativeIntParam, queryParam } from './query-params.js';

/** Longest reason kept (the audit log's and the blocked-hash list's limit). */
const MAX_REASON_LENGTH = 1000;
/** A JSON body of an admin mutation carries at most a reason. */
const MAX_BODY_BYTES = 16 * 1024;
const MAX_TARGET_LENGTH = 512;

/** A `reason` as kept (string, at most 1000 characters, no NUL), else 400 `M_INVALID_PARAM`. */
export function checkReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.length > MAX_REASON_LENGTH || reason.includes('\0')) {
    throw errors.invalidParam(`reason must be a string of at most ${MAX_REASON_LENGTH} characters`);
  }
  return reason;
}

/**
 * Who acts and why, for the audit log: the requester, and the `reason` from
 * the query string or a JSON body (`{"reason": "..."}`), not both. Synapse's
 * admin endpoints take no body, so one is read only when the request has one.
 * Checked before anything changes, so a bad reason changes nothing.
 */
export async function adminContext(ctx: Context, userId: string, query: URLSearchParams): Promise<AdminContext> {
  const fromQuery = queryParam(query, 'reason');
  const hasBody = ctx.req.headers['transfer-encoding'] !== undefined || (ctx.request.length ?? 0) > 0;
  const body = hasBody ? await readJsonBody(ctx, { maxBytes: MAX_BODY_BYTES, allowEmpty: true }) : {};
  const fromBody = body['reason'];
  if (fromQuery !== undefined && fromBody !== undefined) throw errors.invalidParam('Give reason in the query or the body, not both');
  const raw = fromQuery ?? fromBody;
  return raw === undefined ? { by: userId } : { by: userId, reason: checkReason(raw) };
}

/** `GET /_hsmedia/admin/v1/audit`'s query: `limit` (1..1000, default 100), `from` (an entry ID), `action`, `target`. */
export function auditQuery(query: URLSearchParams, maxPage: number, defaultPage: number): AdminActionQuery {
  const limit = nonNegativeIntParam(query, 'limit', defaultPage);
  if (limit < 1 || limit > maxPage) throw errors.invalidParam(`Query parameter limit must be from 1 to ${maxPage}`);
  const from = nonNegativeIntParam(query, 'from');
  if (from === 0) throw errors.invalidParam('Query parameter from must be a next_token');
  const action = queryParam(query, 'action');
  if (action !== undefined && !isAdminActionName(action)) throw errors.invalidParam('Unknown value for action');
  const target = queryParam(query, 'target');
  if (target !== undefined && (target === '' || target.length > MAX_TARGET_LENGTH || target.includes('\0'))) {
    throw errors.invalidParam(`target must be 1 to ${MAX_TARGET_LENGTH} characters`);
  }
  return {
    limit,
    ...(from === undefined ? {} : { before: from }),
    ...(action === undefined ? {} : { action }),
    ...(target === undefined ? {} : { target }),
  };
}
