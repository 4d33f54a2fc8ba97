import { checkAdminAction, checkAdminActionQuery, type AdminAction, type AdminActionName, type AdminActionQuery, type RecordedAdminAction } from '@hsmedia/media-core';
import type { Knex } from 'knex';

interface AuditRow {
  // pg answers bigint columns as strings.
  id: number | string | bigint;
  action: string;
  actor: string | null;
  target: string;
  reason: string | null;
  at: number | string | bigint;
}

const COLUMNS = ['id', 'action', 'actor', 'target', 'reason', 'at'] as const;

function fromRow(row: AuditRow): RecordedAdminAction {
  return { id: Number(row.id), action: row.action as AdminActionName, actor: row.actor, target: row.target, reason: row.reason, at: Number(row.at) };
}

export async function recordAdminAction(knex: Knex, table: string, entry: AdminAction): Promise<RecordedAdminAction> {
  checkAdminAction(entry);
  const [row] = (await knex(table)
    .insert({ action: entry.action, actor: entry.actor, target: entry.target, reason: entry.reason, at: entry.at })
    .returning(COLUMNS)) as AuditRow[];
  return fromRow(row!);
}

/** Newest first by `id` (the primary key, or the `(action, id)` / `(target, id)` indexes when filtered). */
export async function listAdminActions(knex: Knex, table: string, query: AdminActionQuery): Promise<RecordedAdminAction[]> {
  checkAdminActionQuery(query);
  const select = knex(table).select(COLUMNS).orderBy('id', 'desc').limit(query.limit);
  if (query.before !== undefined) select.where('id', '<', query.before);
  if (query.action !== undefined) select.where('action', query.action);
  if (query.target !== undefined) select.where('target', query.target);
  return ((await select) as AuditRow[]).map(fromRow);
}
