import { createWriteStream, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { MediaServerConfig } from '../config.js';
import { openStores } from '../stores.js';
import { importHsmediaArchive } from './archive-import.js';
import { ArchiveImportReport, type ArchiveProblem } from './archive-report.js';
import { listArchiveParts } from './archive-tar.js';
import { openArchiveTarget } from './archive-target.js';
import type { ArchiveArguments } from './archive-arguments.js';
import { exportMedia } from './export.js';
import { importMmrArchive, MmrArchiveError } from './import-mmr.js';

/**
 * Runs `import-mmr`, `import-archive` and `export` on the configured stores
 * (their command line is read by archive-arguments.ts).
 */

interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly cwd: string;
}

async function runImport(config: MediaServerConfig, args: Extract<ArchiveArguments, { action: 'import-mmr' | 'import-archive' }>, io: CommandIo): Promise<number> {
  const parts = await listArchiveParts(args.parts, io.cwd);
  let reportFile: WriteStream | undefined;
  const onProblem = (problem: ArchiveProblem): void => {
    reportFile?.write(`${JSON.stringify(problem)}\n`);
  };
  if (args.report !== undefined) reportFile = createWriteStream(resolve(io.cwd, args.report));
  const report = new ArchiveImportReport(args.dryRun, onProblem);
  const actor = `hsmedia-server ${args.action}`;
  const open = await openArchiveTarget(config, actor);
  const progress = (line: string): void => void io.stderr.write(`${line}\n`);
  try {
    const options = { dryRun: args.dryRun, report, progress, maxFileBytes: args.maxFileBytes ?? config.maxUploadBytes };
    if (args.action === 'import-mmr') {
      const quarantine = args.mmrDatabase === undefined ? {} : { quarantine: { database: args.mmrDatabase, catalog: open.catalog, actor } };
      await importMmrArchive(parts, open.target, { ...options, serverName: config.serverName, ...quarantine });
    }
    else await importHsmediaArchive(parts, open.target, options);
  } catch (error) {
    if (!(error instanceof MmrArchiveError)) throw error;
    io.stderr.write(`hsmedia-server: ${error.message}; nothing was imported\n`);
    return 1;
  } finally {
    await open.close();
    if (reportFile !== undefined) {
      reportFile.end();
      await finished(reportFile);
    }
  }
  io.stdout.write(report.summary());
  if (args.report !== undefined && report.problems > 0) io.stdout.write(`problems listed in ${resolve(io.cwd, args.report)}\n`);
  return report.problems === 0 ? 0 : 1;
}

/**
 * Runs an archive command on the configured database and media store.
 * Imports exit 0 when every item was imported or present, 1 when any
 * problem was reported (the rest is imported; fix and rerun).
 */
export async function runArchiveCommand(config: MediaServerConfig, args: ArchiveArguments, io: CommandIo): Promise<number> {
  if (args.action !== 'export') return runImport(config, args, io);
  const stores = await openStores(config);
  try {
    const out = resolve(io.cwd, args.out);
    const { files, manifest } = await exportMedia({
      serverName: config.serverName,
      blobs: stores.blobs,
      metadata: stores.metadata,
      scope: args.scope,
      out,
      partSize: args.partSize,
      includeQuarantined: args.includeQuarantined,
      progress: (line) => void io.stderr.write(`${line}\n`),
    });
    const skipped = manifest.skipped.quarantined + manifest.skipped.missing_bytes;
    io.stdout.write(
      `exported ${manifest.items} media (${manifest.bytes} bytes) and ${manifest.thumbnails} thumbnails in ${files.length} part(s) to ${out}` +
        `${skipped === 0 ? '' : `; left out ${manifest.skipped.quarantined} quarantined, ${manifest.skipped.missing_bytes} without their bytes`}\n`,
    );
    return 0;
  } finally {
    await stores.close();
  }
}
