import { randomBytes } from 'node:crypto';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { startServer, type StartedServer } from '../src/server.js';
import { freePort, tempDir, testConfig } from './helpers.js';

// media_store.s3 against a real Ceph RGW: the start-up probe, and what clients get while the
// gateway is down or hung (clean 503s within request_timeout_ms, nothing half-committed) and after
// it comes back (service resumes without a restart).

const TOKEN = 's3_faults_token';
const USER = '@alice:localhost';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let rgw: RgwCluster;
let bucket: string;
let dir: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  [rgw, dir] = await Promise.all([startRgw(), tempDir('hsmedia-s3-faults-')]);
  bucket = await rgw.createBucket();
}, RGW_START_TIMEOUT_MS);

afterAll(async () => {
  await rgw?.stop();
  await dir?.cleanup();
}, 120_000);

function s3Config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    endpoint: rgw.endpoint,
    bucket,
    prefix: `faults-${randomBytes(3).toString('hex')}`,
    force_path_style: true,
    access_key_id: rgw.accessKeyId,
    secret_access_key: rgw.secretAccessKey,
    request_timeout_ms: 2_000,
    ...overrides,
  };
}

function serverConfig(name: string, s3: Record<string, unknown>) {
  return testConfig(dir.path, {
    log_level: 'silent',
    database: { sqlite: { path: `${name}.sqlite` } },
    signing_key_path: `${name}.key`,
    auth: { tokens: { [TOKEN]: USER } },
    admins: [USER],
    media_store: { s3 },
  });
}

describe('media_store.s3 config', () => {
  it('parses the section and refuses bad values, each under its key', () => {
    const ok = parseConfig({ media_store: { s3: { bucket: 'media', endpoint: 'http://127.0.0.1:7480', prefix: 'a/b' } } }, '/srv');
    expect(ok.ok && ok.config.mediaStore).toEqual({
      kind: 's3',
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      bucket: 'media',
      prefix: 'a/b',
      forcePathStyle: false,
      accessKeyId: undefined,
      secretAccessKey: undefined,
      requestTimeoutMs: 30_000,
    });
    const bad = parseConfig(
      { media_store: { s3: { bucket: 'No_Such', endpoint: 'ftp://x', prefix: '/abs', access_key_id: 'only-one', extra: 1 } } },
      '/srv',
    );
    expect(bad.ok).toBe(false);
    const messages = bad.ok ? [] : bad.errors;
    for (const key of ['bucket', 'endpoint', 'prefix', 'extra']) {
      expect(messages.some((m) => m.startsWith(`media_store.s3`) && m.includes(key))).toBe(true);
    }
    const both = parseConfig({ media_store: { filesystem: { path: 'x' }, s3: { bucket: 'media' } } }, '/srv');
    expect(both.ok).toBe(false);
  });
});

