/**
 * A real `clamd` for tests: Debian's `clamav-daemon`, installed with apt when
 * missing, started in the foreground on a temp directory with its own
 * signature database (no signature download happens or is needed): a body
 * signature that matches {@link TEST_VIRUS_MARKER} anywhere in a file.
 * Listens on a Unix socket in the temp dir and on 127.0.0.1 at a free port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { tmpdir, type TempDir } from './index.js';

/** Bytes that the test database flags; put them anywhere in a file to make it "infected". */
export const TEST_VIRUS_MARKER = 'HSMEDIA-TEST-VIRUS-7f3a9c';
/** The signature name clamd reports for {@link TEST_VIRUS_MARKER} (it marks names from unsigned databases `.UNOFFICIAL`). */
export const TEST_SIGNATURE = 'Hsmedia.Test.Body-1.UNOFFICIAL';
const SIGNATURE_NAME = 'Hsmedia.Test.Body-1';

/** Debian's clamd, installed with apt when absent. */
export function clamdBinary(): string {
  const find = (): string | undefined => ['/usr/sbin/clamd', '/usr/bin/clamd'].find((path) => existsSync(path));
  const found = find();
  if (found !== undefined) return found;
  try {
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'update'], { stdio: 'ignore', timeout: 900_000 });
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', 'clamav-daemon'], {
      stdio: 'ignore',
      timeout: 900_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (err) {
    throw new Error(`clamd is not installed and "apt-get install clamav-daemon" failed (${(err as Error).message}); install clamav-daemon to run the scanning tests`);
  }
  const installed = find();
  if (installed === undefined) throw new Error('apt-get installed clamav-daemon but no clamd binary was found');
  return installed;
}

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One `zPING` on the socket: true on `PONG`. */
function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const connection = createConnection({ path: socket });
    let reply = '';
    const done = (ok: boolean): void => {
      connection.destroy();
      resolve(ok);
    };
    connection.setTimeout(5_000, () => done(false));
    connection.on('error', () => done(false));
    connection.on('data', (data: Buffer) => {
      reply += data.toString('latin1');
      if (reply.includes('\0')) done(reply.startsWith('PONG'));
    });
    connection.on('close', () => done(false));
    connection.on('connect', () => connection.write('zPING\0'));
  });
}

/** A running test clamd. */
export interface TestClamd {
  /** Its Unix socket. */
  readonly socket: string;
  /** Its TCP port on 127.0.0.1. */
  readonly port: number;
  readonly dir: string;
  /** What clamd wrote to its log so far. */
  log(): string;
  /** Stops clamd (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again after {@link stop}, and waits until it answers PING. */
  start(): Promise<void>;
  /** Stops clamd and removes its directory. */
  close(): Promise<void>;
}

/** Options of {@link startClamd}. */
export interface StartClamdOptions {
  /** clamd's `StreamMaxLength` (e.g. `1M`). Default `100M`. */
  readonly streamMaxLength?: string;
}

/**
 * Starts clamd on its own database and waits (generously: loading takes
 * seconds on a busy machine) until it answers PING.
 */
export async function startClamd(options: StartClamdOptions = {}): Promise<TestClamd> {
  const binary = clamdBinary();
  const temp: TempDir = await tmpdir('hsmedia-clamd-');
  const dbDir = join(temp.path, 'db');
  await mkdir(dbDir);
  const hex = Buffer.from(TEST_VIRUS_MARKER, 'latin1').toString('hex');
  // A ClamAV body signature (.ndb): name, any target type (0), any offset (*), the bytes in hex.
  await writeFile(join(dbDir, 'hsmedia-test.ndb'), `${SIGNATURE_NAME}:0:*:${hex}\n`);
  const socket = join(temp.path, 'clamd.sock');
  const port = await freePort();
  const config = join(temp.path, 'clamd.conf');
  await writeFile(
    config,
    [
      'Foreground yes',
      `DatabaseDirectory ${dbDir}`,
      `LocalSocket ${socket}`,
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      `PidFile ${join(temp.path, 'clamd.pid')}`,
      `TemporaryDirectory ${temp.path}`,
      `LogFile ${join(temp.path, 'clamd.log')}`,
      `StreamMaxLength ${options.streamMaxLength ?? '100M'}`,
      'SelfCheck 3600',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  let output = '';
  const start = async (): Promise<void> => {
    const proc = spawn(binary, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 180_000;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`clamd exited while starting: ${output}`);
      if (await ping(socket)) return;
      if (Date.now() > deadline) throw new Error(`clamd did not answer PING within 180 s: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    socket,
    port,
    dir: temp.path,
    log: () => output,
    stop,
    start,
    close: async () => {
      await stop();
      await temp.cleanup();
    },
  };
}
