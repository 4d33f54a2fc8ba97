import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
// Only the command line is read at start-up: these parsers import nothing heavy, so `--help` and a usage
// error (exit 2) load no store, schema or driver. What a command runs is loaded by `await import()` once
// it is chosen: an import-synapse does not pay for the archive code, the PostgreSQL copy or the server.
import { copyArgumentsOf, type CopyArguments } from './commands/sqlite-to-postgres-arguments.js';
import { hashesArgumentsOf, type HashesArguments } from './commands/hashes-arguments.js';
import { ARCHIVE_COMMANDS, archiveArgumentsOf, type ArchiveArguments } from './commands/archive-arguments.js';
import { importSynapseArgumentsOf, type ImportSynapseArguments } from './commands/import-synapse-arguments.js';
import { dedupArgumentsOf, type DedupArguments } from './commands/dedup-arguments.js';
import type { MediaServerConfig } from './config.js';
import type { StartedServer } from './server.js';

/** Where the CLI writes; tests pass in-memory sinks. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** The directory the embedded defaults resolve `./data` against. */
  readonly cwd: string;
}

/** Exit codes: 0 ok, 1 bad config or failed start, 2 bad command line. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

const USAGE = `Usage: hsmedia-server [command] [--config FILE]

Commands:
  start           Start the media server (the default).
  check-config    Validate the config and print a summary, then exit.
  migrate         Create or upgrade the database schema, then exit.
  migrate-sqlite-to-postgres --from SQLITE_FILE [--to POSTGRES_URL] [--schema NAME] [--batch-size N]
                  Copy all metadata from SQLite to PostgreSQL (idempotent; counts
                  verified). --to and --schema default to database.postgres of
                  --config. Blobs stay in the media directory.
  hashes export [--format json|csv] [--out FILE]
                  Write the blocked-hash list (default JSON, to stdout).
  hashes import FILE [--format json|csv] [--dry-run] [--reason TEXT]
                  Add a shared hash list (format from the file name unless
                  given). Every line is checked first: any malformed line is
                  reported and nothing is imported. Listed hashes are kept.
  import-mmr PART... [--dry-run] [--report FILE] [--max-file-size SIZE]
             [--mmr-database POSTGRES_URL]
                  Import matrix-media-repo export archives (the .tgz parts
                  or directories of them). Idempotent; see docs/migrate-from-mmr.md.
                  --mmr-database reads matrix-media-repo's database (read-only)
                  to keep its quarantine, which its exports leave out.
  import-archive PART... [--dry-run] [--report FILE] [--max-file-size SIZE]
                  Import an archive written by export (docs/export-format.md).
  export (--user USER_ID | --server [--include-remote]) --out DIR
         [--part-size SIZE] [--include-quarantined]
                  Write one user's or the whole server's media as tar.gz parts.
  import-synapse --database SQLITE_FILE|POSTGRES_URL --media-store DIR [--dry-run]
                 [--report FILE] [--state FILE] [--restart] [--concurrency N] [--link]
                  Import Synapse's media (read-only) with the same media IDs:
                  files streamed into the configured store, hashed and
                  size-checked; quarantine kept. Idempotent and resumable (the
                  cursor is kept in --state, default ./import-synapse.state.json);
                  every item is listed in the --report file (JSON lines).
                  --link hard-links files into a filesystem store on the
                  same filesystem instead of copying them.
  dedup [--dry-run] [--delete-old] [--sweep]
                  Move blobs stored before dedup.enabled to content addressing
                  in place (resumable; a progress bar on a terminal). --dry-run
                  counts blobs and bytes; old objects go to the orphan sweep
                  after dedup.orphan_grace unless --delete-old; --sweep runs the
                  orphan sweep afterwards.
  generate-key    Create the signing key file if missing; print its key ID and public key.
  config-schema   Print the JSON Schema of the config file.

Options:
  -c, --config FILE   YAML config file. Without it: embedded defaults
                      (SQLite and files under ./data, server name localhost,
                      listening on 127.0.0.1:8008).
  --synapse-config FILE
                      Synapse's homeserver.yaml: server_name, signing_key_path,
                      max_upload_size, URL previews and media_store_path are
                      read from it unless the config file sets them
                      (overrides synapse.config_path).
  -h, --help          Show this help.
  -v, --version       Show the version.
`;

const COMMANDS = ['start', 'check-config', 'migrate', 'migrate-sqlite-to-postgres', 'hashes', 'import-synapse', 'import-mmr', 'import-archive', 'export', 'dedup', 'generate-key', 'config-schema'] as const;
type Command = (typeof COMMANDS)[number];

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}

/** A parsed command line, or a usage error message. */
export type CliInvocation =
  | {
      readonly kind: 'run';
      readonly command: Command;
      readonly configPath: string | undefined;
      /** `--synapse-config`, as given. */
      readonly synapseConfigPath?: string;
      /** `--from`, `--to`, `--schema`, `--batch-size` of migrate-sqlite-to-postgres. */
      readonly copy?: CopyArguments;
      /** The action and options of `hashes`. */
      readonly hashes?: HashesArguments;
      /** The arguments of `import-mmr`, `import-archive` and `export`. */
      readonly archive?: ArchiveArguments;
      /** The options of `import-synapse`. */
      readonly importSynapse?: ImportSynapseArguments;
      /** The options of `dedup`. */
      readonly dedup?: DedupArguments;
    }
  | { readonly kind: 'help' | 'version' }
  | { readonly kind: 'usage-error'; readonly message: string };

