/**
 * Real Synapse homeservers, nginx and TLS for the integration test beside Synapse: installing
 * Synapse (scripts/synapse/install.sh), writing a homeserver.yaml, starting and stopping a
 * homeserver on 127.0.0.1, registering users, and HTTPS requests to nginx with the test's own CA.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** Where Synapse came from, or why it could not be installed. */
export type SynapseInstall = { readonly python: string; readonly version: string } | { readonly python?: undefined; readonly reason: string };

/**
 * Runs the installer (a no-op once cached). Never throws: a failure is the reason the test
 * skips, printed loudly by the caller.
 */
export function installSynapse(): SynapseInstall {
  try {
    const out = execFileSync(join(repoRoot, 'scripts', 'synapse', 'install.sh'), [], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 15 * 60_000,
    });
    const python = out.trim().split('\n').at(-1) ?? '';
    if (!existsSync(python)) return { reason: `install.sh printed no launcher (${out.trim()})` };
    const version = execFileSync(python, ['-c', 'import synapse; print(synapse.__version__)'], { encoding: 'utf8', timeout: 120_000 }).trim();
    return { python, version };
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-5).join('\n');
    return { reason: `${(error as Error).message.split('\n')[0]}${stderr === '' ? '' : `\n${stderr}`}` };
  }
}

/** A self-signed certificate for `localhost` and 127.0.0.1 (openssl, installed with apt when missing). */
export async function selfSignedCertificate(dir: string): Promise<{ certPath: string; keyPath: string; pem: string }> {
  if (!existsSync('/usr/bin/openssl')) {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'openssl'], { stdio: 'ignore', timeout: 300_000 });
  }
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyPath, '-out', certPath,
  ]);
  return { certPath, keyPath, pem: await readFile(certPath, 'utf8') };
}

/** One listener of a homeserver.yaml. */
export interface SynapseListener {
  readonly port: number;
  readonly tls: boolean;
  readonly resources: readonly string[];
}

