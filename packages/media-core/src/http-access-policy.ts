import { ErrCode, MatrixError } from '@hsmedia/errors';
import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import { formatMxcUri } from './ids.js';
import { WeightedLru } from './internal/weighted-lru.js';
import type { MediaAccess, MediaAccessPolicy, MediaRecord } from './ports/index.js';

/** Options of an {@link HttpAccessPolicy}. */
export interface HttpAccessPolicyOptions {
  /** The endpoint asked with `POST` (http or https). */
  readonly url: string;
  /** How long an answer (allow or deny) is reused per requester or origin and media, in ms; 0 asks every time. */
  readonly cacheTtlMs: number;
  /** How long the endpoint may take to answer, body included, in ms. */
  readonly timeoutMs: number;
  /** Sent as `Authorization: Bearer …` when set, so the endpoint can tell this server from anyone else. */
  readonly token?: string | undefined;
  /** Most answers kept. Default 10 000. */
  readonly maxCacheEntries?: number | undefined;
  readonly logger?: Logger | undefined;
  readonly clock?: Clock | undefined;
}

/** A cached answer: null allows; a refusal is rebuilt per request so each has its own stack. */
type Answer = null | { readonly errcode: string; readonly message: string; readonly status: number };

/** Largest answer body read; a policy answer is a few dozen bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** A Matrix error code: `M_…` or a Java-package-style namespaced one (https://spec.matrix.org/v1.12/client-server-api/#standard-error-response). */
const ERRCODE_RE = /^[A-Za-z][A-Za-z0-9_.]{0,99}$/;
const MAX_ERROR_LENGTH = 1000;

/** The policy endpoint could not be asked or gave no usable answer: fail closed, as a gateway error (the request may be retried). */
function policyUnavailable(message: string, status: 502 | 504): MatrixError {
  return new MatrixError(ErrCode.UNKNOWN, message, { httpStatus: status });
}

function refusal(answer: NonNullable<Answer>): MatrixError {
  return new MatrixError(answer.errcode, answer.message, { httpStatus: answer.status });
}

/**
 * Asks an HTTP endpoint whether media may be served: the direction of
 * MSC3911 (media tied to the events and rooms that use it,
 * https://github.com/matrix-org/matrix-spec-proposals/pull/3911) without
 * waiting for it. The endpoint (the homeserver, or an appservice that knows
 * rooms) gets `POST {url}` with
 * `{ "user_id"?, "origin"?, "legacy", "mxc", "purpose" }` and answers 200
 * `{ "allow": true }` or `{ "allow": false, "errcode"?, "error"? }`.
 *
 * - A refusal is 403 with the endpoint's `errcode` (default `M_FORBIDDEN`);
 *   `M_NOT_FOUND` is 404, to hide that the media exists.
 * - Answers are cached for `cacheTtlMs` per (user or origin, mxc, purpose);
 *   concurrent requests for one key share one question (single flight).
 * - Fails closed and never serves without an answer: an endpoint that is
 *   down, answers with a non-2xx status or with anything but the shape above
 *   gives 502 `M_UNKNOWN`; one slower than `timeoutMs` gives 504
 *   `M_UNKNOWN`. Gateway statuses, not 403: the media is not known to be
 *   forbidden, and the client may retry. Failures are not cached.
 */
export class HttpAccessPolicy implements MediaAccessPolicy {
  readonly #url: string;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #answers: WeightedLru<string, Answer>;
  readonly #inFlight = new Map<string, Promise<Answer>>();

  constructor(options: HttpAccessPolicyOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`HttpAccessPolicy: url must be http(s), got ${url.protocol}`);
    for (const [name, value] of [['cacheTtlMs', options.cacheTtlMs], ['timeoutMs', options.timeoutMs]] as const) {
      if (!Number.isSafeInteger(value) || value < (name === 'timeoutMs' ? 1 : 0)) throw new TypeError(`HttpAccessPolicy: invalid ${name} ${value}`);
    }
    this.#url = url.href;
    this.#ttlMs = options.cacheTtlMs;
    this.#timeoutMs = options.timeoutMs;
    this.#headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (options.token !== undefined) this.#headers['authorization'] = `Bearer ${options.token}`;
    this.#logger = options.logger ?? noopLogger;
    this.#clock = options.clock ?? systemClock;
    this.#answers = new WeightedLru(options.cacheTtlMs === 0 ? 0 : (options.maxCacheEntries ?? 10_000));
  }

  check(record: MediaRecord, access: MediaAccess): void | Promise<void> {
    const mxc = formatMxcUri(record.serverName, record.mediaId);
    const subject = access.requester !== undefined ? `u:${access.requester.userId}` : access.origin !== undefined ? `o:${access.origin}` : 'legacy';
    const key = `${subject}\n${mxc}\n${access.purpose}`;
    const cached = this.#answers.get(key, this.#clock.now());
    // A cache hit answers synchronously: no promise on the hot path.
    if (cached === null) return;
    if (cached !== undefined) throw refusal(cached);
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#ask(key, mxc, access);
      this.#inFlight.set(key, pending);
      const forget = (): void => void this.#inFlight.delete(key);
      pending.then(forget, forget);
    }
    return pending.then((answer) => {
      if (answer !== null) throw refusal(answer);
    });
  }

  async #ask(key: string, mxc: string, access: MediaAccess): Promise<Answer> {
    const body = {
      ...(access.requester !== undefined ? { user_id: access.requester.userId } : {}),
      ...(access.origin !== undefined ? { origin: access.origin } : {}),
      legacy: access.legacy,
      mxc,
      purpose: access.purpose,
    };
    const log = { mxc, url: this.#url };
    let text: string;
    let status: number;
    try {
      const response = await fetch(this.#url, {
        method: 'POST',
        headers: this.#headers,
        body: JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.status;
      text = await readCapped(response);
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      this.#logger.warn({ ...log, error: err instanceof Error ? err.message : String(err) }, timedOut ? 'access policy timed out' : 'access policy unreachable');
      throw timedOut
        ? policyUnavailable('The media access policy did not answer in time', 504)
        : policyUnavailable('The media access policy could not be reached', 502);
    }
    const answer = status >= 200 && status < 300 ? parseAnswer(text) : undefined;
    if (answer === undefined) {
      this.#logger.warn({ ...log, status, body: text.slice(0, 200) }, 'access policy gave no usable answer');
      throw policyUnavailable('The media access policy gave no usable answer', 502);
    }
    if (this.#ttlMs > 0) this.#answers.set(key, answer, 1, this.#clock.now() + this.#ttlMs);
    return answer;
  }
}

/** The body as text, refusing one over {@link MAX_ANSWER_BYTES}. */
async function readCapped(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      return '';
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The answer, or undefined when the body is not `{ "allow": boolean, ... }`. */
function parseAnswer(text: string): Answer | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const { allow, errcode, error } = json as Record<string, unknown>;
  if (allow === true) return null;
  if (allow !== false) return undefined;
  // A refusal stays a refusal even when its details are unusable: default code and message.
  const code = typeof errcode === 'string' && ERRCODE_RE.test(errcode) ? errcode : ErrCode.FORBIDDEN;
  const message = typeof error === 'string' && error.length > 0 ? error.slice(0, MAX_ERROR_LENGTH) : 'Access to this media is denied by policy';
  return { errcode: code, message, status: code === ErrCode.NOT_FOUND ? 404 : 403 };
}
