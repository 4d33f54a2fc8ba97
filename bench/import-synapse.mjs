#!/usr/bin/env node
/**
 * Measures `hsmedia-server import-synapse` (issue 24) against a plain `cp -r`
 * of the same media_store tree, in one run: files/s, MB/s and CPU seconds
 * per GiB of each, and the throughput ratio import / cp (target >= 0.5).
 *
 * The fixture is generated here: a Synapse SQLite database (the
 * `local_media_repository` table as Synapse's schema defines it, with
 * `sha256`, which the import checks) and `--files` local media files of
 * mixed sizes, 1 KiB to 5 MiB (60 % up to 16 KiB, 30 % up to 512 KiB, 10 %
 * up to 5 MiB, log-uniform within each band), in Synapse's
 * `local_content/ab/cd/rest` layout. The import runs the built CLI into
 * SQLite and the filesystem store (fsync on, as configured by default);
 * `cp -r` runs before and after the imports and the mean counts. The page
 * cache is not dropped (all read a tree that was just written), but dirty
 * pages are written back (`sync`, untimed) before each timed run. Modes:
 * `copy` (copied into the store by its copy workers, the command's default)
 * and `link` (`--link`: hard-linked, read once to hash).
 *
 * `--rounds N` repeats the `cp -r` / imports sequence N times on the same
 * fixture and reports the median ratio (the machine may be shared: a ratio
 * within one round is steadier than a throughput). `--baseline-cli PATH`
 * also runs the imports with another build's `dist/cli.js` in every round
 * (e.g. a checkout of the previous commit), for a before/after in one run.
 * CPU is given per GiB and per file (ms): the import's CPU per file is the
 * figure a loaded machine changes least.
 *
 * Usage: node bench/import-synapse.mjs [--files 10000] [--concurrency N (default: the command's)] [--modes copy,link] [--rounds 1] [--baseline-cli PATH] [--keep]
 * Needs a build (`npx turbo run build --filter=@hsmedia/media-server`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(HERE, '..', 'apps', 'media-server', 'dist', 'cli.js');
const KIB = 1024;
const MIB = 1024 * KIB;
const { values: options } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    concurrency: { type: 'string' },
    modes: { type: 'string', default: 'copy,link' },
    rounds: { type: 'string', default: '1' },
    'baseline-cli': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx turbo run build --filter=@hsmedia/media-server)`);
const files = Number(options.files);
const rounds = Number(options.rounds);
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
const builds = [{ name: '', cli: CLI }, ...(options['baseline-cli'] === undefined ? [] : [{ name: 'baseline ', cli: path.resolve(options['baseline-cli']) }])];
for (const { cli } of builds) if (!existsSync(cli)) throw new Error(`${cli} is missing`);
const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-import-synapse-'));

/** A small deterministic PRNG (mulberry32), so every run has the same sizes. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sizeOf(random) {
  const band = random();
  const [lo, hi] = band < 0.6 ? [KIB, 16 * KIB] : band < 0.9 ? [16 * KIB, 512 * KIB] : [512 * KIB, 5 * MIB];
  return Math.round(Math.exp(Math.log(lo) + random() * (Math.log(hi) - Math.log(lo))));
}

/** CPU seconds of this process's waited-for children (cutime + cstime of /proc/self/stat). */
function childrenCpuSeconds() {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // Fields after "(comm) ": state is index 0, so cutime/cstime (fields 16/17) are 13/14.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/**
 * Times one run from a clean page cache state: `sync` first (not timed), so
 * no run pays for writing back what the one before it (or the fixture)
 * left dirty — a real media_store is on disk long before it is imported.
 */
function timed(run) {
  execFileSync('sync');
  const cpu0 = childrenCpuSeconds();
  const t0 = process.hrtime.bigint();
  run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, cpuSeconds: childrenCpuSeconds() - cpu0 };
}

