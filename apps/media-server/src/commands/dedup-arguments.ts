/**
 * The command line of `dedup`, apart from the migration: `hsmedia-server`
 * checks it before loading the stores.
 */

/** Arguments of `dedup`. */
export interface DedupArguments {
  /** Count what would move (blobs and bytes) and change nothing. */
  readonly dryRun: boolean;
  /** Delete each old object at once rather than leaving it to the orphan sweep after `dedup.orphan_grace`. */
  readonly deleteOld: boolean;
  /** Run the orphan sweep afterwards (with `dryRun`: count what it would remove). */
  readonly sweep: boolean;
}

const DEDUP_OPTIONS = ['delete-old', 'sweep'] as const;

/**
 * The arguments of `dedup` from the options: undefined for other commands (which
 * must not get its options), a usage message when they are wrong.
 */
export function dedupArgumentsOf(command: string, values: Partial<Record<string, string | boolean | undefined>>): DedupArguments | string | undefined {
  if (command !== 'dedup') {
    const stray = DEDUP_OPTIONS.find((option) => values[option] !== undefined);
    return stray === undefined ? undefined : `--${stray} is an option of dedup only`;
  }
  if (values['dry-run'] === true && values['delete-old'] === true) return '--delete-old changes nothing with --dry-run';
  return { dryRun: values['dry-run'] === true, deleteOld: values['delete-old'] === true, sweep: values.sweep === true };
}
