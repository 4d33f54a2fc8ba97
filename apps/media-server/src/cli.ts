#!/usr/bin/env node
/**
 * `hsmedia-server`: a thin wrapper around {@link runCli}. Run with
 * `--help` for the commands.
 */
import { parseCommandLine, runCli } from './cli-main.js';

/**
 * Bulk imports keep many fsyncs in flight (every copied file's, then its
 * directories'), and the disk writes faster the more it has queued: with
 * libuv's default of 4 threads an import of 10,000 files took ~1.5x as long
 * (docs/migrate-from-synapse.md "Speed"). The size is read when the thread
 * pool first starts, which is after this (nothing before `runCli` does
 * asynchronous file or DNS work); an operator's own setting wins.
 */
const IMPORT_THREAD_POOL_SIZE = '16';
const BULK_IMPORTS: ReadonlySet<string> = new Set(['import-synapse', 'import-mmr', 'import-archive']);

const argv = process.argv.slice(2);
const invocation = parseCommandLine(argv);
if (invocation.kind === 'run' && BULK_IMPORTS.has(invocation.command) && process.env.UV_THREADPOOL_SIZE === undefined) {
  process.env.UV_THREADPOOL_SIZE = IMPORT_THREAD_POOL_SIZE;
}

runCli(argv, { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() }).then(
  (code) => {
    // Let stdout/stderr drain (pipes are asynchronous) before leaving.
    process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    process.stderr.write(`hsmedia-server: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
