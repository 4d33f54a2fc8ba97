/** IPC messages between the supervisor (`supervisor.ts`) and its workers (`cluster-worker.ts`). */
export const SUPERVISOR_MESSAGE = {
  /** Worker → supervisor: listening (the shared port) and serving. */
  ready: 'hsmedia:ready',
  /** Supervisor → worker: drain in-flight requests, close, exit. */
  shutdown: 'hsmedia:shutdown',
} as const;

/** Sent by a worker. */
export type WorkerMessage = { readonly type: typeof SUPERVISOR_MESSAGE.ready; readonly url: string };

/** Sent by the supervisor. */
export type SupervisorMessage = { readonly type: typeof SUPERVISOR_MESSAGE.shutdown };