/** Parses argv (without `node` and the script). */
export function parseCommandLine(argv: readonly string[]): CliInvocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        'synapse-config': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        from: { type: 'string' },
        to: { type: 'string' },
        schema: { type: 'string' },
        'batch-size': { type: 'string' },
        format: { type: 'string' },
        out: { type: 'string' },
        'dry-run': { type: 'boolean' },
        reason: { type: 'string' },
        report: { type: 'string' },
        'max-file-size': { type: 'string' },
        'mmr-database': { type: 'string' },
        user: { type: 'string' },
        server: { type: 'boolean' },
        'part-size': { type: 'string' },
        'include-remote': { type: 'boolean' },
        'include-quarantined': { type: 'boolean' },
        database: { type: 'string' },
        'media-store': { type: 'string' },
        state: { type: 'string' },
        restart: { type: 'boolean' },
        concurrency: { type: 'string' },
        link: { type: 'boolean' },
        'delete-old': { type: 'boolean' },
        sweep: { type: 'boolean' },
      },
    });
  } catch (error) {
    return { kind: 'usage-error', message: (error as Error).message };
  }
  if (parsed.values.help === true) return { kind: 'help' };
  if (parsed.values.version === true) return { kind: 'version' };
  const archiveCommand = ARCHIVE_COMMANDS.includes(parsed.positionals[0] ?? '');
  if (parsed.positionals.length > 1 && parsed.positionals[0] !== 'hashes' && !archiveCommand) {
    return { kind: 'usage-error', message: `Unexpected argument: ${parsed.positionals[1]}` };
  }
  const name = parsed.positionals[0] ?? 'start';
  if (!(COMMANDS as readonly string[]).includes(name)) {
    return { kind: 'usage-error', message: `Unknown command: ${name}` };
  }
  if (parsed.values.config === '') return { kind: 'usage-error', message: '--config needs a file name' };
  const synapseConfig = parsed.values['synapse-config'];
  if (synapseConfig === '') return { kind: 'usage-error', message: '--synapse-config needs a file name' };
  const copy = copyArgumentsOf(name, parsed.values);
  if (typeof copy === 'string') return { kind: 'usage-error', message: copy };
  // --dry-run (and --out) are shared by hashes with the archive commands import-synapse and dedup.
  const hashValues = archiveCommand || name === 'import-synapse' || name === 'dedup' ? { ...parsed.values, 'dry-run': undefined, out: undefined } : parsed.values;
  const hashes = hashesArgumentsOf(name, parsed.positionals.slice(1), hashValues);
  if (typeof hashes === 'string') return { kind: 'usage-error', message: hashes };
  // --report belongs to the archive imports and to import-synapse alike: each is checked without the other's.
  const { report: _report, ...withoutReport } = parsed.values;
  const archive = archiveArgumentsOf(name, parsed.positionals.slice(1), name === 'import-synapse' ? withoutReport : parsed.values);
  if (typeof archive === 'string') return { kind: 'usage-error', message: archive };
  const importSynapse = importSynapseArgumentsOf(name, archiveCommand ? withoutReport : parsed.values);
  if (typeof importSynapse === 'string') return { kind: 'usage-error', message: importSynapse };
  const dedup = dedupArgumentsOf(name, parsed.values);
  if (typeof dedup === 'string') return { kind: 'usage-error', message: dedup };
  return {
    kind: 'run',
    command: name as Command,
    configPath: parsed.values.config,
    ...(synapseConfig === undefined ? {} : { synapseConfigPath: synapseConfig }),
    ...(copy === undefined ? {} : { copy }),
    ...(hashes === undefined ? {} : { hashes }),
    ...(archive === undefined ? {} : { archive }),
    ...(importSynapse === undefined ? {} : { importSynapse }),
    ...(dedup === undefined ? {} : { dedup }),
  };
}

