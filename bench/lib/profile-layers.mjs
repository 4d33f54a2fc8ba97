/**
 * Reads a V8 `--cpu-prof` profile and splits the self time spent inside a
 * time window by layer of the request path (HTTP, Koa, router, auth, ...),
 * from each sample's script URL and function name. Used by
 * bench/small-media.mjs to express the cost of one small request per layer.
 */
import { readFileSync } from 'node:fs';

/** Layers in the order of a request; the first rule that matches a frame wins. */
const RULES = [
  ['GC', (url, fn) => fn === '(garbage collector)'],
  ['access log (request-log, pino, sonic-boom)', (url) => /request-log|[/\\]pino[/\\]|sonic-boom|fast-redact|quick-format|atomic-sleep|thread-stream|logger\.js/.test(url)],
  ['metrics (prom-client, metrics.ts)', (url) => /prom-client|media-server[/\\]dist[/\\]metrics\.js/.test(url)],
  ['X-Matrix verification (xmatrix-auth, signing, crypto)', (url, fn) => /xmatrix-auth|[/\\]signing[/\\]dist|sodium-native|node:crypto|node:internal\/crypto/.test(url) || /verify|canonical/i.test(fn) && /signing|xmatrix/.test(url)],
  ['client auth (client-auth)', (url) => /client-auth/.test(url)],
  ['rate limit (rate-limit, limits)', (url) => /rate-limit\.js|media-server[/\\]dist[/\\](limits|shared-limits)\.js/.test(url)],
  ['router match (@koa/router, path-to-regexp)', (url) => /@koa[/\\]router|path-to-regexp/.test(url)],
  ['catalog lookup (media-core)', (url) => /media-core[/\\]dist/.test(url)],
  ['headers and body (media-routes, multipart)', (url) => /media-routes[/\\]dist|multipart[/\\]dist/.test(url)],
  ['Koa context and response (koa, koa-matrix, drain)', (url) => /[/\\]koa[/\\]lib|koa-compose|koa-matrix|delegates|on-finished|statuses|type-is|content-type|mime-types|vary|accepts|encodeurl|cookies|parseurl|only[/\\]|media-server[/\\]dist[/\\](drain|http-edge)\.js|ee-first|fresh|destroy|content-disposition/.test(url)],
  ['HTTP parse and write, sockets (node:http, net, streams)', (url) => /^node:(_http|net|stream|internal\/(streams|stream_base_commons|http|timers|net|async_hooks|process\/task_queues))|node:events|node:internal\/(event_target|abort_controller)/.test(url)],
  ['native and idle-free runtime ((program))', (url, fn) => fn === '(program)'],
];

/**
 * @param {string} file a .cpuprofile
 * @param {number} from start of the window (CLOCK_MONOTONIC µs, like process.hrtime)
 * @param {number} to end of the window
 * @returns {{ busyUs: number, layers: Map<string, number>, other: Map<string, number> }}
 */
export function layerProfile(file, from, to) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const layers = new Map(RULES.map(([name]) => [name, 0]));
  layers.set('other', 0);
  const other = new Map();
  let busyUs = 0;
  let time = profile.startTime;
  profile.samples.forEach((id, index) => {
    const dt = profile.timeDeltas[index] ?? 0;
    time += dt;
    if (time < from || time > to) return;
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    if (functionName === '(idle)') return;
    busyUs += dt;
    const rule = RULES.find(([, test]) => test(url, functionName));
    const layer = rule === undefined ? 'other' : rule[0];
    layers.set(layer, layers.get(layer) + dt);
    if (rule === undefined) {
      const key = `${functionName || '(anon)'} ${url.split('/').slice(-2).join('/')}:${lineNumber}`;
      other.set(key, (other.get(key) ?? 0) + dt);
    }
  });
  return { busyUs, layers, other };
}
