/**
 * The command line of `import-synapse`, apart from the import: `hsmedia-server`
 * checks it before loading the Synapse reader and the stores.
 */

/** Arguments of `import-synapse`. */
export interface ImportSynapseArguments {
  /** Synapse's SQLite file, or a `postgres://` / `postgresql://` connection string. */
  readonly database: string;
  readonly mediaStore: string;
  readonly dryRun: boolean;
  /** The report file (JSON lines, one per item and thumbnail). */
  readonly report?: string;
  /** Where the resume cursor is kept. */
  readonly state?: string;
  /** Ignore a saved cursor and walk everything again (nothing is imported twice either way). */
  readonly restart: boolean;
  readonly concurrency?: number;
  /** Hard-link files into the filesystem store instead of copying them (same filesystem only). */
  readonly link: boolean;
}

const OPTIONS = ['database', 'media-store', 'report', 'state', 'restart', 'concurrency', 'link'] as const;
type OptionValues = Partial<Record<(typeof OPTIONS)[number] | 'dry-run', string | boolean | undefined>>;

/** The arguments of `import-synapse`: undefined for other commands (which must not get its options), a usage message when wrong. */
export function importSynapseArgumentsOf(command: string, values: OptionValues): ImportSynapseArguments | string | undefined {
  if (command !== 'import-synapse') {
    const stray = OPTIONS.find((option) => values[option] !== undefined);
    return stray === undefined ? undefined : `--${stray} is an option of import-synapse only`;
  }
  const { database, report, state, concurrency } = values;
  const mediaStore = values['media-store'];
  if (typeof database !== 'string' || database === '') return 'import-synapse needs --database (SQLite file or postgres:// URL)';
  if (typeof mediaStore !== 'string' || mediaStore === '') return 'import-synapse needs --media-store (Synapse media_store_path)';
  if (report === '' || state === '') return '--report and --state need a file name';
  let parallel: number | undefined;
  if (concurrency !== undefined) {
    parallel = Number(concurrency);
    if (!Number.isSafeInteger(parallel) || parallel < 1 || parallel > 512) return '--concurrency must be 1 to 512';
  }
  return {
    database,
    mediaStore,
    dryRun: values['dry-run'] === true,
    restart: values.restart === true,
    link: values.link === true,
    ...(typeof report === 'string' ? { report } : {}),
    ...(typeof state === 'string' ? { state } : {}),
    ...(parallel === undefined ? {} : { concurrency: parallel }),
  };
}