async function resolveConfig(configPath: string | undefined, io: CliIo, synapseConfigPath?: string): Promise<MediaServerConfig | null> {
  // The config schema (zod) and what its sections name are most of the start-up time of a command.
  const { defaultConfig, loadConfigFile, parseConfig } = await import('./config.js');
  const options = synapseConfigPath === undefined ? {} : { synapseConfigPath: resolve(io.cwd, synapseConfigPath) };
  if (configPath === undefined && synapseConfigPath === undefined) return defaultConfig(io.cwd);
  const result = configPath === undefined ? parseConfig({}, io.cwd, options) : await loadConfigFile(configPath, options);
  if (result.ok) return result.config;
  io.stderr.write(`hsmedia-server: invalid configuration (${result.errors.length} problem${result.errors.length === 1 ? '' : 's'}):\n`);
  for (const line of result.errors) io.stderr.write(`  ${line}\n`);
  return null;
}

/**
 * Runs a command that finishes by itself (everything but `start`, whose
 * process lives until a signal). Returns the exit code.
 */
export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const invocation = parseCommandLine(argv);
  switch (invocation.kind) {
    case 'help':
      io.stdout.write(USAGE);
      return EXIT.OK;
    case 'version':
      io.stdout.write(`${version()}\n`);
      return EXIT.OK;
    case 'usage-error':
      io.stderr.write(`hsmedia-server: ${invocation.message}\n\n${USAGE}`);
      return EXIT.USAGE;
    case 'run':
      break;
  }
  if (invocation.command === 'config-schema') {
    const { configJsonSchema } = await import('./config.js');
    io.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return EXIT.OK;
  }
  const config = await resolveConfig(invocation.configPath, io, invocation.synapseConfigPath);
  if (config === null) return EXIT.FAILURE;
  try {
    switch (invocation.command) {
      case 'check-config': {
        const { describeDatabase } = await import('./database-config.js');
        io.stdout.write(`${describeConfig(config, describeDatabase)}configuration OK\n`);
        return EXIT.OK;
      }
      case 'migrate': {
        const [{ openStores }, { describeDatabase }] = await Promise.all([import('./stores.js'), import('./database.js')]);
        const stores = await openStores(config);
        await stores.close();
        io.stdout.write(`database ready: ${describeDatabase(config.database)}\n`);
        return EXIT.OK;
      }
      case 'migrate-sqlite-to-postgres': {
        const { runSqliteToPostgres } = await import('./commands/sqlite-to-postgres-command.js');
        return await runSqliteToPostgres(config, invocation.copy ?? {}, io);
      }
      case 'hashes': {
        const { runHashesCommand } = await import('./commands/hashes-command.js');
        return await runHashesCommand(config, invocation.hashes!, io);
      }
      case 'import-mmr':
      case 'import-archive':
      case 'export': {
        const { runArchiveCommand } = await import('./commands/archive-command.js');
        return await runArchiveCommand(config, invocation.archive!, io);
      }
      case 'import-synapse': {
        const { runImportSynapse } = await import('./commands/import-synapse-command.js');
        return await runImportSynapse(config, invocation.importSynapse!, io);
      }
      case 'dedup': {
        const { runDedupCommand } = await import('./commands/dedup-command.js');
        return await runDedupCommand(config, invocation.dedup!, io);
      }
      case 'generate-key': {
        const { loadSigningKeyFor } = await import('./homeserver-key.js');
        const { key, created } = await loadSigningKeyFor(config);
        io.stdout.write(
          `${created ? 'created' : 'kept existing'} ${config.signingKeyPath}\nkey_id: ${key.keyId}\npublic_key: ${key.publicKey}\n`,
        );
        return EXIT.OK;
      }
      case 'start':
        throw new Error('start is run by runCli');
    }
  } catch (error) {
    io.stderr.write(`hsmedia-server: ${(error as Error).message}\n`);
    return EXIT.FAILURE;
  }
}

