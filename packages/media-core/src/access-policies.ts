import { errors } from '@hsmedia/errors';
import type { MediaAccess, MediaAccessPolicy, MediaRecord } from './ports/index.js';

/**
 * Built-in {@link MediaAccessPolicy} implementations and their composition.
 * They are the operator's rules on top of the ones `MediaService` always
 * applies (quarantine, the legacy freeze). The HTTP policy is in
 * `http-access-policy.ts`.
 */

/** Serves everything the built-in rules allow: the default when no policy is configured. */
export const allowAllPolicy: MediaAccessPolicy = Object.freeze({
  check(): void {},
});

/**
 * Server names compare case-insensitively in their host part (DNS names,
 * https://spec.matrix.org/v1.12/appendices/#server-name); the port is
 * digits, so lowercasing the whole name is enough.
 */
export function normaliseServerName(serverName: string): string {
  return serverName.toLowerCase();
}

/** Options of a {@link ServerDenyListPolicy}. */
export interface ServerDenyListPolicyOptions {
  /** Servers whose federation requests for media are refused (403 `M_FORBIDDEN`). */
  readonly denyServingTo: readonly string[];
}

/**
 * Refuses to serve media to listed servers: a federation request
 * (`GET /_matrix/federation/v1/media/download|thumbnail`, https://spec.matrix.org/v1.12/server-server-api/#content-repository)
 * whose X-Matrix-verified origin is on the list gets 403 `M_FORBIDDEN`.
 * Client requests are not affected. Its counterpart, the servers this
 * server refuses to fetch from (Synapse's `prevent_media_downloads_from`),
 * is `MediaServiceOptions.preventDownloadsFrom`: it is checked before a
 * remote fetch, not before serving.
 */
export class ServerDenyListPolicy implements MediaAccessPolicy {
  readonly #denied: ReadonlySet<string>;

  constructor(options: ServerDenyListPolicyOptions) {
    this.#denied = new Set(options.denyServingTo.map(normaliseServerName));
  }

  check(_record: MediaRecord, access: MediaAccess): void {
    if (access.origin !== undefined && this.#denied.has(normaliseServerName(access.origin))) {
      throw errors.forbidden(`This server does not serve media to ${access.origin}`);
    }
  }
}

/**
 * A policy that allows only what every one of `policies` allows, asked in
 * order; the first refusal is the answer. Synchronous answers stay
 * synchronous until a policy answers with a promise.
 */
export function allOfPolicies(policies: readonly MediaAccessPolicy[]): MediaAccessPolicy {
  const list = [...policies];
  if (list.length === 0) return allowAllPolicy;
  if (list.length === 1) return list[0]!;
  return {
    check(record: MediaRecord, access: MediaAccess): void | Promise<void> {
      for (let i = 0; i < list.length; i++) {
        const verdict = list[i]!.check(record, access);
        if (verdict !== undefined) return finishAsync(verdict, list.slice(i + 1), record, access);
      }
    },
  };
}

async function finishAsync(pending: Promise<void>, rest: readonly MediaAccessPolicy[], record: MediaRecord, access: MediaAccess): Promise<void> {
  await pending;
  for (const policy of rest) await policy.check(record, access);
}
