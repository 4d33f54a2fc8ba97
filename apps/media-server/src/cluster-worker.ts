/**
 * Entry point of one worker process of `hsmedia-server start` with
 * `workers` > 1 (forked by the supervisor in `supervisor.ts` through
 * node:cluster). It runs the same server as a single process, except that
 * the supervisor owns the metrics listener (this worker's metrics are read
 * over IPC and summed there) and start-up clean-up (the media directory is
 * shared with sibling workers).
 */
import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { defaultConfig, loadConfigFile, type MediaServerConfig } from './config.js';
import { startServer, type StartedServer } from './server.js';
import { SUPERVISOR_MESSAGE, type SupervisorMessage, type WorkerMessage } from './worker-messages.js';

function send(message: WorkerMessage): void {
  process.send?.(message);
}

async function workerConfig(configPath: string | undefined): Promise<MediaServerConfig> {
  let resolved: MediaServerConfig;
  if (configPath === undefined) resolved = defaultConfig(process.cwd());
  else {
    // The supervisor validated the same file before forking; it can only have changed since.
    const result = await loadConfigFile(configPath);
    if (!result.ok) throw new Error(`invalid configuration: ${result.errors.join('; ')}`);
    resolved = result.config;
  }
  // The supervisor serves the aggregated metrics; a worker binding the same port would fail.
  return { ...resolved, metrics: { ...resolved.metrics, enabled: false } };
}

async function main(): Promise<void> {
  if (!cluster.isWorker) throw new Error('cluster-worker.js is started by the hsmedia-server supervisor');
  const configPath = process.env['HSMEDIA_CONFIG_PATH'] || undefined;
  let started: StartedServer;
  try {
    started = await startServer(await workerConfig(configPath), { sharedMediaDirectory: true });
  } catch (error) {
    process.stderr.write(`hsmedia-server worker ${cluster.worker?.id}: cannot start: ${(error as Error).message}\n`);
    process.exit(1);
  }
  // Answers the supervisor's AggregatorRegistry requests with this server's registry.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([started.operations.metrics.registry]);

  let stopping: Promise<void> | undefined;
  const stop = (reason: string): void => {
    // Idempotent: the supervisor's message and a signal sent to the whole
    // process group (systemd, Ctrl-C) arrive both; neither cuts the drain short.
    stopping ??= (async () => {
      started.logger.info({ reason, worker: cluster.worker?.id }, 'shutting down');
      let code = 0;
      try {
        await started.close();
      } catch (error) {
        started.logger.error({ err: error }, 'shutdown failed');
        code = 1;
      }
      process.exit(code);
    })();
  };
  process.on('message', (message: SupervisorMessage) => {
    if (message?.type === SUPERVISOR_MESSAGE.shutdown) stop('supervisor');
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The supervisor is gone (killed): drain and leave rather than serve unsupervised.
  process.on('disconnect', () => stop('supervisor gone'));
  send({ type: SUPERVISOR_MESSAGE.ready, url: started.url });
}

main().catch((error: unknown) => {
  process.stderr.write(`hsmedia-server worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
