import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { MediaImports } from '@hsmedia/media-core';
import { SynapseImporter, SynapseMediaSource, type SynapseDatabaseLocation, type SynapseImportEntry, type SynapseImportTally } from '@hsmedia/synapse-import';
import type { MediaServerConfig } from '../config.js';
import { openStores } from '../stores.js';
import { importCatalog } from './import-catalog.js';
import type { ImportSynapseArguments } from './import-synapse-arguments.js';

/** Who the blocked-hash list names for hashes of imported quarantined media. */
export const IMPORT_SYNAPSE_ACTOR = 'hsmedia-server import-synapse';

interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
  readonly cwd: string;
}

/** `postgres://…` and `postgresql://…` are PostgreSQL; anything else is a SQLite file. */
export function databaseLocationOf(database: string, cwd: string): SynapseDatabaseLocation {
  return /^postgres(ql)?:\/\//i.test(database) ? { postgres: database } : { sqlite: resolve(cwd, database) };
}

/** The saved resume point, valid only for the same source. */
interface ImportState {
  readonly database: string;
  readonly mediaStore: string;
  readonly cursor: string;
}

async function readState(path: string, database: string, mediaStore: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const state = JSON.parse(text) as Partial<ImportState>;
  return state.database === database && state.mediaStore === mediaStore && typeof state.cursor === 'string' ? state.cursor : null;
}

/** Written to a temporary file and renamed: a kill mid-write keeps the previous state. */
async function writeState(path: string, state: ImportState): Promise<void> {
  await writeFile(`${path}.tmp`, JSON.stringify(state));
  await rename(`${path}.tmp`, path);
}

/** Progress on a terminal: a bar; otherwise a line every `every` items. */
function progressReporter(io: CommandIo, total: number): { tick(entry: SynapseImportEntry): void; stop(): void } {
  let items = 0;
  let bytes = 0;
  const count = (entry: SynapseImportEntry): void => {
    if (entry.thumbnail !== undefined) return;
    items++;
    bytes += entry.bytes;
  };
  if (io.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      { format: 'import-synapse [{bar}] {percentage}% | {value}/{total} media | {mib} MiB | ETA {eta_formatted}', stream: io.stderr as NodeJS.WritableStream, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { mib: '0.0' });
    return {
      tick(entry) {
        count(entry);
        if (entry.thumbnail === undefined) bar.update(items, { mib: (bytes / 1048576).toFixed(1) });
      },
      stop: () => bar.stop(),
    };
  }
  const every = Math.max(100, Math.ceil(total / 20));
  return {
    tick(entry) {
      count(entry);
      if (entry.thumbnail === undefined && items % every === 0) io.stderr.write(`import-synapse: ${items}/${total} media, ${bytes} bytes\n`);
    },
    stop: () => void io.stderr.write(`import-synapse: ${items}/${total} media, ${bytes} bytes\n`),
  };
}

function summary(tally: SynapseImportTally, dryRun: boolean): string {
  const line = (name: string, counts: SynapseImportTally['media']): string =>
    `${name}: ${Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([outcome, n]) => `${outcome} ${n}`)
      .join(', ') || 'none'}`;
  return `${line('media', tally.media)}\n${line('thumbnails', tally.thumbnails)}\n${dryRun ? 'would import' : 'imported'} ${tally.bytes} bytes\n`;
}

/**
 * `hsmedia-server import-synapse`: imports Synapse's media (database and
 * `media_store`) into the configured stores with the same media IDs. Exit 0
 * when every item was imported or already here, 1 when some were skipped
 * for a problem (listed in the report) or the run stopped (rerun to continue).
 */
export async function runImportSynapse(config: MediaServerConfig, args: ImportSynapseArguments, io: CommandIo): Promise<number> {
  const source = await SynapseMediaSource.open({ database: databaseLocationOf(args.database, io.cwd), mediaStorePath: resolve(io.cwd, args.mediaStore) });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const reportPath = resolve(io.cwd, args.report ?? `import-synapse-${stamp}.jsonl`);
  const statePath = resolve(io.cwd, args.state ?? 'import-synapse.state.json');
  const stateKey = { database: args.database, mediaStore: resolve(io.cwd, args.mediaStore) };
  let stores: Awaited<ReturnType<typeof openStores>> | undefined;
  let report: WriteStream | undefined;
  try {
    const stats = await source.stats();
    io.stdout.write(
      `Synapse: ${stats.local.count} local media (${stats.local.bytes} bytes, ${stats.pending} never uploaded), ${stats.remote.count} remote (${stats.remote.bytes} bytes), ` +
        `${stats.localThumbnails.count + stats.remoteThumbnails.count} thumbnails (${stats.localThumbnails.bytes + stats.remoteThumbnails.bytes} bytes)\n`,
    );
    stores = await openStores(config);
    const catalog = importCatalog(config, stores);
    const importer = new SynapseImporter({
      source,
      imports: new MediaImports({ catalog, actor: IMPORT_SYNAPSE_ACTOR, linkFiles: args.link }),
      localServerName: config.serverName,
      dryRun: args.dryRun,
      ...(args.concurrency === undefined ? {} : { concurrency: args.concurrency }),
    });
    const cursor = args.restart || args.dryRun ? null : await readState(statePath, stateKey.database, stateKey.mediaStore);
    if (cursor !== null) io.stdout.write(`continuing after the last saved item (${statePath}; --restart walks everything again)\n`);
    report = createWriteStream(reportPath, { flags: 'w' });
    const out = report;
    const progress = progressReporter(io, stats.local.count + stats.remote.count);
    let saving: Promise<void> = Promise.resolve();
    let lastSaved = 0;
    let latest: string | null = null;
    const save = (force: boolean): void => {
      if (latest === null || args.dryRun || (!force && Date.now() - lastSaved < 1000)) return;
      lastSaved = Date.now();
      const state = { ...stateKey, cursor: latest };
      saving = saving.then(() => writeState(statePath, state));
    };
    let tally: SynapseImportTally;
    try {
      tally = await importer.run({
        cursor,
        onEntry: (entry) => {
          out.write(`${JSON.stringify(entry)}\n`);
          progress.tick(entry);
        },
        onCursor: (next) => {
          latest = next;
          save(false);
        },
      });
    } catch (err) {
      progress.stop();
      save(true);
      await saving;
      io.stderr.write(`hsmedia-server: import-synapse stopped: ${(err as Error).message}\nNothing is half-imported; run the same command again to continue (report: ${reportPath}).\n`);
      return 1;
    }
    progress.stop();
    save(true);
    await saving;
    io.stdout.write(summary(tally, args.dryRun));
    io.stdout.write(`report: ${reportPath}\n`);
    const problems = (['missing-file', 'size-mismatch', 'hash-mismatch', 'unsafe-path', 'invalid', 'refused', 'read-error'] as const).reduce(
      (n, outcome) => n + tally.media[outcome] + tally.thumbnails[outcome],
      0,
    );
    if (problems > 0) io.stderr.write(`import-synapse: ${problems} item(s) skipped for a problem, listed in the report\n`);
    return problems > 0 ? 1 : 0;
  } finally {
    if (report !== undefined) {
      report.end();
      await finished(report).catch(() => {});
    }
    await source.close().catch(() => {});
    await stores?.close();
  }
}