function describeConfig(config: MediaServerConfig, describeDatabase: (database: MediaServerConfig['database']) => string): string {
  const auth =
    config.auth.kind === 'homeserver'
      ? `whoami at ${config.auth.homeserverUrl}`
      : config.auth.kind === 'tokens'
        ? `${Object.keys(config.auth.tokens).length} static token(s)`
        : `generated admin token in ${config.auth.tokenPath}`;
  return [
    `server_name: ${config.serverName}`,
    `listen: http://${config.listen.host}:${config.listen.port}`,
    `database: ${describeDatabase(config.database)}`,
    `media_store: ${config.mediaStore.kind === 's3' ? `s3 bucket ${config.mediaStore.bucket} at ${config.mediaStore.endpoint ?? 'AWS'}` : `filesystem ${config.mediaStore.path}`}`,
    `signing_key_path: ${config.signingKeyPath}`,
    `max_upload_size: ${config.maxUploadBytes} bytes`,
    `auth: ${auth}`,
    '',
  ].join('\n');
}

/** The banner for a freshly generated admin token (stderr, printed once). */
export function adminTokenBanner(url: string, userId: string, token: string, tokenPath: string): string {
  return [
    '',
    '============================================================',
    ` Generated an access token for ${userId}`,
    '',
    `   ${token}`,
    '',
    ` Stored in ${tokenPath}; restarts reuse it. Try:`,
    '',
    `   curl -H 'Authorization: Bearer ${token}' \\`,
    `        -H 'Content-Type: text/plain' --data-binary 'hello' \\`,
    `        '${url}/_matrix/media/v3/upload?filename=hello.txt'`,
    '',
    ' Configure `auth` (tokens or homeserver_url) for real users.',
    '============================================================',
    '',
  ].join('\n');
}

/**
 * The whole CLI: runs a command, or starts the server and stops it
 * gracefully on SIGTERM/SIGINT (exit 0). A second signal exits at once (1).
 * Resolves with the process exit code once everything is closed.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const invocation = parseCommandLine(argv);
  if (invocation.kind !== 'run' || invocation.command !== 'start') return runCommand(argv, io);
  const config = await resolveConfig(invocation.configPath, io, invocation.synapseConfigPath);
  if (config === null) return EXIT.FAILURE;
  // Loaded only to serve: the HTTP stack is most of the CLI's start-up time, which commands (an import) need not pay.
  if (config.workers > 1) {
    const { runSupervisor } = await import('./supervisor.js');
    return runSupervisor({ config, configPath: invocation.configPath, stderr: io.stderr, adminTokenBanner });
  }

  let started: StartedServer;
  try {
    const { startServer } = await import('./server.js');
    started = await startServer(config);
  } catch (error) {
    io.stderr.write(`hsmedia-server: cannot start: ${(error as Error).message}\n`);
    return EXIT.FAILURE;
  }
  const admin = started.adminToken;
  if (admin?.created === true) {
    io.stderr.write(adminTokenBanner(started.url, admin.userId, admin.token, admin.tokenPath));
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        io.stderr.write(`hsmedia-server: ${signal} again, exiting without draining\n`);
        resolve(EXIT.FAILURE);
        return;
      }
      stopping = true;
      started.logger.info({ signal }, 'shutting down');
      started.close().then(
        () => resolve(EXIT.OK),
        (error: unknown) => {
          started.logger.error({ err: error }, 'shutdown failed');
          resolve(EXIT.FAILURE);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
