/**
 * The ceiling of the small-media bench: a bare `node:http` server answering
 * GET /media with a 1 KiB body held in memory, after checking the bearer
 * token (no lookup, no logs). Run as a child process:
 *   node memory-server.mjs <token> <bytes>
 * It prints `listening <port>` once it accepts connections on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const [token, size] = process.argv.slice(2);
if (!token || !size) {
  process.stderr.write('usage: memory-server.mjs <token> <bytes>\n');
  process.exit(2);
}
const body = randomBytes(Number(size));
const expected = `Bearer ${token}`;
const server = createServer((req, res) => {
  if (req.headers.authorization !== expected) {
    res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errcode":"M_UNKNOWN_TOKEN"}');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length }).end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
