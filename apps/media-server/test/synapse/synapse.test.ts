/**
 * hsmedia beside two real Synapse homeservers, as an operator runs it (docs/deploy/synapse.md):
 *
 *   A: Synapse (enable_media_repo: false) + hsmedia behind nginx with TLS, nginx running
 *      docs/deploy/nginx-synapse.conf; hsmedia reads A's homeserver.yaml (synapse.config_path),
 *      signs with the key Synapse wrote, checks tokens with whoami and admins with Synapse.
 *   B: a plain Synapse with its own media repository, federating over TLS.
 *
 * Both federate on 127.0.0.1 with a certificate this test makes. Synapse comes from Debian
 * unstable through scripts/synapse/install.sh (cached); when it cannot be installed the suite says
 * so loudly and skips. Every check that runs must pass.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSigningKeyFile, generateSigningKey } from '@hsmedia/signing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli-main.js';
import { parseConfig } from '../../src/config.js';
import { startServer, type StartedServer } from '../../src/server.js';
import { freePort, LogSink, tempDir } from '../helpers.js';
import { ensureNginx, runNginx, type RunningNginx } from '../nginx-binary.js';
import {
  generateSynapseKeys,
  installSynapse,
  registerUser,
  selfSignedCertificate,
  startSynapse,
  tlsRequest,
  writeSynapseConfig,
  type Answer,
  type RunningSynapse,
  type SynapseSetup,
  type SynapseUser,
} from './synapse-harness.js';

const GUIDE_NGINX = fileURLToPath(new URL('../../../../docs/deploy/nginx-synapse.conf', import.meta.url));
const install = installSynapse();
if (install.python === undefined) {
  const line = '!'.repeat(100);
  // Loud on purpose: a skipped integration test must not pass unnoticed.
  process.stderr.write(`\n${line}\n!! SKIPPED: the real-Synapse integration test could not install Synapse:\n!! ${install.reason.replaceAll('\n', '\n!! ')}\n!! Run scripts/synapse/install.sh to see why.\n${line}\n\n`);
}

/** The guide's nginx config with its placeholders filled in, as `envsubst` would. */
function fillPlaceholders(template: string, values: Readonly<Record<string, string>>): string {
  const filled = template.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => values[name] ?? whole);
  // Only the comments may still name placeholders.
  const lines = filled.split('\n').filter((line) => !line.trimStart().startsWith('#'));
  expect(lines.join('\n')).not.toMatch(/\$\{[A-Z_]+\}/);
  return filled;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(install.python === undefined)(`hsmedia beside Synapse ${install.python === undefined ? '' : install.version}`, { timeout: 120_000 }, () => {
  const python = install.python ?? '';
  let dir: { path: string; cleanup(): Promise<void> };
  let cert: { certPath: string; keyPath: string; pem: string };
  let synapseA: RunningSynapse | undefined;
  let synapseB: RunningSynapse | undefined;
  let nginx: RunningNginx | undefined;
  let media: StartedServer | undefined;
  let hsmediaConfigPath = '';
  let setupA: SynapseSetup;
  /** A's public ports on nginx: clients and federation. */
  let clientPort = 0;
  let serverA = '';
  let serverB = '';
  const hsmediaLog = new LogSink();
  let alice: SynapseUser; // server admin of A
  let bob: SynapseUser; // plain user of A
  let carol: SynapseUser; // user of B

  /** A client request to A through nginx (TLS). */
  const onA = (method: string, path: string, token: string | undefined, options: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Answer> =>
    tlsRequest(clientPort, cert.pem, method, path, {
      ...options,
      headers: { ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }), ...options.headers },
    });
  /** A client request to B (plain client listener). */
  const onB = async (method: string, path: string, token: string, body?: Buffer, contentType = 'application/octet-stream'): Promise<Answer> => {
    const response = await fetch(`${synapseB!.clientUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': contentType }) },
      ...(body === undefined ? {} : { body }),
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, headers: Object.fromEntries(response.headers), body: bytes, json: () => JSON.parse(bytes.toString('utf8')) as unknown };
  };
  const contentUri = (answer: Answer): { server: string; id: string } => {
    const uri = (answer.json() as { content_uri: string }).content_uri;
    const [, server, id] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(uri) ?? [];
    expect(server).toBeDefined();
    return { server: server!, id: id! };
  };
  const diagnostics = async (): Promise<string> =>
    `--- Synapse A ---\n${(await synapseA?.log()) ?? ''}\n--- Synapse B ---\n${(await synapseB?.log()) ?? ''}\n--- nginx ---\n${nginx?.log() ?? ''}` +
    `\n--- hsmedia ---\n${hsmediaLog.lines.slice(-30).map((line) => JSON.stringify(line)).join('\n')}`;

  beforeAll(async () => {
    const nginxBinary = ensureNginx();
    dir = await tempDir('hsmedia-synapse-');
    cert = await selfSignedCertificate(dir.path);
    const ports = { clientA: await freePort(), federationA: await freePort(), synapseA: await freePort(), federationB: await freePort(), clientB: await freePort() };
    clientPort = ports.clientA;
    serverA = `localhost:${ports.federationA}`;
    serverB = `127.0.0.1:${ports.federationB}`;
    setupA = {
      dir: join(dir.path, 'synapse-a'),
      serverName: serverA,
      listeners: [{ port: ports.synapseA, tls: false, resources: ['client', 'federation'] }],
      clientPort: ports.synapseA,
      tls: cert,
      // The guide's Synapse settings: hsmedia is the media repository.
      extra: { enable_media_repo: false, public_baseurl: `https://localhost:${ports.clientA}/` },
    };
    const setupB: SynapseSetup = {
      dir: join(dir.path, 'synapse-b'),
      serverName: serverB,
      listeners: [
        { port: ports.federationB, tls: true, resources: ['federation'] },
        { port: ports.clientB, tls: false, resources: ['client', 'media'] },
      ],
      clientPort: ports.clientB,
      tls: cert,
    };
    const [configA, configB] = await Promise.all([writeSynapseConfig(setupA), writeSynapseConfig(setupB)]);
    await Promise.all([generateSynapseKeys(python, configA), generateSynapseKeys(python, configB)]);
    [synapseA, synapseB] = await Promise.all([startSynapse(python, configA, setupA), startSynapse(python, configB, setupB)]);
    [alice, bob, carol] = await Promise.all([
      registerUser(synapseA.clientUrl, 'alice', true),
      registerUser(synapseA.clientUrl, 'bob', false),
      registerUser(synapseB.clientUrl, 'carol', false),
    ]);

    // hsmedia as the guide configures it: most settings from Synapse's homeserver.yaml.
    const hsmediaDir = join(dir.path, 'hsmedia');
    hsmediaConfigPath = join(dir.path, 'hsmedia.yaml');
    const hsmediaYaml = [
      `synapse: {config_path: ${configA}}`,
      'listen: {host: 127.0.0.1, port: 0, trusted_proxies: ["127.0.0.1/32"]}',
      `database: {sqlite: {path: ${join(hsmediaDir, 'media.db')}}}`,
      `auth: {homeserver_url: "${synapseA.clientUrl}", homeserver_admins: true}`,
      'legacy_media: {freeze: true}',
      `federation: {ca_file: ${cert.certPath}, ip_range_allowlist: ["127.0.0.1/32"]}`,
      'log_level: info',
      '',
    ].join('\n');
    await writeFile(hsmediaConfigPath, hsmediaYaml);
    const parsed = parseConfig((await import('yaml')).parse(hsmediaYaml), dir.path);
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    expect(parsed.config.serverName).toBe(serverA);
    expect(parsed.config.signingKeyPath).toBe(join(setupA.dir, 'keys', 'signing.key'));
    media = await startServer(parsed.config, { logDestination: hsmediaLog });

    const site = fillPlaceholders(await readFile(GUIDE_NGINX, 'utf8'), {
      SERVER_NAME: 'localhost',
      CLIENT_LISTEN: `127.0.0.1:${ports.clientA}`,
      FEDERATION_LISTEN: `127.0.0.1:${ports.federationA}`,
      SYNAPSE: `127.0.0.1:${ports.synapseA}`,
      HSMEDIA: new URL(media.url).host,
      MAX_BODY: '50M',
      TLS_CERTIFICATE: cert.certPath,
      TLS_CERTIFICATE_KEY: cert.keyPath,
    });
    nginx = await runNginx(nginxBinary, join(dir.path, 'nginx'), site);
    for (const port of [ports.clientA, ports.federationA]) {
      for (let attempt = 0; ; attempt++) {
        try {
          await tlsRequest(port, cert.pem, 'GET', '/_matrix/client/versions');
          break;
        } catch (error) {
          if (attempt > 200) throw new Error(`nginx did not start: ${nginx.log()} ${(error as Error).message}`);
          await new Promise((done) => setTimeout(done, 50));
        }
      }
    }
  }, 600_000);

  afterAll(async () => {
    await media?.close();
    await nginx?.stop();
    await Promise.all([synapseA?.stop(), synapseB?.stop()]);
    await dir?.cleanup();
  }, 120_000);

  it('downloads media of A on B (B fetches it from hsmedia over federation, X-Matrix checked with B key)', async () => {
    const bytes = randomBytes(5 * 1024 * 1024);
    const uploaded = await onA('POST', '/_matrix/media/v3/upload?filename=a.bin', alice.token, { body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
    expect(uploaded.status, uploaded.body.toString()).toBe(200);
    const { server, id } = contentUri(uploaded);
    expect(server).toBe(serverA);
    const onSynapseB = await onB('GET', `/_matrix/client/v1/media/download/${server}/${id}`, carol.token);
    expect(onSynapseB.status, `${onSynapseB.body.toString().slice(0, 300)}\n${await diagnostics()}`).toBe(200);
    expect(sha256(onSynapseB.body)).toBe(sha256(bytes));
  });

  it('downloads media of B on A (hsmedia fetches it, signing with the key Synapse A publishes), with Range', async () => {
    const bytes = randomBytes(5 * 1024 * 1024);
    const uploaded = await onB('POST', '/_matrix/media/v3/upload?filename=b.bin', carol.token, bytes);
    expect(uploaded.status, uploaded.body.toString()).toBe(200);
    const { server, id } = contentUri(uploaded);
    expect(server).toBe(serverB);
    const onHsmedia = await onA('GET', `/_matrix/client/v1/media/download/${server}/${id}`, bob.token);
    expect(onHsmedia.status, `${onHsmedia.body.toString().slice(0, 300)}\n${await diagnostics()}`).toBe(200);
    expect(sha256(onHsmedia.body)).toBe(sha256(bytes));
    const range = await onA('GET', `/_matrix/client/v1/media/download/${server}/${id}`, bob.token, { headers: { Range: 'bytes=1000-1999' } });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 1000-1999/${bytes.length}`);
    expect(range.body.equals(bytes.subarray(1000, 2000))).toBe(true);
  });

  it('serves Range requests of local media through nginx', async () => {
    const bytes = randomBytes(64 * 1024);
    const { id } = contentUri(await onA('POST', '/_matrix/media/v3/upload', alice.token, { body: bytes, headers: { 'Content-Type': 'application/octet-stream' } }));
    const range = await onA('GET', `/_matrix/client/v1/media/download/${serverA}/${id}`, alice.token, { headers: { Range: 'bytes=-100' } });
    expect(range.status).toBe(206);
    expect(range.body.equals(bytes.subarray(bytes.length - 100))).toBe(true);
  });

  it('serves thumbnails both ways', async () => {
    const png = await sharp({ create: { width: 1000, height: 750, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
    const fromA = contentUri(await onA('POST', '/_matrix/media/v3/upload?filename=p.png', alice.token, { body: png, headers: { 'Content-Type': 'image/png' } }));
    const fromB = contentUri(await onB('POST', '/_matrix/media/v3/upload?filename=p.png', carol.token, png, 'image/png'));
    const size = 'width=64&height=64&method=scale';
    const onSynapseB = await onB('GET', `/_matrix/client/v1/media/thumbnail/${fromA.server}/${fromA.id}?${size}`, carol.token);
    expect(onSynapseB.status, `${onSynapseB.body.toString().slice(0, 300)}\n${await diagnostics()}`).toBe(200);
    expect(String(onSynapseB.headers['content-type'])).toMatch(/^image\/(png|jpeg|webp)/);
    const thumbB = await sharp(onSynapseB.body).metadata();
    expect(Math.max(thumbB.width, thumbB.height)).toBeLessThan(1000);
    const onHsmedia = await onA('GET', `/_matrix/client/v1/media/thumbnail/${fromB.server}/${fromB.id}?${size}`, alice.token);
    expect(onHsmedia.status, onHsmedia.body.toString().slice(0, 300)).toBe(200);
    expect(String(onHsmedia.headers['content-type'])).toMatch(/^image\/(png|jpeg|webp)/);
    const thumbA = await sharp(onHsmedia.body).metadata();
    expect(Math.max(thumbA.width, thumbA.height)).toBeLessThan(1000);
  });

  it('answers 404 M_NOT_FOUND for media that does not exist, both ways', async () => {
    const onSynapseB = await onB('GET', `/_matrix/client/v1/media/download/${serverA}/doesNotExist0123`, carol.token);
    expect(onSynapseB.status).toBe(404);
    expect(onSynapseB.json()).toMatchObject({ errcode: 'M_NOT_FOUND' });
    const onHsmedia = await onA('GET', `/_matrix/client/v1/media/download/${serverB}/doesNotExist0123`, alice.token);
    expect(onHsmedia.status).toBe(404);
    expect(onHsmedia.json()).toMatchObject({ errcode: 'M_NOT_FOUND' });
  });

  it('keeps the freeze: new media is not served on the legacy endpoints', async () => {
    const { id } = contentUri(await onA('POST', '/_matrix/media/v3/upload', alice.token, { body: 'frozen', headers: { 'Content-Type': 'text/plain' } }));
    const legacy = await onA('GET', `/_matrix/media/v3/download/${serverA}/${id}`, undefined);
    expect(legacy.status).toBe(404);
    const authenticated = await onA('GET', `/_matrix/client/v1/media/download/${serverA}/${id}`, bob.token);
    expect(authenticated.status).toBe(200);
    expect(authenticated.body.toString()).toBe('frozen');
  });

  it("lets Synapse's server admin use the media admin API through hsmedia (no admins entry); a non-admin gets 403", async () => {
    expect(media!.config.admins).not.toContain(alice.userId);
    const stats = await onA('GET', '/_synapse/admin/v1/statistics/users/media', alice.token);
    expect(stats.status, stats.body.toString()).toBe(200);
    const refused = await onA('GET', '/_synapse/admin/v1/statistics/users/media', bob.token);
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ errcode: 'M_FORBIDDEN' });
  });

  it('quarantines media (by the Synapse admin): A and B stop serving it', async () => {
    const { id } = contentUri(await onA('POST', '/_matrix/media/v3/upload', bob.token, { body: 'bad content', headers: { 'Content-Type': 'text/plain' } }));
    const byBob = await onA('POST', `/_synapse/admin/v1/media/quarantine/${serverA}/${id}`, bob.token, { body: '{}', headers: { 'Content-Type': 'application/json' } });
    expect(byBob.status).toBe(403);
    const quarantined = await onA('POST', `/_synapse/admin/v1/media/quarantine/${serverA}/${id}`, alice.token, { body: '{}', headers: { 'Content-Type': 'application/json' } });
    expect(quarantined.status, quarantined.body.toString()).toBe(200);
    expect((await onA('GET', `/_matrix/client/v1/media/download/${serverA}/${id}`, bob.token)).status).toBe(404);
    const onSynapseB = await onB('GET', `/_matrix/client/v1/media/download/${serverA}/${id}`, carol.token);
    expect(onSynapseB.status).toBe(404);
  });

  it('refuses to start without the key file, naming the path (exit 1)', async () => {
    const missing = join(dir.path, 'no-such-dir', 'signing.key');
    const path = join(dir.path, 'missing-key.yaml');
    await writeFile(path, `${await readFile(hsmediaConfigPath, 'utf8')}signing_key_path: ${missing}\n`);
    let err = '';
    const code = await runCli(['start', '--config', path], { stdout: { write: () => true }, stderr: { write: (text: string) => (err += text) }, cwd: dir.path });
    expect(code).toBe(1);
    expect(err).toContain(`signing key file ${missing} cannot be read`);
  });

  it('refuses a key Synapse does not publish, saying how to fix it (exit 1)', async () => {
    const ownKey = join(dir.path, 'own.key');
    const key = generateSigningKey();
    await writeFile(ownKey, formatSigningKeyFile(key));
    const path = join(dir.path, 'wrong-key.yaml');
    await writeFile(path, `${await readFile(hsmediaConfigPath, 'utf8')}signing_key_path: ${ownKey}\n`);
    let err = '';
    const code = await runCli(['start', '--config', path], { stdout: { write: () => true }, stderr: { write: (text: string) => (err += text) }, cwd: dir.path });
    expect(code).toBe(1);
    const published = (await readFile(join(setupA.dir, 'keys', 'signing.key'), 'utf8')).split(' ').slice(0, 2).join(':');
    expect(err).toContain(`the homeserver publishes ${published}`);
    expect(err).toContain("set signing_key_path to the homeserver's own key file");
  });

  // Last: a 5xx answer from hsmedia would make Synapse B back off from A for a while.
  it('serves an async upload to B once its bytes arrive (B waits on hsmedia)', async () => {
    const created = await onA('POST', '/_matrix/media/v1/create', alice.token);
    expect(created.status, created.body.toString()).toBe(200);
    const [, server, id] = /^mxc:\/\/([^/]+)\/(.+)$/.exec((created.json() as { content_uri: string }).content_uri) ?? [];
    expect(server).toBe(serverA);
    const pending = await onA('GET', `/_matrix/client/v1/media/download/${serverA}/${id}?timeout_ms=0`, alice.token);
    expect(pending.status).toBe(504);
    expect(pending.json()).toMatchObject({ errcode: 'M_NOT_YET_UPLOADED' });

    let settled = false;
    const waiting = onB('GET', `/_matrix/client/v1/media/download/${serverA}/${id}?timeout_ms=60000`, carol.token).finally(() => (settled = true));
    /** Fails with the logs when `promise` takes longer than 45 s. */
    const within = async <T>(stage: string, promise: Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => void diagnostics().then((logs) => reject(new Error(`${stage}: no answer within 45 s\n${logs}`))), 45_000);
      });
      try {
        return await Promise.race([promise, late]);
      } finally {
        clearTimeout(timer);
      }
    };
    // B's request is parked on hsmedia before the bytes are sent.
    await within(
      "B's request reaching hsmedia",
      (async () => {
        while (media!.media.uploadWaiters === 0 && !settled) await new Promise((done) => setTimeout(done, 50));
      })(),
    );
    if (settled) {
      const early = await waiting;
      throw new Error(`B answered before the upload finished: ${early.status} ${early.body.toString()}\n${await diagnostics()}`);
    }
    const put = await within(
      'the PUT of the bytes',
      onA('PUT', `/_matrix/media/v3/upload/${serverA}/${id}`, alice.token, { body: 'late bytes', headers: { 'Content-Type': 'text/plain' } }),
    );
    expect(put.status, put.body.toString()).toBe(200);
    const answer = await within("B's answer", waiting);
    expect(answer.status, `${answer.body.toString().slice(0, 300)}\n${await diagnostics()}`).toBe(200);
    expect(answer.body.toString()).toBe('late bytes');
  });
});
