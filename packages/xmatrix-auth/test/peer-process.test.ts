import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KeyRing } from '@hsmedia/signing';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createXMatrixAuth, type XMatrixAuthState } from '../src/index.js';
import { listenFirst, renderErrors, type Listening } from './helpers.js';

let server: Listening | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function runPeer(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/peer.mjs', import.meta.url)), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`peer exited ${code}: ${err}`))));
  });
}

describe('an independent peer in another process', () => {
  it('signs with its key (tweetnacl + another-json); we fetch the key over HTTP and verify', async () => {
    const fetched: string[] = [];
    const keyRing = new KeyRing({
      resolveServer: async (name) => `http://${name}`,
      fetch: (url, init) => {
        fetched.push(url);
        return fetch(url, init);
      },
    });
    const pending = await listenFirst();
    server = pending;
    const serverName = `127.0.0.1:${pending.port}`;
    const app = new Koa<XMatrixAuthState>();
    app.use(renderErrors());
    app.use(createXMatrixAuth({ serverName, keyRing }));
    app.use((ctx) => {
      ctx.body = { origin: ctx.state.origin };
    });
    pending.serve(app);

    const uri = '/_matrix/federation/v1/media/thumbnail/abc?width=64&height=64&method=crop';
    const line = await runPeer([String(pending.port), serverName, uri]);
    const { serverName: peerName, results } = JSON.parse(line) as {
      serverName: string;
      results: Record<string, { status: number; body: unknown }>;
    };
    expect(results['ok']).toEqual({ status: 200, body: { origin: peerName } });
    expect(results['again']).toEqual({ status: 200, body: { origin: peerName } });
    expect(results['tamperedQuery']).toMatchObject({ status: 401, body: { errcode: 'M_UNAUTHORIZED' } });
    expect(results['tamperedMethod']).toMatchObject({ status: 401, body: { errcode: 'M_UNAUTHORIZED' } });
    expect(fetched).toEqual([`http://${peerName}/_matrix/key/v2/server`]);
  });
});