/** What differs between the test's homeservers. */
export interface SynapseSetup {
  readonly dir: string;
  readonly serverName: string;
  readonly listeners: readonly SynapseListener[];
  /** The plain listener the test (and hsmedia's whoami) talks to. */
  readonly clientPort: number;
  readonly tls: { readonly certPath: string; readonly keyPath: string };
  /** Extra homeserver.yaml keys (enable_media_repo: false for the one beside hsmedia, ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** The shared secret of `/_synapse/admin/v1/register` in the test's homeservers. */
const REGISTRATION_SECRET = 'hsmedia-test-registration-secret';

/** Writes homeserver.yaml and its log config; returns the homeserver.yaml path. */
export async function writeSynapseConfig(setup: SynapseSetup): Promise<string> {
  await mkdir(join(setup.dir, 'keys'), { recursive: true });
  const logConfig = join(setup.dir, 'log.yaml');
  await writeFile(
    logConfig,
    toYaml({
      version: 1,
      formatters: { precise: { format: '%(asctime)s - %(name)s - %(levelname)s - %(request)s - %(message)s' } },
      handlers: { file: { class: 'logging.FileHandler', formatter: 'precise', filename: join(setup.dir, 'homeserver.log') } },
      loggers: { 'synapse.storage.SQL': { level: 'WARNING' } },
      root: { level: 'INFO', handlers: ['file'] },
      disable_existing_loggers: false,
    }),
  );
  const config = {
    server_name: setup.serverName,
    pid_file: join(setup.dir, 'homeserver.pid'),
    listeners: setup.listeners.map((listener) => ({
      port: listener.port,
      bind_addresses: ['127.0.0.1'],
      type: 'http',
      tls: listener.tls,
      x_forwarded: !listener.tls,
      resources: [{ names: [...listener.resources], compress: false }],
    })),
    tls_certificate_path: setup.tls.certPath,
    tls_private_key_path: setup.tls.keyPath,
    database: { name: 'sqlite3', args: { database: join(setup.dir, 'homeserver.db') } },
    log_config: logConfig,
    media_store_path: join(setup.dir, 'media'),
    signing_key_path: join(setup.dir, 'keys', 'signing.key'),
    registration_shared_secret: REGISTRATION_SECRET,
    report_stats: false,
    // Loopback only: no notary (matrix.org by default), no certificate checks between the two
    // test servers (self-signed), and 127.0.0.1 allowed although Synapse refuses it by default.
    trusted_key_servers: [],
    suppress_key_server_warning: true,
    federation_verify_certificates: false,
    ip_range_whitelist: ['127.0.0.1/32'],
    url_preview_enabled: false,
    max_upload_size: '50M',
    enable_metrics: false,
    rc_federation: { window_size: 1000, sleep_limit: 1000, sleep_delay: 0, reject_limit: 1000, concurrent: 100 },
    ...setup.extra,
  };
  const path = join(setup.dir, 'homeserver.yaml');
  await writeFile(path, toYaml(config));
  return path;
}

/** A running homeserver. */
export interface RunningSynapse {
  readonly clientUrl: string;
  readonly configPath: string;
  readonly log: () => Promise<string>;
  stop(): Promise<void>;
}

/** `python -m synapse.app.homeserver -c FILE --generate-keys`: Synapse writes its signing key file as it always does. */
export async function generateSynapseKeys(python: string, configPath: string): Promise<void> {
  await promisify(execFile)(python, ['-m', 'synapse.app.homeserver', '-c', configPath, '--generate-keys'], { timeout: 180_000 });
}

/**
 * Starts a homeserver and resolves once its client listener answers `/_matrix/client/versions`
 * (or rejects with the end of its log when it exits first).
 */
export async function startSynapse(python: string, configPath: string, setup: SynapseSetup): Promise<RunningSynapse> {
  const output = createWriteStream(join(setup.dir, 'stderr.log'));
  const child: ChildProcess = spawn(python, ['-m', 'synapse.app.homeserver', '-c', configPath], {
    cwd: setup.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(output);
  child.stderr?.pipe(output);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const clientUrl = `http://127.0.0.1:${setup.clientPort}`;
  const log = async (): Promise<string> => {
    const read = (name: string): Promise<string> => readFile(join(setup.dir, name), 'utf8').catch(() => '');
    return `${(await read('stderr.log')).slice(-3000)}\n${(await read('homeserver.log')).slice(-4000)}`;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    output.end();
  };
  const deadline = Date.now() + 240_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`Synapse ${setup.serverName} exited while starting:\n${await log()}`);
    }
    try {
      const response = await fetch(`${clientUrl}/_matrix/client/versions`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Synapse ${setup.serverName} did not answer within 240 s:\n${await log()}`);
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 250))]);
  }
  return { clientUrl, configPath, log, stop };
}

/** A registered user and their access token. */
export interface SynapseUser {
  readonly userId: string;
  readonly token: string;
}

/** Registers a user with the shared-secret admin API (what `register_new_matrix_user` does). */
export async function registerUser(clientUrl: string, username: string, admin: boolean): Promise<SynapseUser> {
  const url = `${clientUrl}/_synapse/admin/v1/register`;
  const { nonce } = (await (await fetch(url)).json()) as { nonce: string };
  const password = `${username}-password`;
  const mac = createHmac('sha1', REGISTRATION_SECRET)
    .update(`${nonce}\0${username}\0${password}\0${admin ? 'admin' : 'notadmin'}`)
    .digest('hex');
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ nonce, username, password, admin, mac }),
  });
  const body = (await response.json()) as { user_id?: string; access_token?: string };
  if (!response.ok || body.user_id === undefined || body.access_token === undefined) {
    throw new Error(`registering ${username} failed: ${response.status} ${JSON.stringify(body)}`);
  }
  return { userId: body.user_id, token: body.access_token };
}

/** An answer read whole (the test's bodies are a few MiB at most). */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  json(): unknown;
}

/** HTTPS to `https://localhost:port` (nginx) trusting only the test's certificate. */
export function tlsRequest(
  port: number,
  ca: string,
  method: string,
  path: string,
  options: { readonly headers?: Record<string, string>; readonly body?: Buffer | string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', servername: 'localhost', port, method, path, ca, headers: { Host: `localhost:${port}`, ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) as unknown });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
