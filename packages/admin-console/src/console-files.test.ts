import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_CONSOLE_CONTENT_SECURITY_POLICY, ADMIN_CONSOLE_SECURITY_HEADERS, loadAdminConsole } from './index.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A directory shaped like Vite's output. */
async function built(files: Record<string, string>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'hsmedia-console-files-'));
  await mkdir(join(dir, 'assets'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

describe('loadAdminConsole', () => {
  it('gives the page and the hashed assets by exact path, with their types and cache rules (README example)', async () => {
    const directory = await built({ 'index.html': '<!doctype html><script type="module" src="/_hsmedia/admin/assets/index-abc123.js"></script>', 'assets/index-abc123.js': 'export {};', 'assets/index-def456.css': 'body{}' });
    const files = await loadAdminConsole({ directory });
    const page = files.file('');
    expect(page?.contentType).toBe('text/html; charset=utf-8');
    expect(page?.cacheControl).toBe('no-cache');
    expect(page?.body.toString()).toContain('index-abc123.js');
    const script = files.file('assets/index-abc123.js');
    expect(script?.contentType).toBe('text/javascript; charset=utf-8');
    expect(script?.cacheControl).toBe('public, max-age=31536000, immutable');
    expect(script?.etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    expect(files.file('assets/index-def456.css')?.contentType).toBe('text/css; charset=utf-8');
    expect([...files.paths].sort()).toEqual(['', 'assets/index-abc123.js', 'assets/index-def456.css']);
    for (const path of ['index.html', '../index.html', 'assets/../index.html', 'assets/nope.js', '/']) expect(files.file(path), path).toBeUndefined();
  });

  it('refuses a directory without a built page, or with a file type it does not know', async () => {
    await expect(loadAdminConsole({ directory: await built({}) })).rejects.toThrow(/index\.html is missing/);
    await rm(dir!, { recursive: true, force: true });
    await expect(loadAdminConsole({ directory: await built({ 'index.html': '', 'assets/x.exe': 'MZ' }) })).rejects.toThrow(/unexpected file type/);
  });

  it('has a policy without inline script or style and never framed', () => {
    expect(ADMIN_CONSOLE_CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
    expect(ADMIN_CONSOLE_CONTENT_SECURITY_POLICY).toContain("img-src 'self' blob:");
    expect(ADMIN_CONSOLE_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-(inline|eval)/);
    expect(ADMIN_CONSOLE_SECURITY_HEADERS['X-Frame-Options']).toBe('DENY');
  });
});
