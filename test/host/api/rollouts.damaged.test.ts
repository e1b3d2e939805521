/**
 * A damaged rollout over the host API, on the real app across a restart (demo fleet, embedded
 * broker, a real SQLite file): a rollout whose saved JSON was damaged while the app was stopped
 * is listed by `rollouts` as `damaged` with the field at fault, is not continued, no longer keeps
 * its image from being deleted, and `rolloutDelete` removes it (audited); a rollout that reads is
 * not deleted that way.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { DEMO_DATABASE_FILE_NAME, startApp } from '../../../src/host/app.js';
import type { Results } from '../../../src/host/contract.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import { rawAll, rawRun } from '../../store/helpers.js';

const SAMPLE = join(import.meta.dirname, '../../../assets/firmware/sample-1.1.0.bin');
const SAMPLE_SHA256 = 'ad36f74d0eba0cf72e4e5ed6096121f4a4f2454b02d47d9be792fc036b571e54';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(dir: string): Promise<{ app: App; api: HostApiHandle }> {
  const app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 },
    conventions: [],
  });
  const api = createHostApi(app);
  const stop = async () => {
    api.close();
    await app.stop();
  };
  cleanups.push(stop);
  return { app, api };
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A window that opens in three hours (UTC): the rollout runs and starts no job. */
function closedWindow(): string {
  const hh = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;
  const h = new Date().getUTCHours() + 3;
  return `${hh(h)}-${(h + 1) % 24 === 0 ? '24:00' : hh(h + 1)} utc`;
}

describe('a damaged rollout over the API', () => {
  it('is listed as damaged with its field, holds no image, and is deleted by rolloutDelete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fv-api-ro-damaged-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const first = await start(dir);
    const imported = await first.api.call('firmwareImport', {
      manifest: readFileSync(`${SAMPLE}.manifest.json`, 'utf8'),
      image: readFileSync(SAMPLE).toString('base64'),
    });
    expect(imported.ok).toBe(true);
    const devices = first.app.sim!.mqtt.map((d) => d.id);
    await until(() => devices.every((id) => first.app.fleet.has(id)), 'the demo devices in the fleet');
    const ids: string[] = [];
    for (const device of devices) {
      const r = await first.api.call('rolloutCreate', {
        sha256: SAMPLE_SHA256,
        devices: [device],
        window: closedWindow(),
      });
      if (!r.ok) throw new Error(`rollout refused: ${r.error.code} ${r.error.message}`);
      ids.push((r.value as Results['rolloutCreate']).id);
    }
    const [damagedId, goodId] = ids as [string, string];
    await first.api.call('rollouts', {});
    cleanups.pop();
    first.api.close();
    await first.app.stop();

    // Damaged while the app was stopped: a wave index no rollout has.
    const file = join(dir, DEMO_DATABASE_FILE_NAME);
    await rawRun(
      file,
      `UPDATE firmware_rollouts SET body = json_set(body, '$.snapshot.wave', -1) WHERE id = ?`,
      [damagedId],
    );

    const { app, api } = await start(dir);
    await until(() => app.rollouts.all.has(goodId), 'the good rollout continued');
    expect(app.rollouts.all.has(damagedId)).toBe(false);
    const listed = await api.call('rollouts', {});
    if (!listed.ok) throw new Error(listed.error.message);
    const rows = listed.value as Results['rollouts'];
    const damaged = rows.find((r) => r.id === damagedId);
    expect(damaged).toMatchObject({
      state: 'damaged',
      version: '1.1.0',
      sha256: SAMPLE_SHA256,
      createdBy: 'api',
      order: [],
      damage: {
        field: 'snapshot.wave',
        savedState: 'running',
        message: `rollout ${damagedId}: saved snapshot.wave must be a whole number >= 0, got -1`,
      },
    });
    expect(damaged!.reason).toBe(damaged!.damage!.message);
    expect(rows.find((r) => r.id === goodId)).toMatchObject({ state: 'running', damage: null });

    // The good one holds the image; the damaged one does not.
    const images = app.firmware.ok ? app.firmware.value.images : undefined;
    const refused = await images!.remove(SAMPLE_SHA256, 'ops');
    expect(refused).toMatchObject({ ok: false, error: { code: 'inUse' } });
    if (!refused.ok) {
      expect(refused.error.message).toContain(`rollout:${goodId}`);
      expect(refused.error.message).not.toContain(damagedId);
    }
    expect(await api.call('rolloutDelete', { id: goodId })).toMatchObject({
      ok: false,
      error: { code: 'notDamaged' },
    });
    expect(await api.call('rolloutCancel', { id: goodId })).toMatchObject({
      ok: true,
      value: { state: 'cancelled' },
    });
    // Only the damaged rollout names the image now: it is deleted.
    const removed = await images!.remove(SAMPLE_SHA256, 'ops');
    expect(removed).toMatchObject({ ok: true, value: { sha256: SAMPLE_SHA256 } });

    expect(await api.call('rolloutDelete', { id: damagedId })).toEqual({
      ok: true,
      value: { deleted: damagedId },
    });
    const after = await api.call('rollouts', {});
    expect(after.ok && (after.value as Results['rollouts']).map((r) => r.id)).toEqual([goodId]);
    expect(await api.call('rolloutDelete', { id: damagedId })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    const audit = await rawAll<{ data: string }>(
      file,
      "SELECT data FROM events WHERE kind = 'firmware.rolloutDeleted'",
    );
    expect(audit.map((a) => JSON.parse(a.data))).toMatchObject([
      { rollout: damagedId, actor: 'api', reason: expect.stringContaining('snapshot.wave') },
    ]);
  }, 60_000);
});
