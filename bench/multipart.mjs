#!/usr/bin/env node
// @hsmedia/multipart throughput: decode and encode of a 256 MiB body delivered
// in 64 KiB chunks, each against a plain pass-through stream of the same
// chunks in the same run. Target: >= 90% of pass-through, flat memory.
//
//   npx tsc -b packages/multipart && node --expose-gc bench/multipart.mjs [MiB=256] [runs=5]
import { randomBytes } from 'node:crypto';
import { decodeMultipart, encodeMultipart } from '../packages/multipart/dist/index.js';

const MIB = 2 ** 20;
const CHUNK = 64 * 1024;
const TOTAL = Number(process.argv[2] ?? 256) * MIB;
const RUNS = Number(process.argv[3] ?? 5);
const COUNT = TOTAL / CHUNK;
const BOUNDARY = '6f1b0e0c3c5e4a5b9d2f7a8e1c4b3d2a';

// 16 random 64 KiB chunks, cycled: random bytes exercise the delimiter
// search realistically (LFs and dashes occur), and reuse keeps the source
// itself from allocating.
const POOL = Array.from({ length: 16 }, () => randomBytes(CHUNK));

let rssPeak = 0;
const sampleRss = () => {
  const r = process.memoryUsage.rss();
  if (r > rssPeak) rssPeak = r;
};

/** A pull-based Web stream over a chunk generator (what a fetch body looks like). */
function streamOf(gen) {
  const it = gen();
  return new ReadableStream({
    pull(c) {
      const r = it.next();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
  }, { highWaterMark: 0 });
}

function* contentChunks() {
  for (let i = 0; i < COUNT; i++) yield POOL[i % POOL.length];
}

// The multipart body of contentChunks(), re-cut into exact 64 KiB chunks as
// a network would deliver it (framing not aligned with chunk edges).
const template = encodeMultipart({
  boundary: BOUNDARY,
  content: { stream: streamOf(function* () {}), contentType: 'application/octet-stream', contentDisposition: 'attachment; filename="big.bin"', contentLength: TOTAL },
});
void template.body.cancel();
const { head, tail } = await (async () => {
  const e = encodeMultipart({
    boundary: BOUNDARY,
    content: { stream: streamOf(function* () {}), contentType: 'application/octet-stream', contentDisposition: 'attachment; filename="big.bin"' },
  });
  const parts = [];
  for await (const c of e.body) parts.push(Buffer.from(c));
  const all = Buffer.concat(parts);
  const tailLen = `\r\n--${BOUNDARY}--\r\n`.length;
  return { head: all.subarray(0, all.length - tailLen), tail: all.subarray(all.length - tailLen) };
})();
const h = head.length;
const SHIFTED = POOL.map((c, i) => Buffer.concat([c.subarray(CHUNK - h), POOL[(i + 1) % POOL.length].subarray(0, CHUNK - h)]));
const FIRST = Buffer.concat([head, POOL[0].subarray(0, CHUNK - h)]);
function* bodyChunks() {
  yield FIRST;
  // chunk k (k >= 1) = last h bytes of content chunk k-1, then first CHUNK-h of chunk k
  for (let k = 1; k < COUNT; k++) yield SHIFTED[(k - 1) % POOL.length];
  yield Buffer.concat([POOL[(COUNT - 1) % POOL.length].subarray(CHUNK - h), tail]);
}
const BODY_BYTES = head.length + TOTAL + tail.length;
if (template.contentLength !== BODY_BYTES) throw new Error('declared length mismatch');

async function drain(stream) {
  const reader = stream.getReader();
  let n = 0;
  let k = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) return n;
    n += r.value.length;
    if ((++k & 255) === 0) sampleRss();
  }
}

/** The baseline: a plain pull-through stream of the same chunks. */
function passThrough(source) {
  const reader = source.getReader();
  return new ReadableStream({
    async pull(c) {
      const r = await reader.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

const cases = {
  'decode baseline': async () => drain(passThrough(streamOf(bodyChunks))),
  decode: async () => {
    const r = await decodeMultipart(`multipart/mixed; boundary=${BOUNDARY}`, streamOf(bodyChunks), { maxContentBytes: TOTAL });
    if (r.kind !== 'content') throw new Error('expected content');
    return drain(r.stream);
  },
  'encode baseline': async () => drain(passThrough(streamOf(contentChunks))),
  encode: async () => {
    const e = encodeMultipart({
      boundary: BOUNDARY,
      content: { stream: streamOf(contentChunks), contentType: 'application/octet-stream', contentDisposition: 'attachment; filename="big.bin"', contentLength: TOTAL },
    });
    return drain(e.body);
  },
};
const expectBytes = { 'decode baseline': BODY_BYTES, decode: TOTAL, 'encode baseline': TOTAL, encode: BODY_BYTES };

const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
sampleRss();
const rssStart = process.memoryUsage.rss();
for (let run = 0; run < RUNS + 1; run++) {
  for (const [name, fn] of Object.entries(cases)) {
    globalThis.gc?.();
    const t0 = process.hrtime.bigint();
    const n = await fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (n !== expectBytes[name]) throw new Error(`${name}: ${n} bytes, expected ${expectBytes[name]}`);
    if (run > 0) times[name].push(dt); // run 0 is warm-up
    sampleRss();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mibps = (name) => TOTAL / MIB / median(times[name]);
console.log(`@hsmedia/multipart bench: ${TOTAL / MIB} MiB in ${CHUNK / 1024} KiB chunks, median of ${RUNS} runs, node ${process.version}`);
for (const dir of ['decode', 'encode']) {
  const v = mibps(dir);
  const b = mibps(`${dir} baseline`);
  const ratio = v / b;
  console.log(
    `${dir.padEnd(6)}  ${v.toFixed(0).padStart(6)} MiB/s   pass-through ${b.toFixed(0).padStart(6)} MiB/s   ratio ${(ratio * 100).toFixed(1)}%  ${ratio >= 0.9 ? 'OK (>= 90%)' : 'BELOW 90% TARGET'}`,
  );
}
console.log(
  `memory  RSS at start ${(rssStart / MIB).toFixed(1)} MiB, peak RSS ${(rssPeak / MIB).toFixed(1)} MiB (process maxRSS ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MiB) for ${(((RUNS + 1) * 4 * TOTAL) / MIB).toFixed(0)} MiB streamed`,
);
