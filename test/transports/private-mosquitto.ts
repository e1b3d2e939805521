/**
 * A private Mosquitto for one test (the shared one must not be restarted nor reconfigured): its own
 * port and configuration lines, no anonymous clients, no persistence; stopped by the test.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { connectAsync } from 'mqtt';
import { freePort } from './helpers.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const HAS_MOSQUITTO = existsSync(MOSQUITTO);

export interface PrivateMosquitto {
  readonly url: string;
  /** What it logged so far (`-v`: every connect, refusal and plugin command). */
  log(): string;
  /** SIGTERM, then waits for its exit; idempotent. */
  stop(): Promise<void>;
}

/** The CONNACK return code a client gets (0: in); the client is closed again. */
export async function connectCode(url: string, options: IClientOptions): Promise<number> {
  try {
    const c = await connectAsync(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 3000,
      ...options,
    });
    await c.endAsync(true);
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

/**
 * Starts Mosquitto on a free port of 127.0.0.1 with `auth` (its access lines: a password_file, the
 * dynamic security plugin…), its configuration written in `dir`; resolves once `probe` gets in.
 */
export async function startPrivateMosquitto(
  dir: string,
  name: string,
  auth: readonly string[],
  probe: { readonly username: string; readonly password: string },
): Promise<PrivateMosquitto> {
  const port = await freePort();
  const conf = join(dir, `${name}.conf`);
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      'persistence false',
      // Run as root (CI containers), Mosquitto would switch to its own user and not read our 0600 files.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      ...auth,
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(MOSQUITTO, ['-c', conf, '-v'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };
  const url = `mqtt://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  while ((await connectCode(url, { ...probe, clientId: `probe-${name}` })) !== 0) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mosquitto ${name} did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, log: () => log, stop };
}
