/**
 * The reconciler corrects firmware drift when the policy says so (`--firmware-drift update`), on
 * the real app with the demo fleet (embedded broker, simulated MQTT devices, a real SQLite file):
 * a device whose spec asks for the sample image's version gets the update, audited as the
 * reconciler; a device whose update was cancelled is not flashed again; a version with no stored
 * image is reported and waits; a spec change starts the update at once (no 15 s wait).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECONCILER_ACTOR } from '../../src/firmware/drift-updater.js';
import { FINAL_UPDATE_STEPS, type UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const SAMPLE = join(import.meta.dirname, '../../assets/firmware/sample-1.1.0.bin');
const SAMPLE_SHA256 = 'ad36f74d0eba0cf72e4e5ed6096121f4a4f2454b02d47d9be792fc036b571e54';

let dir: string;
let app: App;
let api: HostApiHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-drift-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 3, serial: 0, telemetryIntervalMs: 1000 },
    firmwareDrift: 'update',
  });
  api = createHostApi(app);
  const r = await api.call('firmwareImport', {
    manifest: readFileSync(`${SAMPLE}.manifest.json`, 'utf8'),
    image: readFileSync(SAMPLE).toString('base64'),
  });
  if (!r.ok) throw new Error(`import failed: ${r.error.code} ${r.error.message}`);
});

afterAll(async () => {
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined, ms = 40_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const onlineInFleet = (id: string) =>
  until(`${id} online`, () => (app.fleet.device(id) && app.links.hub?.device(id)?.online ? true : undefined));

const ended = (id: string) =>
  until<UpdateJobSnapshot>(`the job of ${id} to end`, () => {
    const j = app.updates.get(id);
    return j && FINAL_UPDATE_STEPS.includes(j.step) ? j : undefined;
  });

describe('firmware drift with the policy update', () => {
  it('updates a device whose spec asks for a stored version, audited as the reconciler; its drift is gone', async () => {
    const [a, b] = app.sim!.mqtt.map((s) => s.id);
    await onlineInFleet(a!);
    await onlineInFleet(b!);
    expect(app.sim!.mqtt[0]!.device.firmware.version).not.toBe('1.1.0');
    const set = await app.fleet.setSpec(a!, { firmware: '1.1.0' });
    expect(set.ok).toBe(true);
    await app.firmwareDrift!.pass();
    expect(app.updates.get(a!)).toMatchObject({ version: '1.1.0', actor: RECONCILER_ACTOR });
    expect(app.updates.get(b!)).toBeUndefined(); // no spec, no drift, no job
    const job = await ended(a!);
    expect(job.step).toBe('succeeded');
    expect(job.error).toBeUndefined();
    expect(app.sim!.mqtt[0]!.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
    await until('the drift to clear', () => (app.fleet.device(a!)?.drift.length === 0 ? true : undefined));
    const requested = await app.store.queryEvents({
      deviceId: a!,
      kind: 'firmware.updateRequested',
      limit: 10,
    });
    const audits = requested.items.flatMap((e) => (e.ok ? [e.value.data] : []));
    expect(audits).toEqual([{ version: '1.1.0', sha256: SAMPLE_SHA256, actor: RECONCILER_ACTOR }]);
    // A pass after success starts nothing more.
    const after = await app.firmwareDrift!.pass();
    expect(after.started).not.toContain(a);
  });

  it('does not flash a device again after its update to that version was cancelled, and says why', async () => {
    const b = app.sim!.mqtt[1]!.id;
    // The device answers 2 s late, so the job is still transferring when it is cancelled (a 64 KiB
    // image otherwise crosses a loopback broker before the cancel can come).
    app.sim!.mqtt[1]!.device.setFaults({ slowReplyMs: 2000 });
    expect((await app.fleet.setSpec(b, { firmware: '1.1.0' })).ok).toBe(true);
    await app.firmwareDrift!.pass();
    expect(app.updates.get(b)).toMatchObject({ actor: RECONCILER_ACTOR, step: 'transferring' });
    const cancelled = app.updates.cancel(b);
    expect(cancelled.ok).toBe(true);
    expect((await ended(b)).step).toBe('cancelled');
    const report = await app.firmwareDrift!.pass();
    expect(report.started).not.toContain(b);
    expect(report.gaveUp).toContainEqual({ deviceId: b, version: '1.1.0', step: 'cancelled' });
    expect(app.updates.get(b)?.step).toBe('cancelled');
    expect(app.sim!.mqtt[1]!.device.firmware.version).not.toBe('1.1.0');
    app.sim!.mqtt[1]!.device.setFaults({ slowReplyMs: 0 });
  });

  it('reports a wanted version with no stored image and starts nothing', async () => {
    const c = app.sim!.mqtt[2]!.id;
    await onlineInFleet(c);
    expect((await app.fleet.setSpec(c, { firmware: '9.9.9' })).ok).toBe(true);
    const report = await app.firmwareDrift!.pass();
    expect(report.noImage).toContainEqual({ deviceId: c, version: '9.9.9' });
    expect(app.updates.get(c)).toBeUndefined();
  });

  it('a spec change asking for a stored version starts the update at once, without a pass being called', async () => {
    const c = app.sim!.mqtt[2]!.id;
    const at = Date.now();
    expect((await app.fleet.setSpec(c, { firmware: '1.1.0' })).ok).toBe(true);
    // The periodic pass is 15 s apart: the kick from the `device.spec` event starts it well before.
    await until(`the reconciler's job on ${c}`, () => app.updates.get(c), 3000);
    expect(Date.now() - at).toBeLessThan(3000);
    expect(app.updates.get(c)).toMatchObject({ version: '1.1.0', actor: RECONCILER_ACTOR });
    expect((await ended(c)).step).toBe('succeeded');
  });
});
