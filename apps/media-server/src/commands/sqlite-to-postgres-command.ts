import { resolve } from 'node:path';
import type { MediaServerConfig } from '../config.js';
import { migrateSqliteToPostgres, MetadataMigrationError } from './migrate-sqlite-to-postgres.js';
import type { CopyArguments } from './sqlite-to-postgres-arguments.js';

/** Where the command writes. */
interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly cwd: string;
}

/**
 * Runs `migrate-sqlite-to-postgres`: `--to`/`--schema` default to the
 * config's `database.postgres`. Returns the exit code (0, 1 on failure,
 * 2 on missing arguments).
 */
export async function runSqliteToPostgres(config: MediaServerConfig, args: CopyArguments, io: CommandIo): Promise<number> {
  const fromConfig = config.database.kind === 'postgres' ? config.database : undefined;
  const to = args.to ?? fromConfig?.url;
  if (args.from === undefined || to === undefined) {
    io.stderr.write(
      'hsmedia-server: migrate-sqlite-to-postgres needs --from SQLITE_FILE and --to POSTGRES_URL (or a --config with database.postgres)\n',
    );
    return 2;
  }
  if (!/^postgres(?:ql)?:\/\//.test(to)) {
    io.stderr.write('hsmedia-server: --to must be a postgres:// or postgresql:// URL\n');
    return 2;
  }
  const schema = args.schema ?? fromConfig?.schema;
  try {
    const reports = await migrateSqliteToPostgres({
      from: resolve(io.cwd, args.from),
      to,
      schema,
      ...(args.batchSize === undefined ? {} : { batchSize: args.batchSize }),
      progress: (line) => io.stdout.write(`${line}\n`),
    });
    const total = reports.reduce((sum, report) => sum + report.inserted, 0);
    io.stdout.write(`copied ${total} rows in ${reports.length} tables; counts verified\n`);
    return 0;
  } catch (error) {
    const message = error instanceof MetadataMigrationError ? error.message : `copy failed: ${(error as Error).message}`;
    io.stderr.write(`hsmedia-server: ${message}\n`);
    return 1;
  }
}
