/**
 * The ceilings of the small-media bench: a bare `node:http` server answering
 * GET /media with a body held in memory, after checking the bearer token (no
 * lookup, no logs); with `koa`, the same answer from a bare Koa app (one
 * middleware), to measure what Koa itself costs. Run as a child process:
 *   node memory-server.mjs <token> <bytes> [http|koa]
 * It prints `listening <port>` once it accepts connections on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const [token, size, mode = 'http'] = process.argv.slice(2);
if (!token || !size) {
  process.stderr.write('usage: memory-server.mjs <token> <bytes>\n');
  process.exit(2);
}
const body = randomBytes(Number(size));
const expected = `Bearer ${token}`;
let listener = (req, res) => {
  if (req.headers.authorization !== expected) {
    res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errcode":"M_UNKNOWN_TOKEN"}');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length }).end(body);
};
if (mode === 'koa') {
  const { default: Koa } = await import('koa');
  const app = new Koa();
  app.use((ctx) => {
    if (ctx.get('Authorization') !== expected) {
      ctx.status = 401;
      ctx.body = { errcode: 'M_UNKNOWN_TOKEN' };
      return;
    }
    ctx.type = 'application/octet-stream';
    ctx.body = body;
  });
  listener = app.callback();
}
const server = createServer(listener);
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
