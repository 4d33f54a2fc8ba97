import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  BlockedHashCsvReader,
  blockedHashListChunks,
  hasAdminAuditLog,
  hasBlockedHashes,
  iterateBlockedHashes,
  parseBlockedHashJson,
  toBlockedHashes,
  MAX_BLOCKED_HASH_IMPORT,
  type BlockedHashes,
  type BlockedHashListFormat,
  type MediaMetadataStore,
  type ParsedHashList,
} from '@hsmedia/media-core';
import type { MediaServerConfig } from '../config.js';
import { openStores } from '../stores.js';
import type { HashesArguments } from './hashes-arguments.js';

/** Who the list and the audit log name as acting when the CLI imports. */
export const CLI_ACTOR = 'hsmedia-server hashes import';
/** Largest file `hashes import` reads (the admin API's bound is 16 MiB; a file may be larger). */
const MAX_IMPORT_FILE_BYTES = 64 * 1024 * 1024;

interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly cwd: string;
}

/** Reads a hash-list file as it streams (CSV line by line; JSON whole, within the bound). */
async function readHashList(path: string, format: BlockedHashListFormat): Promise<ParsedHashList> {
  const { size } = await stat(path);
  if (size > MAX_IMPORT_FILE_BYTES) throw new Error(`${path} is larger than ${MAX_IMPORT_FILE_BYTES} bytes`);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let text = '';
  const reader = new BlockedHashCsvReader();
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      const decoded = decoder.decode(chunk, { stream: true });
      if (format === 'csv') reader.push(decoded);
      else text += decoded;
    }
    const last = decoder.decode();
    if (format === 'csv') reader.push(last);
    else text += last;
  } catch (err) {
    if (err instanceof TypeError) throw new Error(`${path} is not valid UTF-8`);
    throw err;
  }
  if (format === 'csv') return reader.end();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { entries: [], errors: [{ line: 1, error: `not valid JSON: ${(err as Error).message}` }] };
  }
  return parseBlockedHashJson(value);
}

/** Writes the export to `out` through a temporary file renamed at the end, so a failure leaves no partial file. */
async function writeExport(list: BlockedHashes, format: BlockedHashListFormat, out: string): Promise<number> {
  const temporary = `${out}.partial-${process.pid}`;
  const file = createWriteStream(temporary, { flags: 'wx' });
  let count = 0;
  try {
    const entries = iterateBlockedHashes((page) => list.listBlockedHashes(page));
    for await (const chunk of blockedHashListChunks(counted(entries, () => count++), format)) {
      if (!file.write(chunk)) await new Promise<void>((resolveDrain) => file.once('drain', resolveDrain));
    }
    file.end();
    await finished(file);
    await rename(temporary, out);
    return count;
  } catch (err) {
    file.destroy();
    await rm(temporary, { force: true });
    throw err;
  }
}

async function* counted<T>(items: AsyncIterable<T>, onItem: () => void): AsyncGenerator<T> {
  for await (const item of items) {
    onItem();
    yield item;
  }
}

function listOf(metadata: MediaMetadataStore): BlockedHashes {
  if (!hasBlockedHashes(metadata)) throw new Error('the configured database keeps no blocked-hash list');
  return metadata;
}

/**
 * Runs `hashes export` (the whole list, JSON or CSV, to `--out` or stdout)
 * or `hashes import FILE` (every line checked first: malformed lines are
 * printed as `FILE:line: error` and nothing is imported; otherwise one
 * transaction, recorded in the audit log; `--dry-run` only counts) on the
 * configured database. Returns the exit code (0, or 1 on failure).
 */
export async function runHashesCommand(config: MediaServerConfig, args: HashesArguments, io: CommandIo): Promise<number> {
  const stores = await openStores(config);
  try {
    const list = listOf(stores.metadata);
    if (args.action === 'export') {
      if (args.out === undefined) {
        for await (const chunk of blockedHashListChunks(iterateBlockedHashes((page) => list.listBlockedHashes(page)), args.format)) io.stdout.write(chunk);
        return 0;
      }
      const out = resolve(io.cwd, args.out);
      const count = await writeExport(list, args.format, out);
      io.stderr.write(`exported ${count} blocked hashes to ${out}\n`);
      return 0;
    }
    const path = resolve(io.cwd, args.file);
    const format = args.format ?? (path.toLowerCase().endsWith('.csv') ? 'csv' : path.toLowerCase().endsWith('.json') ? 'json' : undefined);
    if (format === undefined) {
      io.stderr.write('hsmedia-server: cannot tell the format from the file name: give --format json or --format csv\n');
      return 1;
    }
    const parsed = await readHashList(path, format);
    if (parsed.errors.length > 0) {
      for (const { line, error } of parsed.errors) io.stderr.write(`${args.file}:${line}: ${error}\n`);
      io.stderr.write(`hsmedia-server: ${parsed.errors.length} malformed line(s); nothing was imported\n`);
      return 1;
    }
    if (parsed.entries.length > MAX_BLOCKED_HASH_IMPORT) {
      io.stderr.write(`hsmedia-server: at most ${MAX_BLOCKED_HASH_IMPORT} hashes per import; split the file\n`);
      return 1;
    }
    const entries = toBlockedHashes(parsed.entries, { blockedBy: CLI_ACTOR, blockedAt: Date.now() });
    const unique = [...new Set(entries.map((entry) => entry.sha256))];
    if (args.dryRun) {
      let present = 0;
      for (const sha256 of unique) if (await list.isHashBlocked(sha256)) present++;
      io.stdout.write(`dry run: ${unique.length - present} would be imported, ${present} already present\n`);
      return 0;
    }
    const imported = await list.blockHashes(entries);
    if (hasAdminAuditLog(stores.metadata)) {
      await stores.metadata.recordAdminAction({ action: 'import_hashes', actor: CLI_ACTOR, target: 'blocked_hashes', reason: args.reason ?? null, at: Date.now() });
    }
    io.stdout.write(`imported ${imported}, already present ${unique.length - imported}\n`);
    return 0;
  } finally {
    await stores.close();
  }
}
