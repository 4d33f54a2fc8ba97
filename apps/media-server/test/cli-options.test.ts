import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../src/cli-main.js';

// Options that several commands share (--dry-run, --report, --out) must reach each of them, and an
// option of one command must still be refused on another.

describe('shared command-line options', () => {
  it('gives --report to the archive imports and to import-synapse', () => {
    expect(parseCommandLine(['import-mmr', 'parts', '--report', 'p.jsonl'])).toMatchObject({ kind: 'run', archive: { report: 'p.jsonl' } });
    expect(parseCommandLine(['import-archive', 'parts', '--report', 'p.jsonl', '--dry-run'])).toMatchObject({ kind: 'run', archive: { report: 'p.jsonl', dryRun: true } });
    expect(parseCommandLine(['import-synapse', '--database', 'h.db', '--media-store', 'm', '--report', 'r.jsonl', '--dry-run'])).toMatchObject({
      kind: 'run',
      importSynapse: { report: 'r.jsonl', dryRun: true },
    });
  });

  it('gives --dry-run to dedup and hashes import', () => {
    expect(parseCommandLine(['dedup', '--dry-run'])).toMatchObject({ kind: 'run', command: 'dedup' });
    expect(parseCommandLine(['hashes', 'import', 'list.txt', '--dry-run'])).toMatchObject({ kind: 'run', command: 'hashes' });
  });

  it('still refuses an option on a command that does not take it', () => {
    expect(parseCommandLine(['start', '--report', 'r.jsonl'])).toMatchObject({ kind: 'usage-error' });
    expect(parseCommandLine(['dedup', '--link'])).toMatchObject({ kind: 'usage-error' });
    expect(parseCommandLine(['import-mmr', 'parts', '--link'])).toMatchObject({ kind: 'usage-error' });
    expect(parseCommandLine(['import-synapse', '--database', 'h.db', '--media-store', 'm', '--max-file-size', '1M'])).toMatchObject({ kind: 'usage-error' });
  });
});
