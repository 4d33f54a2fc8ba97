
/**
 * The report of an archive import (`import-mmr`, `import-archive`): counts
 * of what was imported, already present and refused, and one line per
 * problem. Problems never stop an import: each is counted, listed, and its
 * item left out whole (no row, no blob), so a rerun after fixing the cause
 * completes it.
 */

/** What can be wrong with an item or a part of an archive. */
export type ArchiveProblemKind =
  /** A manifest entry whose file is in none of the given parts. */
  | 'missing-file'
  /** A file in a part that no manifest entry names. */
  | 'unlisted-file'
  /** A file whose size differs from what the manifest says. */
  | 'size-mismatch'
  /** A file whose SHA-256 differs from what the manifest says. */
  | 'hash-mismatch'
  /** A symlink, hard link or other non-file entry, or a name that would leave the target (`..`, absolute). */
  | 'unsafe-entry'
  /** A content type that is not a media type. */
  | 'unknown-content-type'
  /** A manifest entry that cannot be used (bad media ID, origin, size, ...). */
  | 'invalid-entry'
  /** A part that is truncated or not a tar.gz at all; its items after the damage are missing. */
  | 'damaged-part'
  /** A part or the manifest of our own format that is absent or inconsistent with the manifest. */
  | 'missing-part'
  /** The media server refused the item (a blocked hash, an invalid ID, ...). */
  | 'refused';

/** One problem, as listed in the report file (one JSON object a line). */
export interface ArchiveProblem {
  readonly kind: ArchiveProblemKind;
  /** The part file it was found in, if any. */
  readonly part: string | null;
  /** The tar entry, if any. */
  readonly entry: string | null;
  /** The media item, if known. */
  readonly mxc: string | null;
  readonly detail: string;
}

/** Counts of an import, or of what a dry run would import. */
export class ArchiveImportReport {
  imported = 0;
  importedBytes = 0;
  present = 0;
  thumbnailsImported = 0;
  readonly problemCounts: Map<ArchiveProblemKind, number> = new Map();
  /** Lines an importer adds to the summary (after the counts). */
  readonly notes: string[] = [];
  /** The first problems, kept for the summary (all go to `onProblem`). */
  readonly firstProblems: ArchiveProblem[] = [];

  readonly dryRun: boolean;
  readonly #onProblem: (problem: ArchiveProblem) => void;

  constructor(dryRun: boolean, onProblem: (problem: ArchiveProblem) => void = () => undefined) {
    this.dryRun = dryRun;
    this.#onProblem = onProblem;
  }

  problem(kind: ArchiveProblemKind, detail: string, where: { part?: string | null; entry?: string | null; mxc?: string | null } = {}): void {
    const problem: ArchiveProblem = { kind, part: where.part ?? null, entry: where.entry ?? null, mxc: where.mxc ?? null, detail };
    this.problemCounts.set(kind, (this.problemCounts.get(kind) ?? 0) + 1);
    if (this.firstProblems.length < 20) this.firstProblems.push(problem);
    this.#onProblem(problem);
  }

  get problems(): number {
    let total = 0;
    for (const count of this.problemCounts.values()) total += count;
    return total;
  }

  /** The final report, a few lines for a terminal. */
  summary(): string {
    const verb = this.dryRun ? 'would import' : 'imported';
    const lines = [
      `${verb} ${this.imported} media (${humanBytes(this.importedBytes)})${this.thumbnailsImported > 0 ? ` and ${this.thumbnailsImported} thumbnails` : ''}, already present ${this.present}`,
      ...this.notes,
    ];
    if (this.problems === 0) {
      lines.push('no problems');
    } else {
      const counts = [...this.problemCounts].sort(([a], [b]) => a.localeCompare(b)).map(([kind, count]) => `${kind} ${count}`);
      lines.push(`problems: ${counts.join(', ')}`);
      for (const problem of this.firstProblems) lines.push(`  ${describeProblem(problem)}`);
      if (this.problems > this.firstProblems.length) lines.push(`  ... and ${this.problems - this.firstProblems.length} more`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** Bytes for people: `1000 B`, `64 KiB`, `192.2 MiB`. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  return `${index === 0 ? value : Number(value.toFixed(1))} ${units[index]}`;
}

/** One problem as a line for people. */
export function describeProblem(problem: ArchiveProblem): string {
  const where = [problem.part, problem.entry].filter((part) => part !== null).join(': ');
  return `${problem.kind}${problem.mxc === null ? '' : ` ${problem.mxc}`}${where === '' ? '' : ` (${where})`}: ${problem.detail}`;
}
