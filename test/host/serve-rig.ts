/**
 * For the tests that run the real `fleetvisor` binary: `startServe` starts `fleetvisor serve` on a
 * data folder and waits for the UI's URL (the app is up), `stop` ends it with SIGTERM;
 * `runFleetvisor` runs one command of the binary to its end.
 *
 * @example
 * const serve = await startServe(dataDir, ['--broker-port', '0']);
 * const r = runFleetvisor(['update', 'list', '--data-dir', dataDir]);
 * await serve.stop();
 */
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'scripts/fleetvisor.mjs');

export interface Serve {
  readonly process: ChildProcess;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** SIGTERM, and resolves once it exited (at once when it has already). */
  stop(): Promise<void>;
}

/** `fleetvisor serve --data-dir DIR ARGS…`, resolved once it printed the UI's URL. */
export async function startServe(
  dataDir: string,
  args: readonly string[] = [],
  options: { readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number } = {},
): Promise<Serve> {
  let output = '';
  const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FLEETVISOR_MQTT_URL: '', FLEETVISOR_PORT: '', ...options.env },
  });
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const timeoutMs = options.timeoutMs ?? 110_000;
  const deadline = Date.now() + timeoutMs;
  while (!/Open the Fleetvisor UI at: (\S+)/.test(output)) {
    if (child.exitCode !== null) throw new Error(`fleetvisor serve exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`no URL printed within ${timeoutMs / 1000} s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One command of the binary, run to its end. */
export function runFleetvisor(
  args: readonly string[],
  options: {
    readonly env?: Readonly<Record<string, string>>;
    readonly cwd?: string;
    readonly timeoutMs?: number;
  } = {},
) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    env: { ...process.env, FLEETVISOR_DATA_DIR: '', ...options.env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