describe('the start-up probe names media_store.s3 and the cause', () => {
  const cases: ReadonlyArray<[string, () => Record<string, unknown>, RegExp]> = [
    ['wrong credentials', () => s3Config({ secret_access_key: 'wrong' }), /access denied/],
    ['a missing bucket', () => s3Config({ bucket: 'no-such-bucket-here' }), /does not exist/],
    ['nothing listening', () => s3Config({ endpoint: 'http://127.0.0.1:9' }), /cannot be reached/],
  ];
  for (const [label, s3, message] of cases) {
    it(label, async () => {
      const error = await startServer(serverConfig(`probe-${randomBytes(3).toString('hex')}`, s3())).then(
        (server) => server.close().then(() => null),
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(/^media_store\.s3: bucket "[^"]+" at \S+ is not writable: /);
      expect(error?.message).toMatch(message);
    });
  }
});

describe('a running server while the gateway fails', () => {
  let server: StartedServer;

  beforeAll(async () => {
    const config = serverConfig('running', s3Config());
    server = await startServer({ ...config, listen: { ...config.listen, port: await freePort() } });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  async function upload(body: Buffer): Promise<Response> {
    return fetch(`${server.url}/_matrix/media/v3/upload?filename=x.bin`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
      body,
    });
  }
  async function mediaCount(): Promise<number> {
    const response = await fetch(`${server.url}/_synapse/admin/v1/users/${encodeURIComponent(USER)}/media`, { headers: AUTH });
    expect(response.status).toBe(200);
    return ((await response.json()) as { total: number }).total;
  }
  function download(mediaId: string): Promise<Response> {
    return fetch(`${server.url}/_matrix/client/v1/media/download/localhost/${mediaId}`, { headers: AUTH });
  }

  it('stopped gateway: 503 for uploads and downloads, no row without its blob; back without a restart', async () => {
    const body = randomBytes(50_000);
    const first = await upload(body);
    expect(first.status).toBe(200);
    const mediaId = ((await first.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const rowsBefore = await mediaCount();

    await rgw.stopGateway();
    try {
      const failedUpload = await upload(randomBytes(20_000));
      expect(failedUpload.status).toBe(503);
      expect(await failedUpload.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
      expect(await mediaCount()).toBe(rowsBefore);
      const failedDownload = await download(mediaId);
      expect(failedDownload.status).toBe(503);
      expect(await failedDownload.json()).toMatchObject({ errcode: 'M_UNKNOWN' });
    } finally {
      await rgw.startGateway();
    }

    const again = await download(mediaId);
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).toBe(true);
    const fresh = await upload(randomBytes(1_000));
    expect(fresh.status).toBe(200);
    expect(await mediaCount()).toBe(rowsBefore + 1);
  }, 120_000);

  it('hung gateway: 503 within request_timeout_ms rather than a hang; recovers when it resumes', async () => {
    const body = randomBytes(10_000);
    const first = await upload(body);
    expect(first.status).toBe(200);
    const mediaId = ((await first.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const rowsBefore = await mediaCount();
    rgw.pauseGateway();
    try {
      // request_timeout_ms is 2 s and the SDK tries 3 times: well within the 60 s test timeout.
      const failedDownload = await download(mediaId);
      expect(failedDownload.status).toBe(503);
      const failedUpload = await upload(randomBytes(5_000));
      expect(failedUpload.status).toBe(503);
      expect(await mediaCount()).toBe(rowsBefore);
    } finally {
      rgw.resumeGateway();
    }
    const again = await download(mediaId);
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).toBe(true);
  }, 60_000);

  it('gateway stopped mid-download: the response is cut short, never completed with wrong bytes', async () => {
    const body = randomBytes(24 * 1024 * 1024);
    const first = await upload(body);
    expect(first.status).toBe(200);
    const mediaId = ((await first.json()) as { content_uri: string }).content_uri.split('/').pop()!;
    const response = await download(mediaId);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    let received = (await reader.read()).value?.byteLength ?? 0;
    await rgw.stopGateway();
    const outcome = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return 'ended';
        received += value.byteLength;
      }
    })().catch(() => 'errored');
    await rgw.startGateway();
    // Either the body broke off, or it had already been fully buffered in flight: never a short "success".
    if (outcome === 'ended') expect(received).toBe(body.byteLength);
    else expect(received).toBeLessThan(body.byteLength);
    expect(await mediaCount()).toBeGreaterThan(0);
  }, 120_000);
});

describe('delivery: redirect', () => {
  let server: StartedServer;

  beforeAll(async () => {
    // The legacy freeze is lifted so that allow_redirect on the legacy endpoints can be seen at all.
    const config = { ...serverConfig('redirect', s3Config()), delivery: 'redirect' as const, legacyMedia: { freeze: false } };
    server = await startServer({ ...config, listen: { ...config.listen, port: await freePort() } });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  async function uploadAs(contentType: string, body: Buffer, filename: string): Promise<string> {
    const response = await fetch(`${server.url}/_matrix/media/v3/upload?filename=${filename}`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': contentType },
      body,
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { content_uri: string }).content_uri.split('/').pop()!;
  }
  const clientUrl = (mediaId: string): string => `${server.url}/_matrix/client/v1/media/download/localhost/${mediaId}`;

  it('client downloads answer 307 to a short-lived URL that forces the server headers', async () => {
    const body = randomBytes(100_000);
    const mediaId = await uploadAs('image/png', body, 'pic.png');
    const response = await fetch(clientUrl(mediaId), { headers: AUTH, redirect: 'manual' });
    expect(response.status).toBe(307);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const location = new URL(response.headers.get('location')!);
    expect(location.origin).toBe(rgw.endpoint);
    expect(Number(location.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(300);
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect(direct.headers.get('content-type')).toBe('image/png');
    expect(direct.headers.get('content-disposition')).toBe('inline; filename=pic.png');
    expect(Buffer.from(await direct.arrayBuffer()).equals(body)).toBe(true);
  });

  it('types that are not inline-safe are forced to attachment, the /{fileName} segment too', async () => {
    const mediaId = await uploadAs('image/svg+xml', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'x.svg');
    const response = await fetch(`${clientUrl(mediaId)}/other.svg`, { headers: AUTH, redirect: 'manual' });
    expect(response.status).toBe(307);
    const direct = await fetch(response.headers.get('location')!);
    expect(direct.headers.get('content-type')).toBe('image/svg+xml');
    expect(direct.headers.get('content-disposition')).toBe('attachment; filename=other.svg');
  });

  it('legacy downloads redirect only with allow_redirect=true', async () => {
    const body = randomBytes(5_000);
    const mediaId = await uploadAs('application/octet-stream', body, 'a.bin');
    const legacy = `${server.url}/_matrix/media/v3/download/localhost/${mediaId}`;
    const proxied = await fetch(legacy, { redirect: 'manual' });
    expect(proxied.status).toBe(200);
    expect(Buffer.from(await proxied.arrayBuffer()).equals(body)).toBe(true);
    const redirected = await fetch(`${legacy}?allow_redirect=true`, { redirect: 'manual' });
    expect(redirected.status).toBe(307);
    const notTrue = await fetch(`${legacy}?allow_redirect=yes`, { redirect: 'manual' });
    expect(notTrue.status).toBe(200);
    await notTrue.arrayBuffer();
  });

  it('no URL without the checks: unauthenticated, unknown and quarantined media get no Location', async () => {
    const mediaId = await uploadAs('image/png', randomBytes(1_000), 'q.png');
    const anonymous = await fetch(clientUrl(mediaId), { redirect: 'manual' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('location')).toBeNull();
    const unknown = await fetch(clientUrl('NoSuchMediaId1234'), { headers: AUTH, redirect: 'manual' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('location')).toBeNull();
    const quarantine = await fetch(`${server.url}/_synapse/admin/v1/media/quarantine/localhost/${mediaId}?reason=test`, {
      method: 'POST',
      headers: AUTH,
    });
    expect(quarantine.status).toBe(200);
    const quarantined = await fetch(clientUrl(mediaId), { headers: AUTH, redirect: 'manual' });
    expect(quarantined.status).not.toBe(307);
    expect(quarantined.status).toBeGreaterThanOrEqual(400);
    expect(quarantined.headers.get('location')).toBeNull();
  });

  it('conditional requests are answered here (304), not redirected', async () => {
    const mediaId = await uploadAs('image/png', randomBytes(2_000), 'c.png');
    const head = await fetch(clientUrl(mediaId), { method: 'HEAD', headers: AUTH, redirect: 'manual' });
    expect(head.status).toBe(200);
    const etag = head.headers.get('etag')!;
    expect(etag).toBeTruthy();
    const conditional = await fetch(clientUrl(mediaId), { headers: { ...AUTH, 'if-none-match': etag }, redirect: 'manual' });
    expect(conditional.status).toBe(304);
  });
});
