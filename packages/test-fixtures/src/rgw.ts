import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/**
 * A throwaway Ceph cluster with a RADOS Gateway (S3) on 127.0.0.1, started by
 * `scripts/ceph/start-rgw.sh` (which installs Debian's ceph packages when
 * missing). Imported as `@hsmedia/test-fixtures/rgw`. Start one per test
 * file in `beforeAll` (about ten seconds) and stop it in `afterAll`.
 */
export interface RgwCluster {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The cluster's directory (config, logs, pid files). */
  readonly dir: string;
  /** Creates a bucket with a fresh name (or `name`) and returns its name. */
  createBucket(name?: string): Promise<string>;
  /** SIGSTOPs radosgw: connections are accepted by the kernel but nothing answers (a hung gateway). */
  pauseGateway(): void;
  /** SIGCONTs a paused radosgw. */
  resumeGateway(): void;
  /** Stops radosgw (the cluster stays); connections are then refused. */
  stopGateway(): Promise<void>;
  /** Starts radosgw again on the same port and waits until it answers. */
  startGateway(): Promise<void>;
  /** Stops radosgw, the OSD and the monitor, in that order, and removes the directory. */
  stop(): Promise<void>;
}

const run = promisify(execFile);
const SCRIPTS = fileURLToPath(new URL('../../../scripts/ceph/', import.meta.url));
/** apt install (when needed) plus start-up; generous for a busy 2-core CI machine. */
export const RGW_START_TIMEOUT_MS = 900_000;

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`rgw: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function pidOf(path: string): Promise<number | null> {
  try {
    const pid = Number.parseInt(await readFile(path, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a cluster (see {@link RgwCluster}). */
export async function startRgw(): Promise<RgwCluster> {
  const { stdout } = await run('bash', [`${SCRIPTS}start-rgw.sh`], { maxBuffer: 16 * 1024 * 1024, timeout: RGW_START_TIMEOUT_MS });
  const env = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .filter((line) => /^RGW_[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const dir = env.RGW_DIR!;
  const endpoint = env.RGW_ENDPOINT!;
  const port = Number(new URL(endpoint).port);
  const rgwPidFile = `${dir}/run/client.rgw.a.pid`;
  let stopped = false;
  // A test runner that dies without afterAll still takes the daemons down with it.
  const stopOnExit = (): void => {
    if (!stopped) execFileSync('bash', [`${SCRIPTS}stop-rgw.sh`, dir], { stdio: 'ignore' });
  };
  process.once('exit', stopOnExit);
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.RGW_ACCESS_KEY!, secretAccessKey: env.RGW_SECRET_KEY! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const signalGateway = async (signal: NodeJS.Signals): Promise<number | null> => {
    const pid = await pidOf(rgwPidFile);
    if (pid !== null) process.kill(pid, signal);
    return pid;
  };
  return {
    endpoint,
    accessKeyId: env.RGW_ACCESS_KEY!,
    secretAccessKey: env.RGW_SECRET_KEY!,
    dir,
    async createBucket(name = `t-${randomBytes(6).toString('hex')}`) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    pauseGateway() {
      const pid = Number.parseInt(readFileSync(rgwPidFile, 'utf8'), 10);
      process.kill(pid, 'SIGSTOP');
    },
    resumeGateway() {
      const pid = Number.parseInt(readFileSync(rgwPidFile, 'utf8'), 10);
      process.kill(pid, 'SIGCONT');
    },
    async stopGateway() {
      const pid = await signalGateway('SIGCONT');
      if (pid === null) return;
      process.kill(pid, 'SIGTERM');
      await waitUntil('radosgw to exit', async () => !alive(pid), 60_000);
      await waitUntil('the gateway port to close', async () => !(await portAccepts(port)), 60_000);
    },
    async startGateway() {
      await run('radosgw', ['-c', `${dir}/ceph.conf`, '-n', 'client.rgw.a']);
      await waitUntil('radosgw to listen', () => portAccepts(port), 120_000);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', stopOnExit);
      client.destroy();
      await run('bash', [`${SCRIPTS}stop-rgw.sh`, dir], { timeout: 120_000 });
    },
  };
}
