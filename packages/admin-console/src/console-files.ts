import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the console is served: the built files refer to their assets under this path. */
export const ADMIN_CONSOLE_BASE_PATH = '/_hsmedia/admin/';

/**
 * The console pages' policy: only the console's own script and style, images
 * only from the server or from object URLs (thumbnails fetched with the
 * token), requests only to the server, never framed (clickjacking), no
 * plugins, no `<base>`, no form posts anywhere.
 */
export const ADMIN_CONSOLE_CONTENT_SECURITY_POLICY: string = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Every header of every console file (the cache header comes with each file). */
export const ADMIN_CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': ADMIN_CONSOLE_CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Robots-Tag': 'noindex, nofollow',
});

/** One built file, ready to send. */
export interface AdminConsoleFile {
  /** Its path below {@link ADMIN_CONSOLE_BASE_PATH}: `''` for the page, `assets/index-1a2b3c.js`. */
  readonly path: string;
  readonly body: Buffer;
  readonly contentType: string;
  /** `no-cache` for the page (it names the current assets); a year, immutable, for hashed assets. */
  readonly cacheControl: string;
  /** A strong entity tag: the file's SHA-256. */
  readonly etag: string;
}

/** The console's files, looked up by exact path only. */
export interface AdminConsole {
  /** The file at `path` (below the base path), or undefined: never a path built from the request. */
  file(path: string): AdminConsoleFile | undefined;
  /** Every path, for logs and tests. */
  readonly paths: readonly string[];
}

/** Options of {@link loadAdminConsole}. */
export interface LoadAdminConsoleOptions {
  /** The built console's directory; default the one this package ships (`dist/console`). */
  readonly directory?: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
/** The whole console is some tens of kilobytes; refuse to load a directory that is clearly something else. */
const MAX_TOTAL_BYTES = 8 * 1024 * 1024;
const MAX_FILES = 200;

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot === -1 ? '' : name.slice(dot);
}

/**
 * Reads the built console once into memory and gives a fixed table of its
 * files: `index.html` (served at the base path itself) and the hashed files
 * under `assets/`. A request is answered only when its path is exactly one
 * of these keys, so no file name ever comes from the request. Throws when
 * the console was not built (no `index.html`), when a file has a type not
 * in the table above, or past 200 files or 8 MiB.
 *
 * @example
 * ```ts
 * const adminConsole = await loadAdminConsole();
 * const page = adminConsole.file('');
 * // page.body, page.contentType ('text/html; charset=utf-8'), page.cacheControl ('no-cache')
 * ```
 */
export async function loadAdminConsole(options: LoadAdminConsoleOptions = {}): Promise<AdminConsole> {
  // src/ and dist/ are both one level below the package: the same relative path works from either.
  const directory = options.directory ?? fileURLToPath(new URL('../dist/console/', import.meta.url));
  const files = new Map<string, AdminConsoleFile>();
  let total = 0;
  const add = async (relative: string, absolute: string, cacheControl: string): Promise<void> => {
    const contentType = CONTENT_TYPES[extensionOf(relative)];
    if (contentType === undefined) throw new Error(`admin console: unexpected file type of ${relative}`);
    const info = await stat(absolute);
    total += info.size;
    if (total > MAX_TOTAL_BYTES || files.size >= MAX_FILES) throw new Error('admin console: the built console is larger than expected');
    const body = await readFile(absolute);
    const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
    files.set(relative === 'index.html' ? '' : relative, { path: relative === 'index.html' ? '' : relative, body, contentType, cacheControl, etag });
  };
  try {
    await add('index.html', join(directory, 'index.html'), 'no-cache');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`admin console: ${join(directory, 'index.html')} is missing; build it with npm run build`, { cause: error });
    }
    throw error;
  }
  const assets = await readdir(join(directory, 'assets'), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of assets) {
    if (!entry.isFile()) continue;
    // Vite names every asset after a hash of its content: a changed file gets a new name.
    await add(`assets/${entry.name}`, join(directory, 'assets', entry.name), 'public, max-age=31536000, immutable');
  }
  const paths = Object.freeze([...files.keys()]);
  return { file: (path) => files.get(path), paths };
}
