import type { Clock, Logger } from '@hsmedia/runtime';
import type { AdminAction, AdminActionName, AdminAuditLog } from './ports/index.js';

/** Who acts and why: kept in the audit log and with the content hashes a quarantine blocks. */
export interface AdminContext {
  /** The acting admin (a Matrix user ID) or tool. */
  readonly by?: string | undefined;
  readonly reason?: string | undefined;
}

/**
 * What `MediaAdmin` records its mutations through: builds the entry (time
 * from the catalog's clock), appends it to the log when there is one and
 * tells `onAction` (metrics). Recorded after the change succeeded, so the
 * log lists what happened; a failure to record is logged and thrown, so the
 * caller learns that the action went unrecorded.
 */
export class AdminAuditTrail {
  readonly log: AdminAuditLog | undefined;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #onAction: ((entry: AdminAction) => void) | undefined;

  constructor(log: AdminAuditLog | undefined, clock: Clock, logger: Logger, onAction?: (entry: AdminAction) => void) {
    this.log = log;
    this.#clock = clock;
    this.#logger = logger;
    this.#onAction = onAction;
  }

  async record(action: AdminActionName, target: string, context: AdminContext): Promise<void> {
    const entry: AdminAction = { action, actor: context.by ?? null, target, reason: context.reason ?? null, at: this.#clock.now() };
    try {
      await this.log?.recordAdminAction(entry);
    } catch (err) {
      this.#logger.error({ err, action, target }, 'admin action not recorded in the audit log');
      throw err;
    }
    this.#onAction?.(entry);
  }
}
