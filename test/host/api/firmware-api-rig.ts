/**
 * The real app the firmware API tests talk to: a demo fleet of MQTT devices on the embedded broker,
 * a real SQLite file in a data folder of its own that trusts a lab signing key made here, and the
 * host API over it. Shared by the rollout tests (soak, trial, trial checks), which each built it
 * by hand.
 *
 * @example
 * const rig = await startFirmwareApi('ro-soak', { mqtt: 2, telemetryIntervalMs: 1000 });
 * const signed = signManifest(describeImage(image, { version: '2.0.0', kinds }), rig.keys.privateKeyPem);
 * await rig.close();
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRUSTED_KEYS_DIR } from '../../../src/firmware/index.js';
import type { SigningKeyPair } from '../../../src/firmware/keys.js';
import { generateSigningKeyPair } from '../../../src/firmware/keys.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { DEMO_DATABASE_FILE_NAME, startApp } from '../../../src/host/app.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import { rawAll } from '../../store/helpers.js';

export interface FirmwareApiRig {
  readonly dir: string;
  readonly app: App;
  readonly api: HostApiHandle;
  /** The lab key the data folder trusts. */
  readonly keys: SigningKeyPair;
  /** The policy saved with rollout `id` (saved just after each change: waited for). */
  savedPolicy(id: string): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Polls `get` until it gives something, every `everyMs`; throws naming `what` after `ms`. */
export async function until<T>(
  get: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 40_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startFirmwareApi(
  name: string,
  demo: { readonly mqtt: number; readonly telemetryIntervalMs: number },
): Promise<FirmwareApiRig> {
  const keys = generateSigningKeyPair();
  const dir = mkdtempSync(join(tmpdir(), `fv-api-${name}-`));
  mkdirSync(join(dir, TRUSTED_KEYS_DIR), { recursive: true });
  writeFileSync(join(dir, TRUSTED_KEYS_DIR, 'lab.pub'), keys.publicKeyPem);
  const app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: demo.mqtt, serial: 0, telemetryIntervalMs: demo.telemetryIntervalMs },
    conventions: [],
  });
  const api = createHostApi(app);
  return {
    dir,
    app,
    api,
    keys,
    savedPolicy: (id) =>
      until(async () => {
        const rows = await rawAll<{ body: string }>(
          join(dir, DEMO_DATABASE_FILE_NAME),
          'SELECT body FROM firmware_rollouts WHERE id = ?',
          [id],
        );
        return rows[0] ? (JSON.parse(rows[0].body).policy as Record<string, unknown>) : undefined;
      }, `rollout ${id} saved`),
    async close() {
      api.close();
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
