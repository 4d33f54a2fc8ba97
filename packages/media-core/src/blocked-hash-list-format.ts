import type { BlockedHash, BlockedHashPage } from './ports/index.js';

/**
 * The exchange formats of the blocked-hash list, so operators can share
 * lists between servers: JSON (`{"hashes": [{sha256, reason, blocked_by,
 * blocked_ts}]}`) and CSV (RFC 4180: a header line
 * `sha256,reason,blocked_by,blocked_ts`, CRLF line ends, fields quoted when
 * they hold a comma, a quote or a line break). The one place that writes and
 * reads them: the admin API and the CLI both use it. Pure (no I/O).
 */

/** The two formats. */
export type BlockedHashListFormat = 'json' | 'csv';

/** The CSV columns, in export order (also the JSON field names). */
export const BLOCKED_HASH_COLUMNS: readonly ['sha256', 'reason', 'blocked_by', 'blocked_ts'] = ['sha256', 'reason', 'blocked_by', 'blocked_ts'];

/** The CSV header line, without its line end. */
export const BLOCKED_HASH_CSV_HEADER: string = BLOCKED_HASH_COLUMNS.join(',');

/** An entry as exported: the JSON object shape. */
export interface BlockedHashListItem {
  readonly sha256: string;
  readonly reason: string | null;
  readonly blocked_by: string | null;
  readonly blocked_ts: number;
}

/** One imported entry: only `sha256` is required; the importer fills in who and when where missing. */
export interface ImportedBlockedHash {
  readonly sha256: string;
  readonly reason: string | null;
  readonly blockedBy: string | null;
  readonly blockedAt: number | null;
}

/** A malformed line (CSV: the line where the record starts; JSON: the 1-based position in `hashes`). */
export interface HashListLineError {
  readonly line: number;
  readonly error: string;
}

/** What a parse found: the good entries and every malformed line (an import goes ahead only without errors). */
export interface ParsedHashList {
  readonly entries: ImportedBlockedHash[];
  readonly errors: HashListLineError[];
}

/** Errors reported at most (the rest are counted in a last line): a bad file should not make a huge answer. */
export const MAX_REPORTED_LINE_ERRORS = 1000;

const HEX64_RE = /^[0-9a-fA-F]{64}$/;
const HEX_RE = /^[0-9a-fA-F]*$/;
const MAX_REASON = 1000;
const MAX_BLOCKED_BY = 255;

/** The JSON object of one entry. */
export function blockedHashListItem(entry: BlockedHash): BlockedHashListItem {
  return { sha256: entry.sha256, reason: entry.reason, blocked_by: entry.blockedBy, blocked_ts: entry.blockedAt };
}

/** One CSV field, quoted when it must be (RFC 4180 section 2, rules 6 and 7). */
function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV record with its CRLF line end. */
export function blockedHashCsvLine(entry: BlockedHash): string {
  return `${[entry.sha256, entry.reason, entry.blockedBy, entry.blockedAt].map(csvField).join(',')}\r\n`;
}

/**
 * The whole list in `format`, as text chunks to stream (a chunk per entry,
 * nothing held but the current page of `entries`).
 */
export async function* blockedHashListChunks(entries: AsyncIterable<BlockedHash>, format: BlockedHashListFormat): AsyncGenerator<string> {
  if (format === 'csv') {
    yield `${BLOCKED_HASH_CSV_HEADER}\r\n`;
    for await (const entry of entries) yield blockedHashCsvLine(entry);
    return;
  }
  yield '{"hashes":[';
  let first = true;
  for await (const entry of entries) {
    yield `${first ? '\n' : ',\n'}${JSON.stringify(blockedHashListItem(entry))}`;
    first = false;
  }
  yield first ? ']}\n' : '\n]}\n';
}

/**
 * Every entry of a paged list (`list` as `BlockedHashes.listBlockedHashes`),
 * from after `start.after`, at most `start.limit` in all when given.
 */
export async function* iterateBlockedHashes(
  list: (page: BlockedHashPage) => Promise<BlockedHash[]>,
  start: { readonly after?: string | undefined; readonly search?: string | undefined; readonly limit?: number | undefined } = {},
  pageSize = 1000,
): AsyncGenerator<BlockedHash> {
  let after = start.after;
  let left = start.limit ?? Number.POSITIVE_INFINITY;
  while (left > 0) {
    const limit = Math.min(pageSize, left);
    const page = await list({ limit, ...(after === undefined ? {} : { after }), ...(start.search === undefined ? {} : { search: start.search }) });
    for (const entry of page) yield entry;
    if (page.length < limit) return;
    left -= page.length;
    after = page.at(-1)!.sha256;
  }
}

function optionalText(value: string, name: string, max: number): string | null {
  if (value === '') return null;
  if (value.length > max) throw new Error(`${name} is longer than ${max} characters`);
  if (value.includes('\0')) throw new Error(`${name} contains NUL`);
  return value;
}

function checkHash(value: string): string {
  if (value === '') throw new Error('sha256 is missing');
  if (!HEX_RE.test(value)) throw new Error('sha256 is not hexadecimal');
  if (!HEX64_RE.test(value)) throw new Error(`sha256 has ${value.length} hex digits, not 64`);
  return value.toLowerCase();
}

