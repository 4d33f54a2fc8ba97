import { checkAdminAction, checkAdminActionQuery, type AdminAction, type AdminActionQuery, type RecordedAdminAction } from '../ports/index.js';

/**
 * The admin audit log of `MemoryMetadataStore`, with the same argument checks
 * as the SQL stores, so a caller that passes here passes there.
 */
export class AuditTable {
  readonly #entries: RecordedAdminAction[] = [];

  record(entry: AdminAction): RecordedAdminAction {
    checkAdminAction(entry);
    const recorded = { id: this.#entries.length + 1, action: entry.action, actor: entry.actor, target: entry.target, reason: entry.reason, at: entry.at };
    this.#entries.push(recorded);
    return { ...recorded };
  }

  list(query: AdminActionQuery): RecordedAdminAction[] {
    checkAdminActionQuery(query);
    const page: RecordedAdminAction[] = [];
    for (let index = this.#entries.length - 1; index >= 0 && page.length < query.limit; index--) {
      const entry = this.#entries[index]!;
      if (query.before !== undefined && entry.id >= query.before) continue;
      if (query.action !== undefined && entry.action !== query.action) continue;
      if (query.target !== undefined && entry.target !== query.target) continue;
      page.push({ ...entry });
    }
    return page;
  }
}
