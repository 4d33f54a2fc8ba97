/**
 * The baseline ("plain pipe"): the least a correct media server does, on bare
 * `node:http`. GET /media/<name> checks the bearer token and pipes the file
 * (or the one `Range: bytes=a-b` asked for) from disk with a new
 * `fs.createReadStream(file, { start, end })` per request; POST /upload pipes
 * the body to a new file while computing its SHA-256 (the server hashes
 * uploads, so the fair peer does too). Run as a child process:
 *   node baseline-server.mjs <files-dir> <upload-dir> <token>
 * It prints `listening <port>` on stdout once it accepts connections on 127.0.0.1.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const [filesDir, uploadDir, token] = process.argv.slice(2);
if (!filesDir || !uploadDir || !token) {
  process.stderr.write('usage: baseline-server.mjs <files-dir> <upload-dir> <token>\n');
  process.exit(2);
}

// The files are immutable during the run, so their sizes are read once.
const files = new Map(
  readdirSync(filesDir).map((name) => [`/media/${name}`, { file: path.join(filesDir, name), size: statSync(path.join(filesDir, name)).size }]),
);
const expectedAuthorization = `Bearer ${token}`;
let uploads = 0;

const server = createServer((req, res) => {
  if (req.headers.authorization !== expectedAuthorization) {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end('{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}');
    return;
  }
  if (req.method === 'GET') {
    const entry = files.get(req.url ?? '');
    if (!entry) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errcode":"M_NOT_FOUND","error":"Not found"}');
      return;
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = entry.size - 1;
    if (range) {
      start = Number(range[1]);
      end = Math.min(entry.size - 1, Number(range[2]));
      res.writeHead(206, {
        'content-type': 'application/octet-stream',
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${entry.size}`,
      });
    } else {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': entry.size });
    }
    pipeline(createReadStream(entry.file, { start, end }), res).catch(() => res.destroy());
    return;
  }
  if (req.method === 'POST' && req.url === '/upload') {
    const target = path.join(uploadDir, `upload-${process.pid}-${uploads++}`);
    const hash = createHash('sha256');
    req.on('data', (chunk) => hash.update(chunk));
    pipeline(req, createWriteStream(target)).then(
      () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ stored: path.basename(target), sha256: hash.digest('hex') }));
      },
      () => res.destroy(),
    );
    return;
  }
  res.writeHead(405);
  res.end();
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
