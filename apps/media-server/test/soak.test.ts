import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

// The short soak of issue 17: bench/soak.mjs for 60 s (20 s warm-up) on two real servers
// federating over 127.0.0.1. Bounds are looser than the 20-minute default (RSS +50% instead
// of +15%, 16 descriptors of slack) because a minute on a busy 2-core CI machine is mostly
// warm-up; a descriptor per request, or memory kept per request, still trips them.
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

beforeAll(async () => {
  await promisify(execFile)('npx', ['tsc', '-b', 'apps/media-server'], { cwd: repoRoot });
}, 240_000);

describe('soak (short)', () => {
  it('a minute of mixed load: every request 2xx, RSS and descriptors flat after warm-up', async () => {
    const dir = await tempDir('hsmedia-soak-test-');
    try {
      const json = join(dir.path, 'soak.json');
      const args = ['bench/soak.mjs', '--duration', '60', '--warmup', '20', '--sample', '5', '--concurrency', '3'];
      args.push('--rss-tolerance', '0.5', '--fd-slack', '16', '--json', json);
      const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, output).toBe(0);
      const report = JSON.parse(await readFile(json, 'utf8')) as {
        ok: boolean;
        failureCount: number;
        routes: { route: string; requests: number; statuses: Record<string, number> }[];
        checks: { check: string; ok: boolean }[];
      };
      expect(report.ok).toBe(true);
      expect(report.failureCount).toBe(0);
      const routes = new Map(report.routes.map((route) => [route.route, route]));
      for (const route of ['upload', 'download', 'thumbnail', 'async create', 'async upload', 'federation fetch']) {
        expect(routes.get(route)?.requests ?? 0, route).toBeGreaterThan(0);
      }
      for (const route of report.routes) expect(Object.keys(route.statuses).every((status) => status.startsWith('2')), route.route).toBe(true);
      // Both servers, RSS and descriptors each.
      expect(report.checks.filter((check) => check.check === 'rss')).toHaveLength(2);
      expect(report.checks.filter((check) => check.check === 'fds')).toHaveLength(2);
    } finally {
      await dir.cleanup();
    }
  }, 300_000);
});