try {
  // --- Fixture -------------------------------------------------------------
  const mediaStore = path.join(work, 'media_store');
  const db = new Database(path.join(work, 'homeserver.db'));
  db.exec(
    'CREATE TABLE local_media_repository ( media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT, upload_name TEXT, user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT, safe_from_quarantine BOOLEAN NOT NULL DEFAULT 0, authenticated BOOLEAN DEFAULT FALSE NOT NULL, sha256 TEXT, UNIQUE (media_id) )',
  );
  db.exec('CREATE TABLE remote_media_cache ( media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT, media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT, authenticated BOOLEAN DEFAULT FALSE NOT NULL, sha256 TEXT, UNIQUE (media_origin, media_id) )');
  db.exec('CREATE TABLE local_media_repository_thumbnails ( media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_type TEXT, thumbnail_method TEXT, thumbnail_length INTEGER, UNIQUE ( media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method ) )');
  db.exec('CREATE TABLE remote_media_cache_thumbnails ( media_origin TEXT, media_id TEXT, thumbnail_width INTEGER, thumbnail_height INTEGER, thumbnail_method TEXT, thumbnail_type TEXT, thumbnail_length INTEGER, filesystem_id TEXT, UNIQUE ( media_origin, media_id, thumbnail_width, thumbnail_height, thumbnail_type, thumbnail_method ) )');
  const insert = db.prepare('INSERT INTO local_media_repository (media_id, media_type, media_length, created_ts, upload_name, user_id, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const pool = randomBytes(5 * MIB + 64);
  const random = prng(24);
  let totalBytes = 0;
  const started = Date.now();
  db.exec('BEGIN');
  for (let i = 0; i < files; i++) {
    const mediaId = `${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}${i}`;
    const size = sizeOf(random);
    const offset = Math.floor(random() * 64);
    // A unique first block, so no two files are equal (no accidental dedup).
    const bytes = Buffer.concat([Buffer.from(mediaId.padEnd(32, '.')), pool.subarray(offset, offset + size - 32)]).subarray(0, size);
    const dir = path.join(mediaStore, 'local_content', mediaId.slice(0, 2), mediaId.slice(2, 4));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, mediaId.slice(4)), bytes);
    insert.run(mediaId, 'application/octet-stream', size, started + i, `file${i}.bin`, '@bench:bench.localhost', createHash('sha256').update(bytes).digest('hex'));
    totalBytes += size;
  }
  db.exec('COMMIT');
  db.close();
  const gib = totalBytes / (1024 * MIB);
  console.log(`fixture: ${files} files, ${(totalBytes / MIB).toFixed(0)} MiB (mean ${(totalBytes / files / KIB).toFixed(0)} KiB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // --- Runs ----------------------------------------------------------------
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
  const row = (name, run) =>
    `${name.padEnd(32)} ${run.seconds.toFixed(1).padStart(7)} s ${(files / run.seconds).toFixed(0).padStart(8)} files/s ${(totalBytes / MIB / run.seconds).toFixed(0).padStart(6)} MiB/s ${(run.cpuSeconds / gib).toFixed(2).padStart(7)} CPU s/GiB ${((run.cpuSeconds / files) * 1000).toFixed(2).padStart(6)} CPU ms/file`;
  const ratios = new Map();
  let copies = 0;
  const cp = () => {
    copies++;
    const target = path.join(work, `copy-${copies}`);
    const run = timed(() => execFileSync('cp', ['-r', mediaStore, target]));
    rmSync(target, { recursive: true, force: true });
    return run;
  };
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round} (load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`);
    const cpBefore = cp();
    const imports = [];
    for (const build of builds) {
      for (const mode of options.modes.split(',')) {
        const target = path.join(work, `target-${build.name.trim() || 'current'}-${mode}`);
        rmSync(target, { recursive: true, force: true });
        mkdirSync(target);
        const config = path.join(target, 'config.yaml');
        writeFileSync(
          config,
          [
            'server_name: bench.localhost',
            `database:\n  sqlite:\n    path: ${path.join(target, 'media.db')}`,
            `media_store:\n  filesystem:\n    path: ${path.join(target, 'media')}`,
            `signing_key_path: ${path.join(target, 'signing.key')}`,
            '',
          ].join('\n'),
        );
        let exitStatus = 0;
        let output = '';
        const run = timed(() => {
          const result = spawnSync(
            process.execPath,
            [build.cli, 'import-synapse', '--config', config, '--database', path.join(work, 'homeserver.db'), '--media-store', mediaStore, '--report', path.join(target, 'report.jsonl'), '--state', path.join(target, 'state.json'), ...(options.concurrency === undefined ? [] : ['--concurrency', options.concurrency]), ...(mode === 'link' ? ['--link'] : [])],
            { cwd: target, encoding: 'utf8', maxBuffer: 64 * MIB },
          );
          exitStatus = result.status ?? 1;
          output = `${result.stdout}${exitStatus === 0 ? '' : result.stderr}`;
        });
        if (exitStatus !== 0) throw new Error(`import-synapse (${build.name}${mode}) exited with ${exitStatus}:\n${output}`);
        if (!output.includes(`media: imported ${files}`)) throw new Error(`unexpected import summary:\n${output}`);
        imports.push({ name: `${build.name}${mode}`, run });
        rmSync(target, { recursive: true, force: true });
      }
    }
    const cpAfter = cp();
    const cpMean = { seconds: (cpBefore.seconds + cpAfter.seconds) / 2, cpuSeconds: (cpBefore.cpuSeconds + cpAfter.cpuSeconds) / 2 };
    console.log(row('cp -r (before)', cpBefore));
    console.log(row('cp -r (after)', cpAfter));
    for (const { name, run } of imports) {
      console.log(row(`import ${name} (c=${options.concurrency ?? 'default'})`, run));
      const ratio = cpMean.seconds / run.seconds;
      const cpuRatio = run.cpuSeconds / cpMean.cpuSeconds;
      console.log(`  ratio ${name}/cp throughput: ${ratio.toFixed(2)}x (target >= 0.5x); CPU: ${cpuRatio.toFixed(1)}x cp's`);
      ratios.set(name, [...(ratios.get(name) ?? []), { ratio, cpuPerFileMs: (run.cpuSeconds / files) * 1000, seconds: run.seconds }]);
    }
  }
  if (rounds > 1) {
    console.log(`median of ${rounds} rounds:`);
    for (const [name, values] of ratios) {
      console.log(
        `  ${name.padEnd(16)} throughput / cp -r ${median(values.map((v) => v.ratio)).toFixed(2)}x, ${median(values.map((v) => files / v.seconds)).toFixed(0)} files/s, CPU ${median(values.map((v) => v.cpuPerFileMs)).toFixed(2)} ms/file`,
      );
    }
  }
} finally {
  if (options.keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
