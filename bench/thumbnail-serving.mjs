#!/usr/bin/env node
// Serving a stored thumbnail vs a plain download of a file of the same size, from the same
// reference server (apps/media-server/dist/cli.js, SQLite + filesystem store, default caches):
// requests/s at N connections, wrk when on PATH, else autocannon. Target: the thumbnail within
// 10% of the download (ratio >= 0.9). Runs alternate (download, thumbnail, download, thumbnail)
// and the best of each is compared, so a noisy neighbour hurts both alike.
//
//   npx tsc -b apps/media-server && node bench/thumbnail-serving.mjs [--duration 10] [--warmup 2] \
//     [--connections 32] [--rounds 2] [--size 96x96/crop] [--tool wrk|autocannon]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { measureGetLoad, pickLoadTool } from './lib/load.mjs';
import { startReferenceServer } from './lib/servers.mjs';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '2' },
    size: { type: 'string', default: '96x96/crop' },
    tool: { type: 'string' },
  },
});
const durationSec = Number(values.duration);
const warmupSec = Number(values.warmup);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const [dims, method] = values.size.split('/');
const [width, height] = dims.split('x').map(Number);
const tool = pickLoadTool(values.tool);

async function photo(w, h) {
  const pixels = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      pixels[i] = (x * 255) / w;
      pixels[i + 1] = (y * 255) / h;
      pixels[i + 2] = ((x ^ y) * 7) & 255;
    }
  }
  return sharp(pixels, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'hsmedia-thumb-bench-'));
const token = randomBytes(16).toString('hex');
const serverName = 'bench.test';
const server = await startReferenceServer({
  dataDir,
  token,
  userId: `@bench:${serverName}`,
  serverName,
  logFile: path.join(dataDir, 'server.log'),
});
const headers = { Authorization: `Bearer ${token}` };

async function upload(body, contentType) {
  const res = await fetch(`${server.url}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': contentType },
    body,
  });
  if (res.status !== 200) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return (await res.json()).content_uri.slice(`mxc://${serverName}/`.length);
}

try {
  const imageId = await upload(await photo(1600, 1200), 'image/jpeg');
  const thumbnailUrl = `${server.url}/_matrix/client/v1/media/thumbnail/${serverName}/${imageId}?width=${width}&height=${height}&method=${method}`;
  const first = await fetch(thumbnailUrl, { headers });
  if (first.status !== 200) throw new Error(`thumbnail: ${first.status} ${await first.text()}`);
  const thumbnailBytes = Buffer.from(await first.arrayBuffer());
  const fileId = await upload(randomBytes(thumbnailBytes.length), 'image/jpeg');
  const downloadUrl = `${server.url}/_matrix/client/v1/media/download/${serverName}/${fileId}`;

  const best = { download: 0, thumbnail: 0 };
  for (let round = 0; round < rounds; round++) {
    for (const [name, url] of [
      ['download', downloadUrl],
      ['thumbnail', thumbnailUrl],
    ]) {
      const result = await measureGetLoad({ tool, url, headers, connections, durationSec, warmupSec });
      console.log(`round ${round + 1} ${name.padEnd(9)} ${result.requestsPerSec.toFixed(0)} req/s`);
      best[name] = Math.max(best[name], result.requestsPerSec);
    }
  }
  const ratio = best.thumbnail / best.download;
  console.log(
    JSON.stringify(
      {
        tool,
        connections,
        durationSec,
        size: `${width}x${height}/${method}`,
        bytes: thumbnailBytes.length,
        downloadReqPerSec: Math.round(best.download),
        thumbnailReqPerSec: Math.round(best.thumbnail),
        ratio: Number(ratio.toFixed(3)),
        target: '>= 0.9',
        met: ratio >= 0.9,
      },
      null,
      2,
    ),
  );
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
