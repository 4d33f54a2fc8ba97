import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { signXMatrixRequest } from '@hsmedia/signing';
import { TEST_SIGNATURE, TEST_VIRUS_MARKER, startClamd, type TestClamd } from '@hsmedia/test-fixtures/clamd';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startServer, type StartedServer } from '../src/server.js';
import { CliProcess } from './cli-process.js';
import { FakeRemote, REMOTE } from './fake-remote.js';
import { tempDir, testConfig } from './helpers.js';

// Virus scanning with a real clamd (Debian's clamav-daemon, installed with apt when missing) on its
// own one-signature database: two hsmedia-server processes (build first: npx tsc -b apps/media-server)
// share one SQLite file and media directory; fault cases run in-process against clamd stopped,
// fake clamds on 127.0.0.1 (silent, garbage, dying mid-stream) and size limits.

const SERVER_NAME = 'scan.test';
const TOKEN = 'scan_token';
const ADMIN_TOKEN = 'scan_admin_token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const ADMIN_ID = `@admin:${SERVER_NAME}`;

/** A small PNG with the test signature after its end: an image that thumbnails, and that clamd flags. */
async function infectedPng(): Promise<Buffer> {
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
  return Buffer.concat([png, Buffer.from(TEST_VIRUS_MARKER, 'latin1'), randomBytes(16)]);
}

async function cleanPng(): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 10, g: 200, b: Math.floor(Math.random() * 255) } } }).png().toBuffer();
}

async function uploadTo(url: string, body: Buffer, contentType = 'image/png'): Promise<string> {
  const response = await fetch(`${url}/_matrix/media/v3/upload?filename=x.png`, { method: 'POST', headers: { ...AUTH, 'content-type': contentType }, body });
  expect(response.status).toBe(200);
  const { content_uri: uri } = (await response.json()) as { content_uri: string };
  return uri.slice(`mxc://${SERVER_NAME}/`.length);
}

/** Every way a client or server reads a media item: status and whether the marker came back. */
async function everyEndpoint(url: string, serverName: string, mediaId: string, remote: FakeRemote): Promise<Record<string, number>> {
  const timeout = 'timeout_ms=20000';
  const statuses: Record<string, number> = {};
  const read = async (name: string, response: Response): Promise<void> => {
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.includes(Buffer.from(TEST_VIRUS_MARKER, 'latin1'))).toBe(false);
    statuses[name] = response.status;
  };
  await read('v1 download', await fetch(`${url}/_matrix/client/v1/media/download/${serverName}/${mediaId}?${timeout}`, { headers: AUTH }));
  await read('v1 thumbnail', await fetch(`${url}/_matrix/client/v1/media/thumbnail/${serverName}/${mediaId}?width=32&height=32&method=scale&${timeout}`, { headers: AUTH }));
  await read('v3 download', await fetch(`${url}/_matrix/media/v3/download/${serverName}/${mediaId}?${timeout}`));
  await read('v3 thumbnail', await fetch(`${url}/_matrix/media/v3/thumbnail/${serverName}/${mediaId}?width=32&height=32&${timeout}`));
  if (serverName === SERVER_NAME) {
    const uri = `/_matrix/federation/v1/media/download/${mediaId}?${timeout}`;
    const authorization = signXMatrixRequest({ method: 'GET', uri, origin: REMOTE, destination: SERVER_NAME }, remote.signingKey);
    await read('federation download', await fetch(`${url}${uri}`, { headers: { authorization } }));
  }
  return statuses;
}

interface Instance {
  readonly url: string;
  readonly cli: CliProcess;
}

/**
 * How often the instances logged a finished scan of `mediaId`, once the uploader (`first`, which scans
 * what it stores) has logged its own: log lines reach stdout in batches, after the answers that follow the scan.
 */
async function loggedScansOf(first: Instance, instances: readonly Instance[], mediaId: string): Promise<number> {
  await first.cli.waitFor(() => scansOf([first], mediaId) > 0, `the scan of ${mediaId} in the log`);
  return scansOf(instances, mediaId);
}

