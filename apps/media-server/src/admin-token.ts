import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The generated admin token and whether this start created it. */
export interface AdminToken {
  readonly token: string;
  readonly created: boolean;
}

/** Problems with an existing admin token file. */
export class AdminTokenFileError extends Error {
  override readonly name: 'AdminTokenFileError' = 'AdminTokenFileError';
}

const TOKEN_RE = /^[A-Za-z0-9_-]{16,}$/;

/**
 * Reads the admin token kept in `path`, or creates one (256 random bits,
 * base64url, prefixed `hsm_` so it is recognisable in a leak scan) and stores
 * it with mode 0600. Restarts reuse the stored token.
 */
export async function loadOrCreateAdminToken(path: string): Promise<AdminToken> {
  for (;;) {
    try {
      const token = (await readFile(path, 'utf8')).trim();
      if (!TOKEN_RE.test(token)) {
        throw new AdminTokenFileError(`${path}: expected one token of at least 16 characters [A-Za-z0-9_-]`);
      }
      return { token, created: false };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const token = `hsm_${randomBytes(32).toString('base64url')}`;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      await writeFile(path, `${token}\n`, { flag: 'wx', mode: 0o600 });
      return { token, created: true };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}
