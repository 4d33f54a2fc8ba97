#!/usr/bin/env node
/**
 * `hsmedia-server`: a thin wrapper around {@link runCli}. Run with
 * `--help` for the commands.
 */
import { runCli } from './cli-main.js';

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() }).then(
  (code) => {
    // Let stdout/stderr drain (pipes are asynchronous) before leaving.
    process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    process.stderr.write(`hsmedia-server: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
