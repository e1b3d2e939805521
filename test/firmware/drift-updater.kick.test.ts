/**
 * The reconciler acts on a spec change at once (issue 14): a `device.spec` from the fleet kicks a
 * pass ~100 ms later instead of waiting for the 15 s periodic pass, which stays as the safety net.
 * On a simulated clock, with the store, images, jobs and fleet faked (the real-app behaviour is
 * drift-updater.test.ts's).
 */
import { describe, expect, it } from 'vitest';
import type { FleetEvent } from '../../src/devices/fleet/types.js';
import type { FirmwareDriftUpdaterOptions } from '../../src/firmware/drift-updater.js';
import { createFirmwareDriftUpdater, RECONCILER_ACTOR } from '../../src/firmware/drift-updater.js';
import type { ImageListing } from '../../src/firmware/firmware-images.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { DeviceFirmware } from '../../src/store/firmware-store.js';

const SHA = 'a'.repeat(64);
const listing: ImageListing = {
  image: {
    sha256: SHA,
    version: '1.2.0',
    kinds: ['pump'],
    hardwareRevision: null,
    size: 3,
    keyId: 'k',
    manifest: {},
    importedAt: 0,
    importedBy: 'cli',
    downgradeFrom: null,
  },
  runningOn: [],
  wantedBy: [],
};

function rig() {
  const clock = createSimulatedClock();
  const runtime = createRuntime({ clock });
  const rows: DeviceFirmware[] = [{ deviceId: 'pump-1', kind: 'pump', running: '1.1.0', desired: null }];
  const started: { deviceId: string; version: string; actor: string | undefined }[] = [];
  const watchers = new Set<(e: Pick<FleetEvent, 'kind'>) => void>();
  const options: FirmwareDriftUpdaterOptions = {
    runtime,
    firmware: {
      store: {
        devicesByFirmware: async () => rows,
        listJobs: async () => [],
      },
      images: {
        list: async () => ({ images: [listing], unreadable: [] }),
        readImage: async () => ({ ok: true, value: new Uint8Array([1, 2, 3]) }),
      },
    } as unknown as FirmwareDriftUpdaterOptions['firmware'],
    updates: {
      start: (deviceId, what) => {
        started.push({ deviceId, version: what.version, actor: what.actor });
        return { ok: true, value: {} } as ReturnType<FirmwareDriftUpdaterOptions['updates']['start']>;
      },
      get: () => undefined,
    },
    fleet: {
      device: (id) => (id === 'pump-1' ? { kind: 'pump' } : undefined),
      watchEvents(listener) {
        watchers.add(listener);
        return () => watchers.delete(listener);
      },
    },
    held: () => false,
    audit: async () => {},
  };
  /** What the fleet's setSpec does: the row written, then the `device.spec` event. */
  const setSpec = (version: string) => {
    rows[0] = { ...rows[0]!, desired: version };
    for (const w of watchers) w({ kind: 'device.spec' });
  };
  return { clock, runtime, options, started, watchers, setSpec };
}

describe('the drift updater and spec changes', () => {
  it('a spec asking for another version starts the update within ~100 ms, not at the next 15 s pass', async () => {
    const r = rig();
    const drift = createFirmwareDriftUpdater(r.options);
    drift.start();
    await flushMicrotasks(10); // the first pass: no drift yet
    expect(r.started).toEqual([]);
    await r.clock.advanceAsync(1000);
    r.setSpec('1.2.0');
    await r.clock.advanceAsync(99);
    expect(r.started).toEqual([]);
    await r.clock.advanceAsync(1);
    await flushMicrotasks(10);
    expect(r.started).toEqual([{ deviceId: 'pump-1', version: '1.2.0', actor: RECONCILER_ACTOR }]);
    expect(r.clock.now()).toBeLessThan(15_000);
    drift.stop();
    r.runtime.dispose();
  });

  it('other fleet events do not kick a pass; the periodic pass still runs as the safety net', async () => {
    const r = rig();
    const drift = createFirmwareDriftUpdater({ ...r.options, intervalMs: 15_000 });
    drift.start();
    await flushMicrotasks(10);
    // A spec written without the event (another instance, a restart): only the periodic pass sees it.
    const rows = await r.options.firmware.store.devicesByFirmware();
    (rows as DeviceFirmware[])[0] = { ...rows[0]!, desired: '1.2.0' };
    for (const w of r.watchers) w({ kind: 'device.online' });
    await r.clock.advanceAsync(14_000);
    await flushMicrotasks(10);
    expect(r.started).toEqual([]);
    await r.clock.advanceAsync(1000);
    await flushMicrotasks(10);
    expect(r.started.map((s) => s.deviceId)).toEqual(['pump-1']);
    drift.stop();
    r.runtime.dispose();
  });

  it('stop stops watching the fleet: a spec change after it starts nothing', async () => {
    const r = rig();
    const drift = createFirmwareDriftUpdater(r.options);
    drift.start();
    await flushMicrotasks(10);
    expect(r.watchers.size).toBe(1);
    drift.stop();
    expect(r.watchers.size).toBe(0);
    r.setSpec('1.2.0');
    await r.clock.advanceAsync(20_000);
    await flushMicrotasks(10);
    expect(r.started).toEqual([]);
    r.runtime.dispose();
  });
});
