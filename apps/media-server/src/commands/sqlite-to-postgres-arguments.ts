/**
 * The command line of `migrate-sqlite-to-postgres`, apart from the copy it
 * runs: `hsmedia-server` checks it before loading the database drivers.
 */

/** Command-line arguments of `migrate-sqlite-to-postgres`. */
export interface CopyArguments {
  readonly from?: string;
  readonly to?: string;
  readonly schema?: string;
  readonly batchSize?: number;
}

const COPY_OPTIONS = ['from', 'to', 'schema', 'batch-size'] as const;

/**
 * The copy arguments of `command`: undefined for other commands (which must
 * not get them), a usage message when they are wrong.
 */
export function copyArgumentsOf(
  command: string,
  values: Partial<Record<(typeof COPY_OPTIONS)[number], string | undefined>>,
): CopyArguments | string | undefined {
  if (command !== 'migrate-sqlite-to-postgres') {
    const stray = COPY_OPTIONS.find((option) => values[option] !== undefined);
    return stray === undefined ? undefined : `--${stray} is an option of migrate-sqlite-to-postgres only`;
  }
  for (const option of COPY_OPTIONS) {
    if (values[option] === '') return `--${option} needs a value`;
  }
  let batchSize: number | undefined;
  if (values['batch-size'] !== undefined) {
    batchSize = /^\d{1,5}$/.test(values['batch-size']) ? Number(values['batch-size']) : Number.NaN;
    if (!(batchSize >= 1 && batchSize <= 10_000)) return '--batch-size must be an integer from 1 to 10000';
  }
  return {
    ...(values.from === undefined ? {} : { from: values.from }),
    ...(values.to === undefined ? {} : { to: values.to }),
    ...(values.schema === undefined ? {} : { schema: values.schema }),
    ...(batchSize === undefined ? {} : { batchSize }),
  };
}
