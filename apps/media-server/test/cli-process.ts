import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI (`npx tsc -b apps/media-server` first). */
export const CLI_PATH: string = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** A running `hsmedia-server` child process with its output collected. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #waiters = new Set<() => void>();

  constructor(args: readonly string[], cwd: string) {
    this.child = spawn(process.execPath, [CLI_PATH, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.#notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        resolve({ code, signal });
        this.#notify();
      });
    });
  }

  /** JSON log lines written so far. */
  logLines(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Resolves once `predicate` holds; rejects if the process exits first. */
  async waitFor<T>(predicate: () => T | undefined | false, what: string): Promise<T> {
    for (;;) {
      const value = predicate();
      if (value !== undefined && value !== false) return value;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`process exited before ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        this.#waiters.add(resolve);
      });
    }
  }

  /** Waits for the startup log line and returns the listen URL. */
  listening(): Promise<string> {
    return this.waitFor(() => {
      const line = this.logLines().find((entry) => typeof entry['url'] === 'string' && String(entry['msg']).startsWith('listening'));
      return line === undefined ? undefined : String(line['url']);
    }, 'listening');
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
    this.#waiters.clear();
  }
}

/** Runs the CLI to completion. */
export async function runToExit(args: readonly string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = new CliProcess(args, cwd);
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}
