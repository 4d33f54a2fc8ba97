import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack, type Header } from 'tar-stream';

/** A tar entry header as the fixtures give it (name required, the rest defaulted by tar-stream). */
type Headers = Partial<Header> & Pick<Header, 'name'>;

/**
 * Writes export archives the way matrix-media-repo's v2 archive writer
 * does (archival/v2archive/writer.go there): tar parts gzipped as
 * `export-part-N.tgz`, one file per media item named
 * `<origin>__<media ID><extension>` (mode 0644, mtime the creation time),
 * a new part once a part holds `partSize` bytes or more, and a last part
 * `export-manifest.tgz` with `manifest.json` (version 2, the media map keyed
 * by mxc URI) and `index.html`. Extra entries and manifest edits make the
 * bad archives of the tests.
 */

export interface MmrFixtureItem {
  readonly origin: string;
  readonly mediaId: string;
  readonly bytes: Buffer;
  readonly contentType: string;
  readonly name: string;
  readonly uploader: string;
  readonly createdTs: number;
  /** The extension matrix-media-repo derives from sniffed bytes (`.png`, `.txt`, `` for unknown). */
  readonly extension?: string;
}

export interface MmrFixtureOptions {
  readonly entity: string;
  readonly partSize: number;
  /** Entries added to the first media part, after its files (links, `../` names, ...). */
  readonly extraEntries?: readonly { header: Headers; body?: Buffer }[];
  /** Edits the manifest record of an mxc URI before it is written (or `null` drops it). */
  readonly editRecord?: (mxc: string, record: Record<string, unknown>) => Record<string, unknown> | null;
  /** Manifest records added as they are. */
  readonly extraRecords?: Record<string, unknown>;
  /** Items written to a part without a manifest record. */
  readonly unlisted?: readonly MmrFixtureItem[];
}

export const archivedNameOf = (item: MmrFixtureItem): string => `${item.origin}__${item.mediaId}${item.extension ?? ''}`;

/** A tar of `entries`, in memory (test fixtures are small). */
export async function tarOf(entries: readonly { header: Headers; body?: Buffer }[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const { header, body } of entries) {
    await new Promise<void>((resolve, reject) => {
      tar.entry(header, body ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
    });
  }
  tar.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Writes the parts into `dir` and gives their file names, manifest part last. */
export async function writeMmrArchive(dir: string, items: readonly MmrFixtureItem[], options: MmrFixtureOptions): Promise<string[]> {
  const partFiles: string[] = [];
  let part: { header: Headers; body?: Buffer }[] = [];
  let partBytes = 0;
  const flush = async (name: string): Promise<void> => {
    await writeFile(join(dir, name), gzipSync(await tarOf(part)));
    partFiles.push(name);
    part = [];
    partBytes = 0;
  };
  const media: Record<string, unknown> = {};
  let extrasWritten = false;
  const addExtras = (): void => {
    if (extrasWritten) return;
    extrasWritten = true;
    for (const extra of options.extraEntries ?? []) part.push(extra);
  };
  for (const item of [...items, ...(options.unlisted ?? [])]) {
    const name = archivedNameOf(item);
    part.push({ header: { name, mode: 0o644, mtime: new Date(item.createdTs), size: item.bytes.length }, body: item.bytes });
    partBytes += item.bytes.length;
    if (!(options.unlisted ?? []).includes(item)) {
      const mxc = `mxc://${item.origin}/${item.mediaId}`;
      const record: Record<string, unknown> = {
        name: item.name,
        file_name: name,
        size_bytes: item.bytes.length,
        content_type: item.contentType,
        s3_url: '',
        sha256: createHash('sha256').update(item.bytes).digest('hex'),
        origin: item.origin,
        media_id: item.mediaId,
        created_ts: item.createdTs,
        uploader: item.uploader,
      };
      const edited = options.editRecord === undefined ? record : options.editRecord(mxc, record);
      if (edited !== null) media[mxc] = edited;
    }
    if (partBytes >= options.partSize) {
      addExtras();
      await flush(`export-part-${partFiles.length + 1}.tgz`);
    }
  }
  addExtras();
  // matrix-media-repo rotates before the manifest, so the last media part is written even when small.
  if (part.length > 0) await flush(`export-part-${partFiles.length + 1}.tgz`);
  Object.assign(media, options.extraRecords ?? {});
  const manifest = { version: 2, entity_id: options.entity, created_ts: Date.now(), media };
  part.push({ header: { name: 'manifest.json', mode: 0o644, size: Buffer.byteLength(`${JSON.stringify(manifest)}\n`) }, body: Buffer.from(`${JSON.stringify(manifest)}\n`) });
  const index = Buffer.from('<!DOCTYPE html><html><body>export</body></html>');
  part.push({ header: { name: 'index.html', mode: 0o644, size: index.length }, body: index });
  await flush('export-manifest.tgz');
  return partFiles;
}
