/** IPC messages between the supervisor (`supervisor.ts`) and its workers (`cluster-worker.ts`, `cluster-ipc.ts`). */
import type { MediaChange } from '@hsmedia/media-core';

export const SUPERVISOR_MESSAGE = {
  /** Worker → supervisor: listening (the shared port) and serving. */
  ready: 'hsmedia:ready',
  /** Supervisor → worker: drain in-flight requests, close, exit. */
  shutdown: 'hsmedia:shutdown',
  /** Worker → supervisor → every other worker: a media change (no PostgreSQL feed to carry it). */
  change: 'hsmedia:change',
  /** Worker → supervisor: take tokens from a bucket the supervisor holds for every worker. */
  take: 'hsmedia:take',
  /** Supervisor → worker: the answer to one `take`. */
  taken: 'hsmedia:taken',
} as const;

/** A media change relayed between workers. */
export interface ChangeMessage {
  readonly type: typeof SUPERVISOR_MESSAGE.change;
  readonly change: MediaChange;
}

/** One token-bucket draw asked of the supervisor; `id` pairs it with its answer. */
export interface TakeMessage {
  readonly type: typeof SUPERVISOR_MESSAGE.take;
  readonly id: number;
  readonly key: string;
  readonly perSecond: number;
  readonly burst: number;
  readonly cost: number;
}

/** The supervisor's answer to the {@link TakeMessage} with the same `id`. */
export interface TakenMessage {
  readonly type: typeof SUPERVISOR_MESSAGE.taken;
  readonly id: number;
  readonly allowed: boolean;
  readonly retryAfterMs: number;
}

/** Sent by a worker. */
export type WorkerMessage = { readonly type: typeof SUPERVISOR_MESSAGE.ready; readonly url: string } | ChangeMessage | TakeMessage;

/** Sent by the supervisor. */
export type SupervisorMessage = { readonly type: typeof SUPERVISOR_MESSAGE.shutdown } | ChangeMessage | TakenMessage;
