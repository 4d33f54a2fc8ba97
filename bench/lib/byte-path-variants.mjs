/**
 * Candidate representations of a file download, one per server process, so
 * `bench/byte-path.mjs` can measure them against each other in one run:
 *   node byte-path-variants.mjs <variant> <file>
 * prints `listening <port>`; every GET answers the file (or a `Range: bytes=a-b` of it).
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const [variant, file] = process.argv.slice(2);
const size = (await stat(file)).size;
const KIB = 1024;

/** Reads into fresh buffers: one allocation per read. */
async function loopFresh(res, start, end, chunk) {
  const handle = await open(file, 'r');
  try {
    let position = start;
    while (position <= end) {
      const buffer = Buffer.allocUnsafe(Math.min(chunk, end - position + 1));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      if (!res.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead))) {
        await new Promise((resolve) => res.once('drain', resolve));
      }
    }
    res.end();
  } finally {
    await handle.close();
  }
}

/** Reads into a few buffers of the request, each reused once the socket has taken it (write callback). */
async function loopReused(res, start, end, chunk, count) {
  const handle = await open(file, 'r');
  const free = [];
  let waiting = null;
  for (let index = 0; index < count; index++) free.push(Buffer.allocUnsafeSlow(chunk));
  const wake = () => {
    const resume = waiting;
    waiting = null;
    resume?.();
  };
  try {
    let position = start;
    while (position <= end) {
      while (free.length === 0) await new Promise((resolve) => (waiting = resolve));
      const buffer = free.pop();
      const length = Math.min(chunk, end - position + 1);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      res.write(buffer.subarray(0, bytesRead), (error) => {
        if (!error) free.push(buffer);
        wake();
      });
    }
    res.end();
  } finally {
    await handle.close();
  }
}

/** The current design: a Web ReadableStream with one read per pull, pumped with read()/write(). */
async function webStream(res, start, end, chunk) {
  const handle = await open(file, 'r');
  let position = start;
  const stream = new ReadableStream(
    {
      async pull(controller) {
        if (position > end) {
          await handle.close();
          controller.close();
          return;
        }
        const buffer = Buffer.allocUnsafe(Math.min(chunk, end - position + 1));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        position += bytesRead;
        controller.enqueue(buffer.subarray(0, bytesRead));
      },
    },
    { highWaterMark: 1 },
  );
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!res.write(value)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

const variants = {
  pipe: (res, start, end) => pipeline(createReadStream(file, { start, end }), res),
  'pipe-256k': (res, start, end) => pipeline(createReadStream(file, { start, end, highWaterMark: 256 * KIB }), res),
  'pipe-1m': (res, start, end) => pipeline(createReadStream(file, { start, end, highWaterMark: 1024 * KIB }), res),
  'fresh-256k': (res, start, end) => loopFresh(res, start, end, 256 * KIB),
  'reused-256k-x2': (res, start, end) => loopReused(res, start, end, 256 * KIB, 2),
  'reused-256k-x3': (res, start, end) => loopReused(res, start, end, 256 * KIB, 3),
  'reused-128k-x4': (res, start, end) => loopReused(res, start, end, 128 * KIB, 4),
  'reused-512k-x2': (res, start, end) => loopReused(res, start, end, 512 * KIB, 2),
  'web-256k': (res, start, end) => webStream(res, start, end, 256 * KIB),
  'toweb-pipe': (res, start, end) => {
    const web = Readable.toWeb(createReadStream(file, { start, end }));
    return webStream.length && pipeline(Readable.fromWeb(web), res);
  },
};
const send = variants[variant];
if (!send) {
  process.stderr.write(`unknown variant ${variant}; one of ${Object.keys(variants).join(', ')}\n`);
  process.exit(2);
}

const server = createServer((req, res) => {
  let start = 0;
  let end = size - 1;
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (range) {
    start = Number(range[1]);
    end = Math.min(size - 1, Number(range[2]));
    res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
  } else {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  }
  Promise.resolve(send(res, start, end)).catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