/** How often each instance logged a finished scan of `mediaId`. */
function scansOf(instances: readonly Instance[], mediaId: string): number {
  return instances.reduce((sum, instance) => sum + instance.cli.logLines().filter((line) => line['msg'] === 'media scanned' && line['mediaId'] === mediaId).length, 0);
}

let clamd: TestClamd;
let remote: FakeRemote;

beforeAll(async () => {
  clamd = await startClamd({ streamMaxLength: '4M' });
  remote = new FakeRemote({ onlyListedMedia: true });
  await remote.listen();
}, 900_000);

afterAll(async () => {
  await remote?.close();
  await clamd?.close();
});

describe('two instances sharing a SQLite file scan with a real clamd', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let a: Instance;
  let b: Instance;

  async function startInstance(name: string): Promise<Instance> {
    const config = {
      server_name: SERVER_NAME,
      listen: { host: '127.0.0.1', port: 0 },
      database: { sqlite: { path: join(dir.path, 'shared.db') } },
      media_store: { filesystem: { path: join(dir.path, 'shared-media') } },
      signing_key_path: join(dir.path, name, 'signing.key'),
      log_level: 'info',
      legacy_media: { freeze: false },
      admins: [ADMIN_ID],
      auth: { tokens: { [TOKEN]: `@alice:${SERVER_NAME}`, [ADMIN_TOKEN]: ADMIN_ID } },
      federation: { destinations: { [REMOTE]: remote.url }, ip_range_allowlist: ['127.0.0.1/32'], failure_cache_ms: 0 },
      scanning: { clamd: name === 'a' ? { socket: clamd.socket } : { host: '127.0.0.1', port: clamd.port }, retry_interval: '1s', version_poll_interval: '1h' },
    };
    const path = join(dir.path, `${name}.yaml`);
    await writeFile(path, stringify(config));
    const cli = new CliProcess(['--config', path], dir.path);
    return { url: await cli.listening(), cli };
  }

  beforeAll(async () => {
    dir = await tempDir('hsmedia-scan-');
    a = await startInstance('a');
    b = await startInstance('b');
  }, 120_000);

  afterAll(async () => {
    for (const instance of [a, b]) {
      if (instance === undefined) continue;
      instance.cli.child.kill('SIGTERM');
      await instance.cli.exited;
    }
    await dir?.cleanup();
  });

  it('serves a clean upload from both instances once clamd found it clean, scanned once', async () => {
    const body = await cleanPng();
    const mediaId = await uploadTo(a.url, body);
    for (const instance of [b, a]) {
      const response = await fetch(`${instance.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=30000`, { headers: AUTH });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
    }
    expect(await loggedScansOf(a, [a, b], mediaId)).toBe(1);
  }, 60_000);

  it('never serves an upload of the signature file, on any endpoint, from either instance; quarantines it and blocks its hash', async () => {
    const infected = await infectedPng();
    const mediaId = await uploadTo(a.url, infected);
    for (const instance of [a, b]) {
      const statuses = await everyEndpoint(instance.url, SERVER_NAME, mediaId, remote);
      for (const status of Object.values(statuses)) expect(status).toBe(404);
    }
    expect(await loggedScansOf(a, [a, b], mediaId)).toBe(1);
    // The same bytes are refused at upload now, on either instance.
    for (const instance of [a, b]) {
      const again = await fetch(`${instance.url}/_matrix/media/v3/upload`, { method: 'POST', headers: { ...AUTH, 'content-type': 'image/png' }, body: infected });
      expect(again.status).toBe(403);
    }
    const info = await fetch(`${b.url}/_synapse/admin/v1/media/${SERVER_NAME}/${mediaId}`, { headers: ADMIN });
    expect(((await info.json()) as { media_info: { quarantined_by: unknown } }).media_info.quarantined_by).not.toBeNull();
    const audit = (await (await fetch(`${a.url}/_hsmedia/admin/v1/audit?target=${encodeURIComponent(`mxc://${SERVER_NAME}/${mediaId}`)}`, { headers: ADMIN })).json()) as {
      actions: { action: string; actor: string; reason: string }[];
    };
    expect(audit.actions).toEqual([expect.objectContaining({ action: 'quarantine', actor: 'system:virus-scan', reason: `virus scan: ${TEST_SIGNATURE}` })]);
  }, 120_000);

  it('scans async uploads: infected never served, clean served to a reader already waiting on the other instance', async () => {
    for (const [body, expected] of [
      [await infectedPng(), 404],
      [await cleanPng(), 200],
    ] as const) {
      const created = await fetch(`${a.url}/_matrix/media/v1/create`, { method: 'POST', headers: AUTH });
      const { content_uri: uri } = (await created.json()) as { content_uri: string };
      const mediaId = uri.slice(`mxc://${SERVER_NAME}/`.length);
      const waiting = fetch(`${b.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=30000`, { headers: AUTH });
      const put = await fetch(`${a.url}/_matrix/media/v3/upload/${SERVER_NAME}/${mediaId}`, { method: 'PUT', headers: { ...AUTH, 'content-type': 'image/png' }, body });
      expect(put.status).toBe(200);
      const response = await waiting;
      expect(response.status).toBe(expected);
      const got = Buffer.from(await response.arrayBuffer());
      if (expected === 200) expect(got.equals(body)).toBe(true);
      else expect(got.includes(Buffer.from(TEST_VIRUS_MARKER, 'latin1'))).toBe(false);
    }
  }, 60_000);

  it('scans remote media: the infected item is not served (not even to its first reader), the clean one is', async () => {
    remote.media.set('InfectedRemote1', await infectedPng());
    const clean = await cleanPng();
    remote.media.set('CleanRemote1', clean);
    for (const instance of [a, b]) {
      const statuses = await everyEndpoint(instance.url, REMOTE, 'InfectedRemote1', remote);
      for (const status of Object.values(statuses)) expect(status).toBe(404);
    }
    const response = await fetch(`${b.url}/_matrix/client/v1/media/download/${REMOTE}/CleanRemote1?timeout_ms=30000`, { headers: AUTH });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(clean)).toBe(true);
  }, 120_000);

  it('rescans on demand (admin API), from both instances at once, with one consistent verdict, recorded in the audit log', async () => {
    const mediaId = await uploadTo(a.url, await cleanPng());
    expect((await fetch(`${a.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=30000`, { headers: AUTH })).status).toBe(200);
    const rescan = (instance: Instance): Promise<Response> =>
      fetch(`${instance.url}/_hsmedia/admin/v1/media/${SERVER_NAME}/${mediaId}/rescan?reason=doubt`, { method: 'POST', headers: ADMIN });
    const answers = await Promise.all([rescan(a), rescan(b)]);
    const bodies = await Promise.all(answers.map(async (response) => ({ status: response.status, body: (await response.json()) as { scan_state: string } })));
    for (const { status, body } of bodies) {
      expect([200, 202]).toContain(status);
      expect(['clean', 'scanning']).toContain(body.scan_state);
    }
    expect(bodies.some(({ body }) => body.scan_state === 'clean')).toBe(true);
    const forbidden = await fetch(`${a.url}/_hsmedia/admin/v1/media/${SERVER_NAME}/${mediaId}/rescan`, { method: 'POST', headers: AUTH });
    expect(forbidden.status).toBe(403);
    const unknown = await fetch(`${a.url}/_hsmedia/admin/v1/media/${SERVER_NAME}/NoSuchMedia1/rescan`, { method: 'POST', headers: ADMIN });
    expect(unknown.status).toBe(404);
    const audit = (await (await fetch(`${a.url}/_hsmedia/admin/v1/audit?action=rescan`, { headers: ADMIN })).json()) as { actions: { actor: string; reason: string }[] };
    expect(audit.actions.length).toBe(2);
    expect(audit.actions[0]).toMatchObject({ actor: ADMIN_ID, reason: 'doubt' });
  }, 60_000);
});

