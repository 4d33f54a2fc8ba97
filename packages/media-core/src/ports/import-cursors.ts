/**
 * Where a long-running import keeps its place (the read-through backfill from
 * Synapse): one small opaque state per named import, shared by the processes
 * of a deployment so a restart or another instance resumes where it stopped.
 * An optional capability of a metadata store; check with {@link hasImportCursors}.
 */
export interface ImportCursors {
  /** The state last written under `name`, or null when none was. */
  readImportCursor(name: string): Promise<string | null>;
  /** Replaces the state under `name` (a JSON document of at most 64 KiB, by convention). */
  writeImportCursor(name: string, state: string): Promise<void>;
}

/** Whether `store` also implements {@link ImportCursors}. */
export function hasImportCursors<T extends object>(store: T): store is T & ImportCursors {
  const candidate = store as Partial<ImportCursors>;
  return typeof candidate.readImportCursor === 'function' && typeof candidate.writeImportCursor === 'function';
}
