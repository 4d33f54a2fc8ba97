/**
 * The command line of `import-mmr`, `import-archive` and `export`, apart from
 * running them: `hsmedia-server` checks it before loading the stores and the
 * archive code.
 */
import { parseByteSize } from '../byte-size.js';
import type { ExportScope } from './export.js';

export const ARCHIVE_COMMANDS: readonly string[] = ['import-mmr', 'import-archive', 'export'];

/** Arguments of the archive commands. */
export type ArchiveArguments =
  | {
      readonly action: 'import-mmr' | 'import-archive';
      readonly parts: readonly string[];
      readonly dryRun: boolean;
      readonly report?: string;
      /** `--max-file-size`; default the config's `max_upload_size`. */
      readonly maxFileBytes?: number;
      /** `--mmr-database` (import-mmr): matrix-media-repo's PostgreSQL database, read for its quarantine. */
      readonly mmrDatabase?: string;
    }
  | { readonly action: 'export'; readonly scope: ExportScope; readonly out: string; readonly partSize: number; readonly includeQuarantined: boolean };

/** Default part size of `export`: small enough for any filesystem and upload form, large enough to be few. */
export const DEFAULT_PART_SIZE: number = 1024 ** 3;

const OPTIONS = ['dry-run', 'report', 'max-file-size', 'mmr-database', 'user', 'server', 'out', 'part-size', 'include-remote', 'include-quarantined'] as const;
type ArchiveOptionValues = Partial<Record<(typeof OPTIONS)[number], string | boolean | undefined>>;
/** Options of other commands that share a name with these. */
const SHARED = new Set(['dry-run', 'out']);

/**
 * The arguments of an archive command from the positionals after its name
 * and the options: undefined for other commands (which must not get the
 * options only these take), a usage message when they are wrong.
 */
export function archiveArgumentsOf(command: string, positionals: readonly string[], values: ArchiveOptionValues): ArchiveArguments | string | undefined {
  if (!ARCHIVE_COMMANDS.includes(command)) {
    const stray = OPTIONS.find((option) => !SHARED.has(option) && values[option] !== undefined);
    if (stray === undefined) return undefined;
    return `--${stray} is an option of ${stray === 'mmr-database' ? 'import-mmr' : stray === 'report' || stray === 'max-file-size' ? 'import-mmr and import-archive' : 'export'} only`;
  }
  if (command === 'export') {
    if (positionals.length > 0) return `Unexpected argument: ${positionals[0]}`;
    if (values['dry-run'] !== undefined || values.report !== undefined || values['max-file-size'] !== undefined || values['mmr-database'] !== undefined) {
      return '--dry-run, --report, --max-file-size and --mmr-database are options of the imports';
    }
    if (typeof values.out !== 'string' || values.out === '') return 'export needs --out DIRECTORY';
    const user = values.user;
    if ((user === undefined) === (values.server === undefined)) return 'export needs exactly one of --user USER_ID and --server';
    if (user !== undefined && (typeof user !== 'string' || !/^@[^:]+:.+$/.test(user))) return '--user needs a user ID (@name:server)';
    if (values['include-remote'] !== undefined && user !== undefined) return '--include-remote is an option of export --server';
    const partSize = values['part-size'] === undefined ? DEFAULT_PART_SIZE : parseByteSize(String(values['part-size']));
    if (partSize === undefined || partSize < 1) return '--part-size must be a size such as 512M or 2G';
    const scope: ExportScope = typeof user === 'string' ? { kind: 'user', userId: user } : { kind: 'server', includeRemote: values['include-remote'] === true };
    return { action: 'export', scope, out: values.out, partSize, includeQuarantined: values['include-quarantined'] === true };
  }
  const stray = ['user', 'server', 'out', 'part-size', 'include-remote', 'include-quarantined'].find((option) => values[option as keyof ArchiveOptionValues] !== undefined);
  if (stray !== undefined) return `--${stray} is an option of export`;
  if (positionals.length === 0) return `${command} needs the archive parts (files, or directories holding them)`;
  if (values.report === '') return '--report needs a file name';
  const maxFileBytes = values['max-file-size'] === undefined ? undefined : parseByteSize(String(values['max-file-size']));
  if (values['max-file-size'] !== undefined && (maxFileBytes === undefined || maxFileBytes < 1)) return '--max-file-size must be a size such as 100M or 2G';
  const mmrDatabase = values['mmr-database'];
  if (mmrDatabase !== undefined && command !== 'import-mmr') return '--mmr-database is an option of import-mmr only';
  if (mmrDatabase !== undefined && (typeof mmrDatabase !== 'string' || !/^postgres(?:ql)?:\/\/./.test(mmrDatabase))) {
    return "--mmr-database needs matrix-media-repo's PostgreSQL URL (postgres://user@host/database)";
  }
  return {
    action: command as 'import-mmr' | 'import-archive',
    parts: positionals,
    dryRun: values['dry-run'] === true,
    ...(typeof values.report === 'string' ? { report: values.report } : {}),
    ...(maxFileBytes === undefined ? {} : { maxFileBytes }),
    ...(typeof mmrDatabase === 'string' ? { mmrDatabase } : {}),
  };
}