/** A fake clamd on 127.0.0.1: `behaviour` decides what each connection gets. */
async function fakeClamd(behaviour: (socket: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    behaviour(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('scanner faults fail closed', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const servers: StartedServer[] = [];

  beforeAll(async () => {
    dir = await tempDir('hsmedia-scan-faults-');
  });

  afterAll(async () => {
    for (const server of servers) await server.close();
    await dir?.cleanup();
  });

  async function serverWith(name: string, scanning: Record<string, unknown>): Promise<StartedServer> {
    const server = await startServer(
      testConfig(join(dir.path, name), {
        server_name: SERVER_NAME,
        auth: { tokens: { [TOKEN]: `@alice:${SERVER_NAME}` } },
        log_level: 'warn',
        scanning: { retry_interval: '1s', version_poll_interval: '1h', ...scanning },
      }),
      { logDestination: { write: () => undefined } },
    );
    servers.push(server);
    return server;
  }

  async function status(server: StartedServer, mediaId: string, timeoutMs: number): Promise<{ status: number; errcode?: string }> {
    const response = await fetch(`${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=${timeoutMs}`, { headers: AUTH });
    if (response.status === 200) {
      await response.arrayBuffer();
      return { status: 200 };
    }
    const body = (await response.json()) as { errcode: string };
    return { status: response.status, errcode: body.errcode };
  }

  it('answers 504 M_NOT_YET_UPLOADED after timeout_ms while clamd is slow to answer', async () => {
    const silent = await fakeClamd((socket) => socket.resume());
    try {
      const server = await serverWith('slow', { clamd: { port: silent.port }, timeout: '60s' });
      const mediaId = await uploadTo(server.url, Buffer.from('hello'), 'text/plain');
      expect(await status(server, mediaId, 200)).toEqual({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
    } finally {
      await silent.close();
    }
  }, 60_000);

  it('keeps media unserved when clamd answers garbage or dies mid-stream', async () => {
    const garbage = await fakeClamd((socket) => socket.once('data', () => socket.end('220 ESMTP ready\r\n')));
    const dying = await fakeClamd((socket) => {
      let seen = 0;
      socket.on('data', (data: Buffer) => {
        seen += data.byteLength;
        if (seen > 64 * 1024) socket.destroy();
      });
    });
    try {
      for (const [name, port] of [
        ['garbage', garbage.port],
        ['dying', dying.port],
      ] as const) {
        const server = await serverWith(name, { clamd: { port }, timeout: '30s' });
        const mediaId = await uploadTo(server.url, randomBytes(512 * 1024), 'application/octet-stream');
        expect(await status(server, mediaId, 3_000)).toEqual({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
        expect(await status(server, mediaId, 0)).toEqual({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
      }
    } finally {
      await garbage.close();
      await dying.close();
    }
  }, 60_000);

  it('fails closed while clamd is stopped, then the retry job serves the media once clamd is back', async () => {
    const own = await startClamd();
    try {
      const server = await serverWith('stopped', { clamd: { socket: own.socket } });
      await own.stop();
      const body = Buffer.from('served after the retry');
      const mediaId = await uploadTo(server.url, body, 'text/plain');
      expect(await status(server, mediaId, 1_500)).toEqual({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
      await own.start();
      // The retry job (every second) scans it now; the reader waits for the verdict.
      const response = await fetch(`${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=60000`, { headers: AUTH });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
    } finally {
      await own.close();
    }
  }, 300_000);

  it('keeps oversize media unserved by default (ours and clamd\'s limit), and serves it under on_oversize: serve', async () => {
    const ours = await serverWith('oversize', { clamd: { socket: clamd.socket }, max_size: '1K' });
    const big = await uploadTo(ours.url, randomBytes(4096), 'application/octet-stream');
    expect(await status(ours, big, 1_000)).toEqual({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
    // clamd's own StreamMaxLength (4M here) counts as oversize too.
    const clamdLimit = await serverWith('clamd-limit', { clamd: { socket: clamd.socket } });
    const huge = await uploadTo(clamdLimit.url, randomBytes(5 * 1024 * 1024), 'application/octet-stream');
    expect(await status(clamdLimit, huge, 1_000)).toEqual({ status: 504, errcode: 'M_NOT_YET_UPLOADED' });
    const served = await serverWith('oversize-served', { clamd: { socket: clamd.socket }, max_size: '1K', on_oversize: 'serve' });
    const allowed = await uploadTo(served.url, randomBytes(4096), 'application/octet-stream');
    expect((await status(served, allowed, 30_000)).status).toBe(200);
  }, 120_000);
});

/**
 * A clamd that speaks the protocol (INSTREAM frames, VERSION) and finds everything clean, with a
 * version the test changes, counting scans: for the rescan after a signature update.
 */
async function versionedClamd(): Promise<{ port: number; scans: () => number; setVersion(v: string): void; close(): Promise<void> }> {
  let version = 'ClamAV 1.4.6/1/Mon Dec  7 00:00:00 2026';
  let scans = 0;
  const fake = await fakeClamd((socket) => {
    let buffer = Buffer.alloc(0);
    let command: string | undefined;
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      if (command === undefined) {
        const nul = buffer.indexOf(0);
        if (nul === -1) return;
        command = buffer.subarray(0, nul).toString('latin1');
        buffer = buffer.subarray(nul + 1);
        if (command === 'zVERSION') socket.end(`${version}\0`);
        else if (command === 'zPING') socket.end('PONG\0');
      }
      if (command !== 'zINSTREAM') return;
      // Skip whole frames; a zero-length frame ends the stream.
      while (buffer.length >= 4) {
        const length = buffer.readUInt32BE(0);
        if (length === 0) {
          scans++;
          socket.end('stream: OK\0');
          return;
        }
        if (buffer.length < 4 + length) return;
        buffer = buffer.subarray(4 + length);
      }
    });
  });
  return { port: fake.port, scans: () => scans, setVersion: (v) => (version = v), close: fake.close };
}

describe('rescan after a signature update', () => {
  it('rescans clean media when clamd reports a new VERSION', async () => {
    const fake = await versionedClamd();
    const dir = await tempDir('hsmedia-scan-update-');
    const server = await startServer(
      testConfig(dir.path, {
        server_name: SERVER_NAME,
        auth: { tokens: { [TOKEN]: `@alice:${SERVER_NAME}` } },
        log_level: 'warn',
        scanning: { clamd: { port: fake.port }, version_poll_interval: '200ms', rescans_per_second: 100 },
      }),
      { logDestination: { write: () => undefined } },
    );
    try {
      const first = await uploadTo(server.url, Buffer.from('one'), 'text/plain');
      const second = await uploadTo(server.url, Buffer.from('two'), 'text/plain');
      for (const mediaId of [first, second]) {
        const response = await fetch(`${server.url}/_matrix/client/v1/media/download/${SERVER_NAME}/${mediaId}?timeout_ms=30000`, { headers: AUTH });
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      }
      expect(fake.scans()).toBe(2);
      fake.setVersion('ClamAV 1.4.6/2/Tue Dec  8 00:00:00 2026');
      // The watch asks VERSION every 200 ms; both clean items are scanned again.
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (fake.scans() >= 4) {
            clearInterval(check);
            resolve();
          }
        }, 50);
      });
      expect(fake.scans()).toBe(4);
    } finally {
      await server.close();
      await fake.close();
      await dir.cleanup();
    }
  }, 60_000);
});

describe('the scanning config section', () => {
  it('is off when absent, resolves defaults, and refuses a non-loopback clamd, both targets, or bad policies', async () => {
    const { parseConfig } = await import('../src/config.js');
    const dir = '/tmp/hsmedia-scan-config';
    const off = parseConfig({}, dir);
    expect(off.ok && off.config.scanning).toBeUndefined();
    const on = parseConfig({ scanning: { clamd: { socket: 'clamd.sock' }, max_size: '10M' } }, dir);
    expect(on.ok && on.config.scanning).toEqual({
      clamd: { socket: join(dir, 'clamd.sock') },
      maxBytes: 10 * 1024 * 1024,
      onOversize: 'fail_closed',
      onError: 'fail_closed',
      timeoutMs: 60_000,
      concurrency: 2,
      retryIntervalMs: 60_000,
      rescanOnUpdate: true,
      versionPollMs: 300_000,
      rescansPerSecond: 10,
    });
    for (const scanning of [
      { clamd: { host: '10.1.2.3', port: 3310 } },
      { clamd: { socket: '/x', port: 3310 } },
      { clamd: { host: '127.0.0.1' } },
      { clamd: { socket: '/x' }, on_error: 'ignore' },
      { clamd: { socket: '/x' }, timeout: 0 },
      {},
    ]) {
      expect(parseConfig({ scanning }, dir).ok, JSON.stringify(scanning)).toBe(false);
    }
  });
});
