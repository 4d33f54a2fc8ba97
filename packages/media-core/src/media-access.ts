import { errors } from '@hsmedia/errors';
import type { Requester } from '@hsmedia/runtime';
import { parseMxcUri } from './ids.js';
import type { MediaAccessPolicy, MediaRecord } from './ports/index.js';

/** Options of {@link MediaAccessRules}. */
export interface MediaAccessRulesOptions {
  /** Media stored while the legacy endpoints are frozen is never served on them. */
  readonly freezeLegacy: boolean;
  /** `mxc://` URIs served on legacy requests even when stored while frozen (SSO identity-provider icons). */
  readonly freezeExemptions?: readonly string[] | undefined;
  /** The operator's policy, asked after the built-in rules. */
  readonly policy?: MediaAccessPolicy | undefined;
  /** Whether a content hash is on the blocked-hash list (cached by the catalog); none: no list. */
  readonly isHashBlocked?: ((sha256: string) => boolean | Promise<boolean>) | undefined;
}

/** Who asks, as a lookup carries it. */
export interface AccessRequest {
  readonly legacy?: boolean | undefined;
  readonly requester?: Requester | undefined;
  readonly origin?: string | undefined;
}

/**
 * The check before any byte is served: quarantined and infected media is not served
 * (404, as Synapse answers), nor media without a clean virus scan (504 `M_NOT_YET_UPLOADED`), nor media whose bytes are on the blocked-hash
 * list unless it is protected (the list is quarantine by content), media stored while the legacy endpoints were
 * frozen is not served on them (spec v1.11, "Content repository": the
 * freeze; SSO icons exempt), then the operator's {@link MediaAccessPolicy}.
 */
export class MediaAccessRules {
  readonly #freezeLegacy: boolean;
  readonly #exemptions: ReadonlySet<string>;
  readonly #policy: MediaAccessPolicy | undefined;
  readonly #isHashBlocked: ((sha256: string) => boolean | Promise<boolean>) | undefined;

  constructor(options: MediaAccessRulesOptions) {
    this.#freezeLegacy = options.freezeLegacy;
    const exemptions = new Set<string>();
    for (const uri of options.freezeExemptions ?? []) {
      const mxc = parseMxcUri(uri);
      if (mxc === null) throw new TypeError(`MediaService: freezeExemptions holds an invalid mxc URI ${JSON.stringify(uri)}`);
      exemptions.add(`${mxc.serverName}/${mxc.mediaId}`);
    }
    this.#exemptions = exemptions;
    this.#policy = options.policy;
    this.#isHashBlocked = options.isHashBlocked;
  }

  get freezeLegacy(): boolean {
    return this.#freezeLegacy;
  }

  /** Throws the `MatrixError` that refuses `record` to this request; a synchronous answer when no policy must be asked. */
  check(record: MediaRecord, request: AccessRequest, purpose: 'download' | 'thumbnail'): void | Promise<void> {
    if (record.quarantined || record.scanState === 'infected') throw errors.notFound('Media not found');
    // Never served before a clean verdict: a waiting reader was given its timeout_ms already.
    if (record.scanState !== undefined && record.scanState !== 'clean') throw errors.notYetUploaded();
    const legacy = request.legacy === true;
    if (legacy && record.authenticated && !this.#exemptions.has(`${record.serverName}/${record.mediaId}`)) {
      throw errors.notFound('Media not found');
    }
    // Protected media is exempt from quarantine, by hash too (Synapse's `safe_from_quarantine`).
    const blocked = record.sha256 === null || record.protected === true ? false : (this.#isHashBlocked?.(record.sha256) ?? false);
    if (blocked === true) throw errors.notFound('Media not found');
    if (blocked === false) return this.#askPolicy(record, legacy, request, purpose);
    return blocked.then((isBlocked) => {
      if (isBlocked) throw errors.notFound('Media not found');
      return this.#askPolicy(record, legacy, request, purpose);
    });
  }

  #askPolicy(record: MediaRecord, legacy: boolean, request: AccessRequest, purpose: 'download' | 'thumbnail'): void | Promise<void> {
    if (this.#policy === undefined) return;
    return this.#policy.check(record, { requester: request.requester, origin: request.origin, legacy, purpose });
  }
}
