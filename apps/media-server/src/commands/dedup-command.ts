import { hasBlobReferenceLedger, type BlobReferenceLedger, type ContentAddressedBlobStore } from '@hsmedia/media-core';
import type { MediaServerConfig } from '../config.js';
import { openStores } from '../stores.js';
import type { DedupArguments } from './dedup-arguments.js';

/** Where the command writes; `isTTY` on stderr turns the plain progress lines into one redrawn bar. */
export interface DedupIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
}

/** Blob IDs a content-addressed store gives: what is already migrated. */
const CONTENT_ID_RE = /^[0-9a-f]{64}$/;
const PAGE = 500;

/** The blobs still named by a random ID (stored before dedup), in ID order, page by page. */
async function* legacyBlobs(ledger: BlobReferenceLedger): AsyncGenerator<{ blobId: string; size: number }> {
  let after = '';
  for (;;) {
    const page = await ledger.listReferencedBlobs(after, PAGE);
    for (const blob of page) if (!CONTENT_ID_RE.test(blob.blobId)) yield blob;
    if (page.length < PAGE) return;
    after = page[page.length - 1]!.blobId;
  }
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** A progress bar redrawn in place on a terminal; a plain line every 5 % (and at the end) otherwise. */
function progressReporter(io: DedupIo, total: number, totalBytes: number): (done: number, bytes: number) => void {
  let lastPercent = -1;
  return (done, bytes) => {
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
    const figures = `${done}/${total} blobs, ${formatBytes(bytes)}/${formatBytes(totalBytes)}`;
    if (io.stderr.isTTY === true) {
      const filled = Math.round(percent / 5);
      io.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(20 - filled)}] ${String(percent).padStart(3)}% ${figures}`);
      if (done === total) io.stderr.write('\n');
    } else if (percent >= lastPercent + 5 || done === total) {
      lastPercent = percent;
      io.stderr.write(`dedup: ${percent}% ${figures}\n`);
    }
  };
}

/**
 * `hsmedia-server dedup`: migrates a store in place to content-addressed blobs.
 * Each blob stored under a random ID is copied to its content key (or found
 * there), its records and thumbnails are pointed at it, and the old object is
 * left to the orphan sweep (or deleted with `--delete-old`). Resumable: a run
 * stopped anywhere leaves every record readable, and the next run takes up the
 * blobs still under random IDs. Needs `dedup.enabled`.
 */
export async function runDedupCommand(config: MediaServerConfig, args: DedupArguments, io: DedupIo): Promise<number> {
  if (!config.dedup.enabled) {
    io.stderr.write('hsmedia-server: dedup needs dedup.enabled: true in the config (servers must store new blobs by content too)\n');
    return 1;
  }
  const stores = await openStores(config);
  try {
    const ledger = stores.metadata;
    const blobs: ContentAddressedBlobStore | undefined = stores.dedup;
    if (blobs === undefined || !hasBlobReferenceLedger(ledger)) throw new Error('the store is not content-addressed');
    let total = 0;
    let totalBytes = 0;
    for await (const blob of legacyBlobs(ledger)) {
      total++;
      totalBytes += blob.size;
    }
    const before = await ledger.blobStorageStats();
    io.stdout.write(`${total} blobs (${formatBytes(totalBytes)}) under random IDs; ${before.blobs} blobs referenced, ${formatBytes(before.storedBytes)} stored\n`);
    if (!args.dryRun && total > 0) {
      const report = progressReporter(io, total, totalBytes);
      let done = 0;
      let bytes = 0;
      let missing = 0;
      report(0, 0);
      for await (const blob of legacyBlobs(ledger)) {
        const adopted = await blobs.adoptBlob(blob.blobId, { deleteOld: args.deleteOld });
        if (adopted?.to === null) missing++;
        done++;
        bytes += blob.size;
        report(Math.min(done, total), bytes);
      }
      const after = await ledger.blobStorageStats();
      io.stdout.write(`moved ${done} blobs; ${after.blobs} blobs referenced, ${formatBytes(after.storedBytes)} stored (was ${formatBytes(before.storedBytes)})\n`);
      if (missing > 0) io.stdout.write(`${missing} blobs were missing from the store; their records were left as they were\n`);
      if (!args.deleteOld) io.stdout.write(`old objects are removed by the orphan sweep after dedup.orphan_grace (or run dedup --sweep then)\n`);
    }
    if (args.sweep) {
      const swept = await blobs.sweepOrphans({ dryRun: args.dryRun });
      io.stdout.write(`orphan sweep${args.dryRun ? ' (dry run)' : ''}: ${swept.unreferenced} unreferenced, ${swept.unknown} unknown, ${swept.removed} removed\n`);
    }
    return 0;
  } finally {
    await stores.close();
  }
}
