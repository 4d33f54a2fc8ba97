import cluster, { type Worker } from 'node:cluster';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import { loadOrCreateAdminToken } from './admin-token.js';
import { SupervisorRelay } from './cluster-ipc.js';
import type { MediaServerConfig } from './config.js';
import { createHealthCheck } from './health.js';
import { checkPublishedKey, loadSigningKeyFor } from './homeserver-key.js';
import { createLogger } from './logger.js';
import { startMetricsServer, type MetricsServer } from './metrics.js';
import { openStores, type OpenStores } from './stores.js';
import { SUPERVISOR_MESSAGE, type WorkerMessage } from './worker-messages.js';

/** Options for {@link runSupervisor}. */
export interface SupervisorOptions {
  readonly config: MediaServerConfig;
  /** The config file the workers load (undefined: embedded defaults, resolved against the working directory). */
  readonly configPath: string | undefined;
  readonly stderr: { write(text: string): unknown };
  /** Prints the generated admin token banner (the CLI's). */
  readonly adminTokenBanner: (url: string, userId: string, token: string, tokenPath: string) => string;
  /** Delay before restarting a worker that died; doubles for each death in a row, up to `maxRestartDelayMs`. Default 1 000. */
  readonly restartDelayMs?: number;
  /** Default 30 000. */
  readonly maxRestartDelayMs?: number;
}

/** A worker that stayed up this long is healthy: its next death restarts after `restartDelayMs` again. */
const STABLE_UPTIME_MS = 30_000;
/** On top of `shutdown_timeout`: a worker that has not exited by then is killed. */
const EXIT_GRACE_MS = 10_000;

/** One of the `workers` slots: the process filling it and its restart history. */
interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  readyAt: number | undefined;
  deathsInARow: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * `hsmedia-server start` with `workers` > 1: the main process becomes a
 * supervisor of that many server processes (node:cluster), which share the
 * listen port (each worker accepts from the shared socket: see the scheduling policy below),
 * the database and the media directory exactly like separate instances.
 *
 * Before forking it does what must happen once: the signing key and admin
 * token files, migrations, and (SQLite) removing every staging file left by a
 * crash, which is only safe while no worker writes. It then restarts a
 * worker that dies (after 1 s, doubling per death in a row up to 30 s), serves
 * the summed metrics of all workers on the metrics listener, relays media
 * changes between the workers and holds their shared token buckets when no
 * PostgreSQL or Redis does (`cluster-ipc.ts`), and on
 * SIGTERM/SIGINT asks every worker to drain and waits for all of them. A
 * second signal kills the workers at once. Resolves with the exit code.
 */
