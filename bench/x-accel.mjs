#!/usr/bin/env node
/**
 * `delivery: x_accel` behind nginx (apps/media-server/deploy/nginx.conf, addresses adapted): an
 * authenticated download answered by hsmedia with `X-Accel-Redirect` and sent by nginx from the
 * `internal` location, vs nginx serving the very same file statically (no hsmedia at all), for
 * 32 MiB (target ≥ 0.9×) and 1 KiB (target ≥ 0.7×), in interleaved rounds, with the CPU of hsmedia
 * and of the nginx workers per GiB (32 MiB) or per 1000 requests (1 KiB).
 *
 *   npm run build && node bench/x-accel.mjs [--duration 8] [--rounds 2] [--warmup 1] [--connections 4]
 *                                           [--tool wrk|autocannon]
 *
 * Needs nginx (Debian's nginx-light: `apt-get install nginx-light`). Writes JSON to
 * .bench-out/x-accel-latest.json. Bounded: about 2 sizes × 2 servers × (duration + warm-up).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { freePort, NGINX_BINARY, startNginx, startReferenceServer, treeCpuSeconds } from './lib/servers.mjs';
import { uploadBuffer } from './lib/upload.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLE = path.join(REPO_ROOT, 'apps', 'media-server', 'deploy', 'nginx.conf');
const MIB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '4' },
    tool: { type: 'string', default: 'auto' },
  },
});
const roundCount = Math.max(1, Number(values.rounds));
const roundSec = Math.max(1, Math.round(Number(values.duration) / roundCount));
const warmupSec = Number(values.warmup);
const connections = Number(values.connections);
const tool = pickLoadTool(values.tool);
const TOKEN = `bench_${randomBytes(8).toString('hex')}`;
const SERVER_NAME = 'bench.localhost';
const headers = { authorization: `Bearer ${TOKEN}` };
const log = (message) => process.stderr.write(`bench/x-accel: ${message}\n`);

if (NGINX_BINARY === undefined) {
  log('nginx is not installed (apt-get install nginx-light)');
  process.exit(1);
}

/** CPU seconds of every worker of nginx. */
const nginxWorkerCpu = () => treeCpuSeconds(nginx.workerPids());

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-xaccel-'));
// nginx's workers (user nobody under root) read the media files, as in a deployment.
chmodSync(work, 0o755);
let hsmedia;
let nginx;
const loadStart = loadavg()[0];
try {
  const dataDir = path.join(work, 'server');
  mkdirSync(dataDir);
  hsmedia = await startReferenceServer({
    dataDir,
    token: TOKEN,
    userId: `@bench:${SERVER_NAME}`,
    serverName: SERVER_NAME,
    logFile: path.join(work, 'server.log'),
    extraConfig: { delivery: 'x_accel' },
  });
  const mediaDir = path.join(dataDir, 'media');
  const nginxPort = await freePort();
  // The sample as an operator would use it (addresses, TLS and the alias changed), plus a static
  // location serving the same directory: the baseline.
  const site = readFileSync(SAMPLE, 'utf8')
    .replace(/server 127\.0\.0\.1:8009;/, `server ${new URL(hsmedia.url).host};`)
    .replace(/server 127\.0\.0\.1:8008;/, `server 127.0.0.1:${nginxPort};`)
    .replace(/^\s*listen 443 ssl;.*$/m, `    listen 127.0.0.1:${nginxPort};`)
    .replace(/^\s*listen 8448 ssl;.*$/m, '')
    .replace(/^\s*ssl_certificate(_key)? .*$/gm, '')
    .replace(/alias \/var\/lib\/hsmedia\/media\/;/, `alias ${mediaDir}/;`)
    .replace(/# Everything else belongs to the homeserver\./, `location ^~ /static/ {\n        alias ${mediaDir}/;\n    }\n\n    # Everything else belongs to the homeserver.`);
  const nginxUrl = `http://127.0.0.1:${nginxPort}`;
  nginx = await startNginx({ prefix: path.join(work, 'nginx'), site, probeUrl: `${nginxUrl}/_matrix/client/versions` });

  const results = [];
  for (const [label, size] of [['32 MiB', 32 * MIB], ['1 KiB', 1024]]) {
    const bytes = randomBytes(size);
    const uploaded = await uploadBuffer({ url: `${hsmedia.url}/_matrix/media/v3/upload`, headers, bytes });
    const download = `${nginxUrl}/_matrix/client/v1/media/download/${SERVER_NAME}/${uploaded.content_uri.split('/').pop()}`;
    const answer = await fetch(download.replace(nginxUrl, hsmedia.url), { headers });
    const accelPath = answer.headers.get('x-accel-redirect');
    await answer.arrayBuffer();
    if (accelPath === null) throw new Error('hsmedia did not answer X-Accel-Redirect');
    const staticUrl = `${nginxUrl}/static/${accelPath.slice('/_hsmedia_accel/'.length)}`;
    for (const [which, target, h] of [['x-accel', download, headers], ['static', staticUrl, {}]]) {
      const response = await fetch(target, { headers: h });
      const got = Buffer.from(await response.arrayBuffer());
      if (response.status !== 200 || !got.equals(bytes)) throw new Error(`${which} ${label}: ${response.status}, ${got.length} bytes, not the uploaded ones`);
    }
    const totals = { 'x-accel': { bytes: 0, requests: 0, seconds: 0, hsmediaCpu: 0, nginxCpu: 0 }, static: { bytes: 0, requests: 0, seconds: 0, hsmediaCpu: 0, nginxCpu: 0 } };
    for (let round = 0; round < roundCount; round++) {
      for (const [which, target, h] of [['x-accel', download, headers], ['static', staticUrl, {}]]) {
        const nginxBefore = nginxWorkerCpu();
        const result = await measureGetLoad({ tool, url: target, headers: h, connections, durationSec: roundSec, warmupSec: round === 0 ? warmupSec : 0, pid: hsmedia.pid });
        const total = totals[which];
        total.nginxCpu += nginxWorkerCpu() - nginxBefore;
        total.hsmediaCpu += result.cpuSeconds ?? 0;
        total.bytes += result.bytesPerSec * result.seconds;
        total.requests += result.requests;
        total.seconds += result.seconds;
      }
    }
    const perUnit = (seconds, t) => (size >= MIB ? (seconds / t.bytes) * 1024 * MIB : (seconds / t.requests) * 1000);
    const entry = {
      size: label,
      connections,
      xAccelMiBps: totals['x-accel'].bytes / MIB / totals['x-accel'].seconds,
      staticMiBps: totals.static.bytes / MIB / totals.static.seconds,
      xAccelRps: totals['x-accel'].requests / totals['x-accel'].seconds,
      staticRps: totals.static.requests / totals.static.seconds,
      cpuUnit: size >= MIB ? 's/GiB' : 's/1000 req',
      hsmediaCpu: perUnit(totals['x-accel'].hsmediaCpu, totals['x-accel']),
      nginxCpuXAccel: perUnit(totals['x-accel'].nginxCpu, totals['x-accel']),
      nginxCpuStatic: perUnit(totals.static.nginxCpu, totals.static),
    };
    entry.ratio = entry.xAccelRps / entry.staticRps;
    results.push(entry);
    log(`${label} x ${connections}: x-accel ${entry.xAccelRps.toFixed(0)} req/s (${entry.xAccelMiBps.toFixed(1)} MiB/s), static ${entry.staticRps.toFixed(0)} req/s, ratio ${entry.ratio.toFixed(2)}`);
  }

  const target = { '32 MiB': '≥ 0.9×', '1 KiB': '≥ 0.7×' };
  const lines = [
    `| measurement (${connections} conn.) | X-Accel-Redirect | nginx static | ratio | target |`,
    `| --- | --- | --- | --- | --- |`,
    ...results.map((r) =>
      r.size === '1 KiB'
        ? `| ${r.size} download, req/s | ${r.xAccelRps.toFixed(0)} | ${r.staticRps.toFixed(0)} | ${r.ratio.toFixed(2)}× | ${target[r.size]} |`
        : `| ${r.size} download, MiB/s | ${r.xAccelMiBps.toFixed(1)} | ${r.staticMiBps.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${target[r.size]} |`,
    ),
    '',
    `| CPU | X-Accel-Redirect: hsmedia | X-Accel-Redirect: nginx | static: nginx |`,
    `| --- | --- | --- | --- |`,
    ...results.map((r) => `| ${r.size} (${r.cpuUnit}) | ${r.hsmediaCpu.toFixed(3)} | ${r.nginxCpuXAccel.toFixed(3)} | ${r.nginxCpuStatic.toFixed(3)} |`),
    '',
    `tool ${tool}; load average ${loadStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  mkdirSync(path.join(REPO_ROOT, '.bench-out'), { recursive: true });
  writeFileSync(
    path.join(REPO_ROOT, '.bench-out', 'x-accel-latest.json'),
    JSON.stringify({ date: new Date().toISOString(), tool, loadavg: { start: loadStart, end: loadavg()[0] }, results }, null, 2),
  );
} finally {
  await nginx?.stop();
  await hsmedia?.stop();
  rmSync(work, { recursive: true, force: true });
}
