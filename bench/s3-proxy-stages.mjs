#!/usr/bin/env node
/**
 * Where the CPU of a proxied S3 download goes: one throwaway Ceph RGW, one 32 MiB object, and in
 * this process a bare `node:http` server answering it along several byte paths, loaded by wrk
 * (1 connection) in interleaved rounds. For each: MiB/s, CPU per GiB of this process (user and
 * system) and of radosgw.
 *   - `direct`: wrk GETs the presigned URL from radosgw (this process idle): the baseline;
 *   - `receive`: no client; this process GETs the object through the SDK and drops the bytes
 *     (no wrk): what receiving alone costs;
 *   - `pipe`: the SDK's response `.pipe(res)`: the floor of Node's HTTP in and out;
 *   - `web-stream`: the path before issue 15: the response behind a Web stream reading one chunk
 *     ahead, pumped with a `read()` promise per chunk (media-routes' `pumpWebStream` shape);
 *   - `push`: `S3BlobStore.open` taken as a push body, as media-routes' `writeStreamBody` does now.
 *
 *   npm run build && node bench/s3-proxy-stages.mjs [--duration 6] [--rounds 3]
 *
 * Bounded: rounds × 5 × duration seconds plus a ~10 s cluster start.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { takePushBody } from '@hsmedia/media-core';
import { S3BlobStore, createS3Client } from '@hsmedia/store-s3';
import { readCpuSeconds } from './lib/process-stats.mjs';
import { startRgw } from './lib/servers.mjs';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '6' }, rounds: { type: 'string', default: '3' } } });
const durationSec = Number(values.duration);
const rounds = Number(values.rounds);
const SIZE = 32 * 1024 * 1024;
const GiB = 1024 ** 3;
const run = promisify(execFile);
const log = (message) => process.stderr.write(`bench/s3-proxy-stages: ${message}\n`);

/** The Web stream of the path before issue 15 (store-s3's former `bodyStream`, without abort handling). */
function webStreamOf(body) {
  const iterator = body[Symbol.asyncIterator]();
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    },
    cancel: () => body.destroy(),
  });
}

async function pump(stream, res) {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return void res.end();
    if (!res.write(value)) await new Promise((resolve) => res.once('drain', resolve));
  }
}

function push(body, res) {
  const controls = body.attach({ write: (chunk) => res.write(chunk), end: () => res.end(), abort: () => res.destroy() });
  res.on('drain', () => controls.drained());
  res.once('close', () => {
    if (!res.writableFinished) controls.gone(new Error('client disconnected'));
  });
}

const work = mkdtempSync(path.join(tmpdir(), 'hsmedia-bench-s3-stages-'));
const loadStart = loadavg()[0];
let rgw;
let server;
try {
  log('starting Ceph RGW');
  rgw = await startRgw({ dir: path.join(work, 'rgw'), memstoreBytes: 512 * 1024 * 1024 });
  await rgw.createBucket('stages');
  const { s3: s3Section } = rgw.mediaStore('stages', 'p/');
  const client = createS3Client({ endpoint: s3Section.endpoint, forcePathStyle: true, accessKeyId: s3Section.access_key_id, secretAccessKey: s3Section.secret_access_key });
  const store = new S3BlobStore({ client, bucket: 'stages', prefix: 'p/' });
  const { blobId } = await store.put(new Blob([Buffer.alloc(SIZE, 7)]).stream());
  const getObject = async () => (await client.send(new GetObjectCommand({ Bucket: 'stages', Key: `p/${blobId}` }))).Body;
  server = createServer(async (req, res) => {
    res.writeHead(200, { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' });
    const mode = req.url.slice(1);
    if (mode === 'pipe') (await getObject()).pipe(res);
    else if (mode === 'web-stream') await pump(webStreamOf(await getObject()), res);
    else push(takePushBody(await store.open(blobId)), res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const direct = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'stages', Key: `p/${blobId}` }), { expiresIn: 3600 });

  const modes = { direct, receive: null, pipe: `${base}/pipe`, 'web-stream': `${base}/web-stream`, push: `${base}/push` };
  const totals = Object.fromEntries(Object.keys(modes).map((mode) => [mode, { bytes: 0, seconds: 0, user: 0, system: 0, rgw: 0 }]));
  for (let round = 0; round < rounds; round++) {
    for (const [mode, url] of Object.entries(modes)) {
      const cpu = process.cpuUsage();
      const rgwBefore = readCpuSeconds(rgw.pid);
      const started = performance.now();
      let bytes = 0;
      if (url === null) {
        while (performance.now() - started < durationSec * 1000) {
          for await (const chunk of await getObject()) bytes += chunk.length;
        }
      } else {
        // Async: wrk must not block this process, which serves the proxied modes.
        const { stdout } = await run('wrk', ['-t1', '-c1', `-d${durationSec}s`, '--timeout', '60s', url]);
        const match = /requests in [\d.]+\w+, ([\d.]+)([KMG]?B) read/.exec(stdout);
        bytes = Number(match[1]) * { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[match[2]];
      }
      const used = process.cpuUsage(cpu);
      const total = totals[mode];
      total.bytes += bytes;
      total.seconds += (performance.now() - started) / 1000;
      total.user += used.user / 1e6;
      total.system += used.system / 1e6;
      total.rgw += readCpuSeconds(rgw.pid) - rgwBefore;
    }
  }
  client.destroy();
  const perGiB = (seconds, t) => ((seconds / t.bytes) * GiB).toFixed(2);
  const lines = [
    '| path (32 MiB, 1 conn.) | MiB/s | node CPU s/GiB (user + sys) | radosgw CPU s/GiB |',
    '| --- | --- | --- | --- |',
    ...Object.entries(totals).map(
      ([mode, t]) =>
        `| ${mode} | ${(t.bytes / t.seconds / 1024 ** 2).toFixed(1)} | ${perGiB(t.user + t.system, t)} (${perGiB(t.user, t)} + ${perGiB(t.system, t)}) | ${perGiB(t.rgw, t)} |`,
    ),
    '',
    `wrk; load average ${loadStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end (${rounds} rounds × ${durationSec} s per path)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  server?.close();
  rgw?.stop();
  rmSync(work, { recursive: true, force: true });
}