export async function runSupervisor(options: SupervisorOptions): Promise<number> {
  const { config, stderr } = options;
  const restartDelayMs = options.restartDelayMs ?? 1_000;
  const maxRestartDelayMs = options.maxRestartDelayMs ?? 30_000;
  const logger = createLogger({ level: config.logLevel }).child({ component: 'supervisor' });

  let stores: OpenStores;
  let metricsServer: MetricsServer | undefined;
  let adminToken: { userId: string; token: string; tokenPath: string; created: boolean } | undefined;
  try {
    // As `startServer` does, once here so that a refusal reaches the CLI's stderr before any fork:
    // beside a homeserver the key is the homeserver's, never created, and must be the one it publishes.
    const { key, created } = await loadSigningKeyFor(config);
    if (created) logger.info({ path: config.signingKeyPath, key_id: key.keyId }, 'created signing key');
    if (config.auth.kind === 'homeserver' && !config.auth.keyPublishedElsewhere) {
      await checkPublishedKey({ homeserverUrl: config.auth.homeserverUrl, serverName: config.serverName, key, keyPath: config.signingKeyPath });
    }
    if (config.auth.kind === 'generated') {
      const { token, created: tokenCreated } = await loadOrCreateAdminToken(config.auth.tokenPath);
      adminToken = { userId: config.auth.userId, token, tokenPath: config.auth.tokenPath, created: tokenCreated };
    }
    stores = await openStores(config, logger.child({ component: 'database' }));
    if (config.database.kind === 'sqlite') {
      const removed = await stores.blobs.cleanupStaging();
      if (removed > 0) logger.info({ count: removed }, 'removed staging files of unfinished uploads');
    }
  } catch (error) {
    stderr.write(`hsmedia-server: cannot start: ${(error as Error).message}\n`);
    return 1;
  }

  const aggregator = new AggregatorRegistry();
  if (config.metrics.enabled) {
    try {
      metricsServer = await startMetricsServer({
        ...config.metrics.listen,
        metrics: { scrape: () => aggregator.clusterMetrics(), registry: aggregator },
        health: createHealthCheck({ metadata: stores.metadata, blobs: stores.blobs }),
        logger,
      });
      logger.info({ url: `${metricsServer.url}/metrics` }, 'metrics listening');
    } catch (error) {
      await stores.close();
      stderr.write(`hsmedia-server: cannot start: metrics listener: ${(error as Error).message}\n`);
      return 1;
    }
  }

  const configPath = options.configPath === undefined ? '' : resolve(options.configPath);
  // Workers accept connections from the shared listen socket themselves (SCHED_NONE) rather than being
  // handed each one by this process (SCHED_RR, Node's default outside Windows): round-robin closes the
  // supervisor's copy of a connection only when the worker acknowledges it, so a worker killed between
  // hand-off and acknowledgement leaves that connection open and unanswered for ever
  // (lib/internal/cluster/round_robin_handle.js). Here a connection is either still in the kernel's accept
  // queue (another worker takes it) or the dead worker's own (the kernel closes it). Node's
  // NODE_CLUSTER_SCHED_POLICY (rr/none) still overrides, e.g. to measure both (bench/workers.mjs).
  if (process.env['NODE_CLUSTER_SCHED_POLICY'] === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./cluster-worker.js', import.meta.url)), args: [] });
  const slots: Slot[] = Array.from({ length: config.workers }, (_, index) => ({
    index,
    worker: undefined,
    readyAt: undefined,
    deathsInARow: 0,
    restartTimer: undefined,
  }));
  const relay = new SupervisorRelay(function* () {
    for (const slot of slots) if (slot.worker !== undefined) yield slot.worker;
  });
  let stopping = false;
  let starting = true;
  let startFailed = false;
  let exitCode = 0;
  let firstUrl: string | undefined;
  let onAllReady: (() => void) | undefined;
  let onAllExited: (() => void) | undefined;
  const allReady = new Promise<void>((resolveReady) => (onAllReady = resolveReady));
  const allExited = new Promise<void>((resolveExited) => (onAllExited = resolveExited));
  const checkAllExited = (): void => {
    if (slots.every((slot) => slot.worker === undefined)) onAllExited?.();
  };

  const fork = (slot: Slot): void => {
    slot.restartTimer = undefined;
    const worker = cluster.fork({ HSMEDIA_CONFIG_PATH: configPath });
    slot.worker = worker;
    slot.readyAt = undefined;
    const pid = worker.process.pid;
    logger.info({ worker: worker.id, slot: slot.index, pid }, 'worker started');
    worker.on('message', (message: WorkerMessage) => {
      if (relay.onMessage(worker, message)) return;
      if (message?.type !== SUPERVISOR_MESSAGE.ready) return;
      slot.readyAt = Date.now();
      firstUrl ??= message.url;
      if (slots.every((each) => each.readyAt !== undefined)) onAllReady?.();
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker === worker) slot.worker = undefined;
      const uptimeMs = slot.readyAt === undefined ? 0 : Date.now() - slot.readyAt;
      if (stopping) {
        if (code !== 0) exitCode = 1;
        logger.info({ worker: worker.id, pid, code, signal }, 'worker stopped');
        checkAllExited();
        return;
      }
      if (starting) {
        // Dying during start-up (port taken, bad database): a restart loop would not help.
        startFailed = true;
        logger.error({ worker: worker.id, pid, code, signal }, 'worker failed to start');
        onAllReady?.();
        return;
      }
      if (uptimeMs >= STABLE_UPTIME_MS) slot.deathsInARow = 0;
      const delayMs = Math.min(maxRestartDelayMs, restartDelayMs * 2 ** slot.deathsInARow);
      slot.deathsInARow += 1;
      logger.error({ worker: worker.id, pid, code, signal, restart_in_ms: delayMs }, 'worker died; restarting it');
      slot.restartTimer = setTimeout(() => fork(slot), delayMs);
    });
  };
  const stopAll = async (how: 'drain' | 'terminate'): Promise<void> => {
    stopping = true;
    for (const slot of slots) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      // A worker still starting has no message handler yet; SIGTERM ends it (or, once it listens, drains it).
      if (how === 'drain' && slot.readyAt !== undefined && slot.worker?.isConnected() === true) {
        slot.worker.send({ type: SUPERVISOR_MESSAGE.shutdown });
      } else slot.worker?.process.kill('SIGTERM');
    }
    checkAllExited();
    const killTimer = setTimeout(() => {
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
    }, config.shutdownTimeoutMs + EXIT_GRACE_MS);
    await allExited;
    clearTimeout(killTimer);
    await metricsServer?.close();
    await stores.close();
    logger.info({ code: exitCode }, 'stopped');
    await new Promise<void>((resolveFlush) => logger.flush(() => resolveFlush()));
  };

  let stopped: Promise<void> | undefined;
  let onSignalled: ((code: number) => void) | undefined;
  const signalled = new Promise<number>((resolveSignalled) => (onSignalled = resolveSignalled));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopped !== undefined) {
      stderr.write(`hsmedia-server: ${signal} again, exiting without draining\n`);
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      onSignalled?.(1);
      return;
    }
    logger.info({ signal }, 'shutting down: draining every worker');
    stopped = stopAll('drain');
    stopped.then(
      () => onSignalled?.(exitCode),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        onSignalled?.(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  for (const slot of slots) fork(slot);
  await Promise.race([allReady, signalled]);
  starting = false;
  if (startFailed && stopped === undefined) {
    await stopAll('terminate');
    stderr.write('hsmedia-server: cannot start: a worker exited during start-up (see its output above)\n');
    return 1;
  }
  if (stopped === undefined) {
    logger.info({ url: firstUrl, workers: config.workers }, 'all workers listening');
    if (adminToken?.created === true && firstUrl !== undefined) {
      stderr.write(options.adminTokenBanner(firstUrl, adminToken.userId, adminToken.token, adminToken.tokenPath));
    }
  }
  return signalled;
}
