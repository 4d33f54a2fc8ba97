#!/usr/bin/env node
/**
 * Measures the archive commands against plain tar in the same run:
 * `import-mmr` of a matrix-media-repo export (N files, 1 KiB–5 MiB,
 * log-uniform) against `tar -xzf` of the same parts, and `export --server`
 * of the imported media against `tar -czf` of the blob directory. Reports
 * files/s, MB/s, CPU seconds per GiB and peak RSS, and the ratios.
 *
 * Usage: node bench/archive.mjs [--files 300] [--part-mib 256]
 * Needs a prior build (`npm run build`) and tar.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(HERE, '..', 'apps', 'media-server', 'dist', 'cli.js');
const { ArchivePartWriter } = await import(path.join(HERE, '..', 'apps', 'media-server', 'dist', 'commands', 'archive-writer.js'));
const { values: options } = parseArgs({ options: { files: { type: 'string', default: '300' }, 'part-mib': { type: 'string', default: '256' } } });
const FILES = Number(options.files);
const PART_BYTES = Number(options['part-mib']) * 1024 * 1024;
const GIB = 1024 ** 3;
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-archive-'));

/** Runs a command; resolves with wall seconds, CPU seconds (user + system of it and its children) and peak RSS. */
function measure(command, args, env = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    // `time -f` is not everywhere; bash's `times` after the command gives the children's CPU.
    const child = spawn('bash', ['-c', '"$@" >/dev/null 2>"$BENCH_ERR"; status=$?; times; exit $status', 'bench', command, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_ERR: path.join(work, 'stderr.txt'), ...env },
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} exited ${code}`));
      // `times`: shell user/sys, then children user/sys, as 0m1.234s.
      const seconds = [...out.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      resolve({ wall, cpu: seconds[2] + seconds[3] });
    });
  });
}

function sizeOf(index) {
  // Log-uniform 1 KiB–5 MiB, deterministic per index.
  const unit = createHash('sha256').update(String(index)).digest().readUInt32BE(0) / 2 ** 32;
  return Math.round(1024 * Math.exp(unit * Math.log(5 * 1024)));
}

// 1. A matrix-media-repo export (its v2 layout: export-part-N.tgz and export-manifest.tgz).
const archive = path.join(work, 'archive');
mkdirSync(archive);
const writer = new ArchivePartWriter(archive);
const media = {};
let partNumber = 1;
let partBytes = 0;
let totalBytes = 0;
writer.begin(`export-part-${partNumber}.tgz`);
for (let index = 0; index < FILES; index++) {
  const bytes = randomBytes(sizeOf(index));
  const name = `bench.test__media${index}.bin`;
  await writer.addBuffer(name, bytes);
  media[`mxc://bench.test/media${index}`] = {
    name: `f${index}.bin`,
    file_name: name,
    size_bytes: bytes.length,
    content_type: 'application/octet-stream',
    s3_url: '',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    origin: 'bench.test',
    media_id: `media${index}`,
    created_ts: Date.now(),
    uploader: '@bench:bench.test',
  };
  partBytes += bytes.length;
  totalBytes += bytes.length;
  if (partBytes >= PART_BYTES) {
    await writer.finish();
    writer.begin(`export-part-${++partNumber}.tgz`);
    partBytes = 0;
  }
}
await writer.finish();
writer.begin('export-manifest.tgz');
await writer.addBuffer('manifest.json', Buffer.from(JSON.stringify({ version: 2, entity_id: 'bench.test', created_ts: Date.now(), media })));
await writer.finish();
const parts = readdirSync(archive).map((name) => path.join(archive, name));

const config = path.join(work, 'config.yaml');
writeFileSync(config, `server_name: bench.test\ndatabase:\n  sqlite:\n    path: ${work}/media.db\nmedia_store:\n  filesystem:\n    path: ${work}/media\nlog_level: warn\n`);

// The CLI's fixed cost (loading the server's modules, opening and migrating the database), reported beside.
const startup = await measure(process.execPath, [CLI, 'migrate', '--config', config]);

// 2. Baseline: tar -xzf of every part; then import-mmr of the same parts.
const extracted = path.join(work, 'extracted');
mkdirSync(extracted);
const tarX = await measure('bash', ['-c', `for p in "$@"; do tar -xzf "$p" -C ${extracted}; done`, 'x', ...parts]);
const usage = path.join(work, 'usage.json');
const report = `import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(${JSON.stringify(usage)}, JSON.stringify(process.resourceUsage())));`;
writeFileSync(path.join(work, 'usage.mjs'), report);
// The same reading and hashing without storing anything.
const dryRun = await measure(process.execPath, [CLI, 'import-mmr', archive, '--dry-run', '--config', config]);
const imported = await measure(process.execPath, ['--import', path.join(work, 'usage.mjs'), CLI, 'import-mmr', archive, '--config', config]);
const importRss = JSON.parse(execFileSync('cat', [usage], { encoding: 'utf8' })).maxRSS * 1024;

// 3. Baseline: tar -czf of the blob directory; then export --server.
const tarC = await measure('tar', ['-czf', path.join(work, 'baseline.tar.gz'), '-C', path.join(work, 'media'), 'blobs']);
const exported = await measure(process.execPath, ['--import', path.join(work, 'usage.mjs'), CLI, 'export', '--server', '--out', path.join(work, 'export'), '--config', config]);
const exportRss = JSON.parse(execFileSync('cat', [usage], { encoding: 'utf8' })).maxRSS * 1024;
const exportBytes = readdirSync(path.join(work, 'export')).reduce((sum, name) => sum + statSync(path.join(work, 'export', name)).size, 0);

const row = (label, run, rss) =>
  `${label.padEnd(26)} ${(FILES / run.wall).toFixed(1).padStart(8)} files/s ${(totalBytes / run.wall / 1e6).toFixed(1).padStart(7)} MB/s ${((run.cpu / totalBytes) * GIB).toFixed(2).padStart(6)} CPU s/GiB${rss === undefined ? '' : `  peak RSS ${(rss / 1024 / 1024).toFixed(0)} MiB`}`;
console.log(`CLI start-up (migrate): ${startup.wall.toFixed(2)} s wall, ${startup.cpu.toFixed(2)} s CPU; included in the import and export rows`);
console.log(`${FILES} files, ${(totalBytes / 1024 / 1024).toFixed(1)} MiB in ${parts.length} parts (export: ${(exportBytes / 1024 / 1024).toFixed(1)} MiB)`);
console.log(row('tar -xzf (baseline)', tarX));
console.log(row('import-mmr --dry-run', dryRun));
console.log(row('import-mmr', imported, importRss));
console.log(`  ratio: throughput ${(tarX.wall / imported.wall).toFixed(2)}x, CPU per GiB ${(imported.cpu / tarX.cpu).toFixed(2)}x of tar (${((imported.cpu - startup.cpu) / tarX.cpu).toFixed(2)}x without the start-up)`);
console.log(row('tar -czf (baseline)', tarC));
console.log(row('export --server', exported, exportRss));
console.log(`  ratio: throughput ${(tarC.wall / exported.wall).toFixed(2)}x, CPU per GiB ${(exported.cpu / tarC.cpu).toFixed(2)}x of tar (${((exported.cpu - startup.cpu) / tarC.cpu).toFixed(2)}x without the start-up)`);
rmSync(work, { recursive: true, force: true });
