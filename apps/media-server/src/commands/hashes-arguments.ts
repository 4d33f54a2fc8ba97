/**
 * The command line of `hashes export` and `hashes import`, apart from running
 * them: `hsmedia-server` checks it before loading the stores.
 */
import type { BlockedHashListFormat } from '@hsmedia/media-core';

/** Arguments of `hashes export` and `hashes import`. */
export type HashesArguments =
  | { readonly action: 'export'; readonly format: BlockedHashListFormat; readonly out?: string }
  | { readonly action: 'import'; readonly file: string; readonly format?: BlockedHashListFormat; readonly dryRun: boolean; readonly reason?: string };

const HASH_OPTIONS = ['format', 'out', 'dry-run', 'reason'] as const;
type HashOptionValues = Partial<Record<(typeof HASH_OPTIONS)[number], string | boolean | undefined>>;

function formatOf(value: string | boolean | undefined): BlockedHashListFormat | string | undefined {
  if (value === undefined) return undefined;
  return value === 'json' || value === 'csv' ? value : '--format must be json or csv';
}

/**
 * The arguments of `hashes ...` from the positionals after the command name
 * and the options: undefined for other commands (which must not get these
 * options), a usage message when they are wrong.
 */
export function hashesArgumentsOf(command: string, positionals: readonly string[], values: HashOptionValues): HashesArguments | string | undefined {
  if (command !== 'hashes') {
    const stray = HASH_OPTIONS.find((option) => values[option] !== undefined);
    return stray === undefined ? undefined : `--${stray} is an option of hashes only`;
  }
  const format = formatOf(values.format);
  if (format !== undefined && format !== 'json' && format !== 'csv') return format;
  const [action, ...rest] = positionals;
  if (action === 'export') {
    if (rest.length > 0) return `Unexpected argument: ${rest[0]}`;
    if (values['dry-run'] !== undefined || values.reason !== undefined) return '--dry-run and --reason are options of hashes import';
    if (values.out === '') return '--out needs a file name';
    return { action, format: format ?? 'json', ...(typeof values.out === 'string' ? { out: values.out } : {}) };
  }
  if (action === 'import') {
    if (rest.length !== 1 || rest[0] === '') return 'hashes import needs one FILE';
    if (values.out !== undefined) return '--out is an option of hashes export';
    if (values.reason === '' || (typeof values.reason === 'string' && values.reason.length > 1000)) return '--reason must be 1 to 1000 characters';
    return {
      action,
      file: rest[0]!,
      dryRun: values['dry-run'] === true,
      ...(format === undefined ? {} : { format }),
      ...(typeof values.reason === 'string' ? { reason: values.reason } : {}),
    };
  }
  return 'hashes needs export or import';
}
