/**
 * Streams a large generated body to a server with `node:http`, honouring
 * back-pressure, so the client never holds more than one chunk.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';

const CHUNK_BYTES = 1024 * 1024;

/**
 * POSTs `totalBytes` of pseudo-random bytes (one random 1 MiB chunk repeated)
 * and resolves with the status, the response text and the elapsed seconds.
 * @returns {Promise<{ status: number, body: string, seconds: number }>}
 */
export function uploadGenerated({ url, headers, totalBytes }) {
  const chunk = randomBytes(CHUNK_BYTES);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(totalBytes) },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text) => (body += text));
      res.once('error', reject);
      res.once('end', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        resolve({ status: res.statusCode ?? 0, body, seconds });
      });
    });
    let sent = 0;
    const writeMore = () => {
      while (sent < totalBytes) {
        const size = Math.min(CHUNK_BYTES, totalBytes - sent);
        sent += size;
        const more = req.write(size === CHUNK_BYTES ? chunk : chunk.subarray(0, size));
        if (!more) {
          req.once('drain', writeMore);
          return;
        }
      }
      req.end();
    };
    writeMore();
  });
}

/** Uploads a file's bytes (given as a Buffer) and returns the parsed JSON answer. */
export function uploadBuffer({ url, headers, bytes }) {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text) => (body += text));
      res.once('end', () => {
        if (res.statusCode !== 200) reject(new Error(`upload to ${url} answered ${res.statusCode}: ${body}`));
        else resolve(JSON.parse(body));
      });
    });
    req.end(bytes);
  });
}
