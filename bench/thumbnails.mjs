#!/usr/bin/env node
// @hsmedia/thumbnailer: time to generate the five sizes the spec recommends (https://spec.matrix.org/v1.12/client-server-api/#thumbnails: 32x32 and
// 96x96 crop, 320x240, 640x480 and 800x600 scale) from one 4000x3000 JPEG (noise over a gradient,
// quality 90, made here with sharp). Median of N runs after warm-up.
// Reference: the best published peer figure is ~295 ms (libvips).
//
//   npx tsc -b packages/thumbnailer && node bench/thumbnails.mjs [runs=15] [warmup=3]
import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { DEFAULT_THUMBNAIL_SIZES, SharpThumbnailer } from '../packages/thumbnailer/dist/index.js';

const RUNS = Number(process.argv[2] ?? 15);
const WARMUP = Number(process.argv[3] ?? 3);
const REFERENCE_MS = 295;
const WIDTH = 4000;
const HEIGHT = 3000;

// No libvips operation cache: every run must really decode the source.
sharp.cache(false);

/** A photo-like source: a colour gradient with noise on top, so JPEG has real work to do. */
async function makeSource() {
  const gradient = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 3;
      gradient[i] = (x * 255) / WIDTH;
      gradient[i + 1] = (y * 255) / HEIGHT;
      gradient[i + 2] = ((x + y) * 255) / (WIDTH + HEIGHT);
    }
  }
  const noise = await sharp({
    create: { width: WIDTH, height: HEIGHT, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 24 } },
  })
    .raw()
    .toBuffer();
  for (let i = 0; i < gradient.length; i++) gradient[i] = Math.max(0, Math.min(255, gradient[i] + noise[i] - 128));
  return sharp(gradient, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** The source as a stream of 64 KiB chunks, as a blob store would hand it over. */
function streamOf(bytes) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + 65536));
      offset += 65536;
    },
  });
}

const source = await makeSource();
const thumbnailer = new SharpThumbnailer();
const times = [];
let last;
for (let run = 0; run < WARMUP + RUNS; run++) {
  const started = performance.now();
  last = await thumbnailer.generate(streamOf(source), 'image/jpeg', DEFAULT_THUMBNAIL_SIZES);
  const elapsed = performance.now() - started;
  if (run >= WARMUP) times.push(elapsed);
}
times.sort((a, b) => a - b);
const median = times.length % 2 === 1 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;

const outputs = last.map((t) => `${t.spec.method} ${t.spec.width}x${t.spec.height} → ${t.width}x${t.height} ${t.contentType} ${t.bytes.length} B`);
process.stdout.write(
  [
    `thumbnails: ${WIDTH}x${HEIGHT} JPEG (${(source.length / 1024 / 1024).toFixed(1)} MiB, q90) → the 5 recommended sizes`,
    ...outputs.map((line) => `  ${line}`),
    `  machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, libvips ${sharp.versions.vips}, sharp.concurrency ${sharp.concurrency()}`,
    `  runs: ${RUNS} after ${WARMUP} warm-up; min ${times[0].toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms`,
    `  median: ${median.toFixed(1)} ms (reference: best published peer ~${REFERENCE_MS} ms with libvips) → ${median < REFERENCE_MS ? 'below' : 'ABOVE'} the reference`,
    '',
  ].join('\n'),
);
