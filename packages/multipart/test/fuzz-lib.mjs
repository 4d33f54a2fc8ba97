// Mutation fuzzing of the decoder, shared by test/fuzz.test.ts (bounded,
// seeded) and scripts/fuzz.mjs (long runs against dist/). Plain JS so the
// script can run without a TypeScript loader.
import { vectors } from './fixtures/multipart-vectors.mjs';

/** Small seeded PRNG (mulberry32): reproducible runs from one integer. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
}

const B = '6067d4698f8d40a0a794ea7d7379d53a';

/** Valid seed bodies: the shared vectors plus larger ones full of near-delimiters. */
export function seeds() {
  const out = [];
  for (const [name, v] of Object.entries(vectors)) out.push({ name, ct: v.ct, body: v.body, valid: !v.wantError });
  const tricky = Buffer.concat(
    Array.from({ length: 200 }, (_, i) =>
      Buffer.from(i % 3 === 0 ? `\r\n--${B.slice(0, i % 32)}` : i % 3 === 1 ? '\r\n\r\n' : `x--${B}y`, 'latin1'),
    ),
  );
  const big = Buffer.concat([
    Buffer.from(`\r\n--${B}\r\nContent-Type: application/json\r\n\r\n{"a":[1,2,3]}\r\n--${B}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f.bin"\r\n\r\n`, 'latin1'),
    tricky,
    Buffer.from(`\r\n--${B}--\r\n`, 'latin1'),
  ]);
  out.push({ name: 'tricky', ct: `multipart/mixed; boundary=${B}`, body: big, valid: true });
  return out;
}

const TOKENS = [
  '\r\n', '\n', '\r', '\r\n\r\n', '--', `--${B}`, `\r\n--${B}\r\n`, `\r\n--${B}--`, `--${B}--`, ':', ' ', '\t',
  'Content-Type: application/json\r\n', 'Location: https://cdn.example.org/x\r\n', '{}', '[]', 'null', '"',
  `\r\n--${B}\r\nContent-Type: text/plain\r\n\r\nthird`,
].map((s) => Buffer.from(s, 'latin1'));

/** One to four random edits of `body`. */
export function mutate(r, body) {
  let b = Buffer.from(body);
  const edits = 1 + r.int(4);
  for (let e = 0; e < edits; e++) {
    const at = r.int(b.length + 1);
    switch (r.int(9)) {
      case 0: // flip a bit
        if (b.length) b[Math.min(at, b.length - 1)] ^= 1 << r.int(8);
        break;
      case 1: // random byte
        if (b.length) b[Math.min(at, b.length - 1)] = r.int(256);
        break;
      case 2: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(16)), b.subarray(at)]);
        break;
      case 3: // insert an interesting token
        b = Buffer.concat([b.subarray(0, at), r.pick(TOKENS), b.subarray(at)]);
        break;
      case 4: { // delete a range
        const n = 1 + r.int(16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 5: { // duplicate a range
        const n = 1 + r.int(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + n), b.subarray(at)]);
        break;
      }
      case 6: // truncate
        b = b.subarray(0, at);
        break;
      case 7: { // a long run (huge header, long padding, big preamble)
        const ch = r.pick([0x20, 0x61, 0x0a, 0x2d, 0x0d]);
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(1 + r.int(40000), ch), b.subarray(at)]);
        break;
      }
      default: { // swap two ranges' order
        const mid = r.int(b.length + 1);
        b = Buffer.concat([b.subarray(mid), b.subarray(0, mid)]);
        break;
      }
    }
  }
  return b;
}

/** A sometimes-mutated Content-Type header. */
export function mutateContentType(r, ct) {
  switch (r.int(12)) {
    case 0: return ct.replace('boundary=', 'boundary="') + '"';
    case 1: return ct.replace('boundary=', 'charset=x; boundary=');
    case 2: return 'multipart/mixed';
    case 3: return ct.slice(0, r.int(ct.length + 1));
    case 4: return ct.toUpperCase();
    case 5: return `${ct}; x="\\"`;
    default: return ct;
  }
}

/** Splits into random chunks (sometimes single bytes). */
export function split(r, body) {
  const chunks = [];
  const mode = r.int(4);
  for (let off = 0; off < body.length; ) {
    const n = mode === 0 ? 1 : mode === 1 ? 1 + r.int(8) : 1 + r.int(4096);
    chunks.push(body.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

function streamOf(chunks) {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      const next = chunks[i++];
      if (next === undefined) c.close();
      else c.enqueue(next);
    },
  }, { highWaterMark: 0 });
}

export const LIMITS = { maxContentBytes: 256 * 1024, maxMetadataBytes: 8192, maxHeaderBytes: 4096, maxHeaderLines: 16, maxPreambleBytes: 4096 };

/**
 * Decodes and fully consumes one input. Resolves to
 * `{ outcome: 'content'|'location'|<error code>, bytes? }`; rejects only
 * on an unexpected (non-MultipartError) failure or a broken invariant.
 */
export async function runOne(api, ct, body, chunks) {
  let res;
  try {
    res = await api.decodeMultipart(ct, streamOf(chunks), LIMITS);
  } catch (err) {
    if (api.isMultipartError(err)) return { outcome: err.code };
    throw err;
  }
  if (res.kind === 'location') {
    if (!/^https?:/i.test(res.location)) throw new Error('invariant: non-http Location accepted');
    return { outcome: 'location' };
  }
  const reader = res.stream.getReader();
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > LIMITS.maxContentBytes) throw new Error('invariant: content over the limit was delivered');
    }
  } catch (err) {
    if (api.isMultipartError(err)) return { outcome: err.code };
    throw err;
  }
  if (total > body.length) throw new Error('invariant: more content than body bytes');
  return { outcome: 'content', total };
}

/**
 * Runs `iterations` cases from `seed`; returns outcome counts. Throws on the first unexpected failure.
 * @param {any} api the package's public API (`@hsmedia/multipart`)
 * @param {{ seed: number, iterations: number, deadline?: number, onCase?: (index: number, out: { outcome: string }) => void }} options
 */
export async function fuzz(api, { seed, iterations, deadline = Number.POSITIVE_INFINITY, onCase }) {
  const r = prng(seed);
  const corpus = seeds();
  const counts = {};
  let i = 0;
  for (; i < iterations && Date.now() < deadline; i++) {
    const s = r.pick(corpus);
    const mutated = r.int(10) === 0 ? s.body : mutate(r, s.body);
    const ct = mutateContentType(r, s.ct);
    try {
      const out = await runOne(api, ct, mutated, split(r, mutated));
      counts[out.outcome] = (counts[out.outcome] ?? 0) + 1;
      onCase?.(i, out);
    } catch (err) {
      const e = new Error(`fuzz case ${i} (seed ${seed}, corpus ${s.name}) failed: ${err?.stack ?? err}`);
      e.input = { ct, body: mutated.toString('base64') };
      throw e;
    }
  }
  return { iterations: i, counts };
}