function checkTimestamp(value: string): number | null {
  if (value === '') return null;
  const ts = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(ts)) throw new Error('blocked_ts is not a non-negative integer (ms since the epoch)');
  return ts;
}

/** An entry from the text fields of a CSV record (missing ones empty); throws `Error` with the reason. */
function entryOfFields(fields: Readonly<Record<string, string>>): ImportedBlockedHash {
  return {
    sha256: checkHash(fields['sha256'] ?? ''),
    reason: optionalText(fields['reason'] ?? '', 'reason', MAX_REASON),
    blockedBy: optionalText(fields['blocked_by'] ?? '', 'blocked_by', MAX_BLOCKED_BY),
    blockedAt: checkTimestamp(fields['blocked_ts'] ?? ''),
  };
}

/** Collects errors up to {@link MAX_REPORTED_LINE_ERRORS}, then counts the rest in one last line. */
class LineErrors {
  readonly list: HashListLineError[] = [];
  #more = 0;
  #lastLine = 0;

  add(line: number, error: string): void {
    if (this.list.length < MAX_REPORTED_LINE_ERRORS) this.list.push({ line, error });
    else this.#more++;
    this.#lastLine = line;
  }

  done(): HashListLineError[] {
    if (this.#more > 0) this.list.push({ line: this.#lastLine, error: `and ${this.#more} more malformed lines` });
    return this.list;
  }
}

/**
 * An incremental RFC 4180 reader of a hash list in CSV: text goes in by
 * {@link push} (any chunking, also inside a quoted field or a CRLF), then
 * {@link end} gives the entries and every malformed line.
 *
 * Accepted: an optional UTF-8 byte order mark; an optional header line
 * (a first line with a field `sha256`) naming the columns (any order, `sha256` required, each of
 * {@link BLOCKED_HASH_COLUMNS} at most once); without a header the columns
 * are positional (`sha256[,reason[,blocked_by[,blocked_ts]]]`); CRLF or LF
 * line ends; blank lines (skipped). Malformed: a bad or missing hash, a
 * record with another number of fields than the header (or more than four),
 * a quote inside an unquoted field, text after a closing quote, an
 * unterminated quote, an over-long reason or `blocked_by`, a `blocked_ts`
 * that is no integer, and a file with no line at all.
 */
export class BlockedHashCsvReader {
  readonly #entries: ImportedBlockedHash[] = [];
  readonly #errors = new LineErrors();
  #columns: readonly string[] | undefined;
  #atStart = true;
  #line = 1;
  #recordLine = 1;
  #fields: string[] = [];
  #field = '';
  /** `start`: at a field's start; `plain`/`quoted`: inside one; `quote`: after a quote in a quoted field; `bad`: skipping a broken record. */
  #state: 'start' | 'plain' | 'quoted' | 'quote' | 'bad' = 'start';
  #afterCr = false;
  #records = 0;

  push(text: string): void {
    for (let index = 0; index < text.length; index++) {
      let char = text[index]!;
      if (this.#atStart) {
        this.#atStart = false;
        if (char === '\uFEFF') continue;
      }
      // Inside quotes every character is data (a CRLF there is kept as it is).
      if (this.#state === 'quoted') {
        this.#step(char);
        continue;
      }
      // CRLF is one line end: the LF after a CR that ended a record is skipped.
      if (this.#afterCr) {
        this.#afterCr = false;
        if (char === '\n') continue;
      }
      if (char === '\r') {
        this.#afterCr = true;
        char = '\n';
      }
      this.#step(char);
    }
  }

  /** The result; the reader is done. */
  end(): ParsedHashList {
    if (this.#state === 'quoted') {
      this.#errors.add(this.#recordLine, 'unterminated quoted field');
      this.#resetRecord();
    } else {
      this.#endRecord();
    }
    if (this.#records === 0) this.#errors.add(1, 'the file is empty: expected a header line or hash lines');
    return { entries: this.#errors.list.length === 0 ? this.#entries : [], errors: this.#errors.done() };
  }

  #step(char: string): void {
    switch (this.#state) {
      case 'bad':
        if (char === '\n') this.#newLine(true);
        return;
      case 'quoted':
        if (char === '"') this.#state = 'quote';
        else {
          if (char === '\n') this.#line++;
          this.#field += char;
        }
        return;
      case 'quote':
        if (char === '"') {
          this.#field += '"';
          this.#state = 'quoted';
        } else if (char === ',') this.#endField();
        else if (char === '\n') this.#newLine(false);
        else this.#fail('text after a closing quote');
        return;
      case 'start':
        if (char === '"') {
          this.#state = 'quoted';
          return;
        }
        this.#plain(char);
        return;
      case 'plain':
        this.#plain(char);
    }
  }

  #plain(char: string): void {
    if (char === ',') this.#endField();
    else if (char === '\n') this.#newLine(false);
    else if (char === '"') this.#fail('a quote inside an unquoted field');
    else {
      this.#field += char;
      this.#state = 'plain';
    }
  }

  #endField(): void {
    this.#fields.push(this.#field);
    this.#field = '';
    this.#state = 'start';
  }

  /** A line end outside quotes: the record ends (unless skipping a broken one, which ends here too). */
  #newLine(skipping: boolean): void {
    if (!skipping) this.#endRecord();
    else this.#resetRecord();
    this.#line++;
    this.#recordLine = this.#line;
  }

  #fail(error: string): void {
    this.#errors.add(this.#recordLine, error);
    this.#state = 'bad';
  }

  #resetRecord(): void {
    this.#fields = [];
    this.#field = '';
    this.#state = 'start';
  }

  #endRecord(): void {
    if (this.#state === 'bad') return this.#resetRecord();
    const blank = this.#fields.length === 0 && this.#field === '' && this.#state === 'start';
    this.#fields.push(this.#field);
    const fields = this.#fields;
    this.#resetRecord();
    if (blank) return;
    this.#records++;
    if (this.#columns === undefined && this.#records === 1 && fields.some((name) => name.trim().toLowerCase() === 'sha256')) {
      this.#header(fields);
      return;
    }
    const columns = this.#columns ?? BLOCKED_HASH_COLUMNS;
    const expected = this.#columns === undefined ? `1 to ${columns.length}` : String(columns.length);
    if (this.#columns === undefined ? fields.length > columns.length : fields.length !== columns.length) {
      this.#errors.add(this.#recordLine, `${fields.length} fields, expected ${expected}`);
      return;
    }
    const named: Record<string, string> = {};
    fields.forEach((value, index) => {
      named[columns[index]!] = value;
    });
    try {
      this.#entries.push(entryOfFields(named));
    } catch (err) {
      this.#errors.add(this.#recordLine, (err as Error).message);
    }
  }

  #header(fields: string[]): void {
    const names = fields.map((name) => name.trim().toLowerCase());
    const known = new Set<string>(BLOCKED_HASH_COLUMNS);
    const unknown = names.find((name) => !known.has(name));
    if (unknown !== undefined) this.#errors.add(this.#recordLine, `unknown column ${JSON.stringify(unknown.slice(0, 40))}`);
    else if (new Set(names).size !== names.length) this.#errors.add(this.#recordLine, 'a column is named twice');
    // Kept even when malformed: the data lines are still checked against it.
    this.#columns = names;
  }
}

/** Parses a whole CSV hash list (see {@link BlockedHashCsvReader}). */
export function parseBlockedHashCsv(text: string): ParsedHashList {
  const reader = new BlockedHashCsvReader();
  reader.push(text);
  return reader.end();
}

function jsonText(value: unknown, name: string, max: number): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new Error(`${name} must be a string or null`);
  return optionalText(value, name, max);
}

function jsonEntry(item: unknown): ImportedBlockedHash {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new Error('expected an object with a sha256');
  const record = item as Record<string, unknown>;
  const unknown = Object.keys(record).find((key) => !(BLOCKED_HASH_COLUMNS as readonly string[]).includes(key));
  if (unknown !== undefined) throw new Error(`unknown field ${JSON.stringify(unknown.slice(0, 40))}`);
  if (typeof record['sha256'] !== 'string') throw new Error('sha256 must be a string');
  const ts = record['blocked_ts'];
  if (ts !== undefined && ts !== null && (!Number.isSafeInteger(ts) || (ts as number) < 0)) {
    throw new Error('blocked_ts must be a non-negative integer (ms since the epoch) or null');
  }
  return {
    sha256: checkHash(record['sha256']),
    reason: jsonText(record['reason'], 'reason', MAX_REASON),
    blockedBy: jsonText(record['blocked_by'], 'blocked_by', MAX_BLOCKED_BY),
    blockedAt: (ts as number | null | undefined) ?? null,
  };
}

/**
 * Checks a parsed JSON hash list (`{"hashes": [...]}`, the export shape):
 * each malformed entry is reported with its 1-based position as `line`; a
 * value that is not such an object is one error on line 1.
 */
export function parseBlockedHashJson(value: unknown): ParsedHashList {
  const hashes = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)['hashes'] : undefined;
  if (!Array.isArray(hashes)) return { entries: [], errors: [{ line: 1, error: 'expected an object {"hashes": [...]}' }] };
  const entries: ImportedBlockedHash[] = [];
  const errors = new LineErrors();
  hashes.forEach((item, index) => {
    try {
      entries.push(jsonEntry(item));
    } catch (err) {
      errors.add(index + 1, (err as Error).message);
    }
  });
  return { entries: errors.list.length === 0 ? entries : [], errors: errors.done() };
}

/** The entries to store: who and when filled in (by the importer, now) where the list left them out. */
export function toBlockedHashes(entries: readonly ImportedBlockedHash[], defaults: { readonly blockedBy: string | null; readonly blockedAt: number }): BlockedHash[] {
  return entries.map((entry) => ({
    sha256: entry.sha256,
    reason: entry.reason,
    blockedBy: entry.blockedBy ?? defaults.blockedBy,
    blockedAt: entry.blockedAt ?? defaults.blockedAt,
  }));
}
