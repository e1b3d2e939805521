/**
 * A flood of unknown Homie device ids (`adopt: 'manual'`) on a real fleet and SQLite file, on a
 * simulated clock, without a broker: the Homie session model and its fleet side. The devices
 * tracked stop at `maxDevices` (the rest refused, counted), so the discovered list does not grow
 * without limit; new devices are announced through the per-minute budget every convention uses
 * (src/transports/discovered-list.ts): 20 log lines and events, then one summary when the minute
 * ends; and a device from the list is still adopted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HomieFleetSync } from '../../src/conventions/homie/homie-fleet-sync.js';
import { homieDevice } from '../../src/conventions/homie/homie-kind.js';
import { HomieModel } from '../../src/conventions/homie/homie-model.js';
import type { Session } from '../../src/conventions/homie/homie-session.js';
import { discoveredOf } from '../../src/conventions/homie/homie-session.js';
import { createFleet } from '../../src/devices/fleet.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from '../store/helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rig(maxDevices: number) {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const logs: { message: string; fields?: Record<string, unknown> }[] = [];
  const keep = (message: string, fields?: Record<string, unknown>) => {
    logs.push({ message, ...(fields ? { fields } : {}) });
  };
  const logger: Logger = { debug: keep, info: keep, warn: keep, error: keep };
  const runtime = createRuntime({ clock, logger });
  const fleet = createFleet({ runtime, store, kinds: [homieDevice], reconcileIntervalMs: 0 });
  await fleet.start();
  let sync: HomieFleetSync | undefined;
  const model = new HomieModel({ baseTopic: 'homie', now: () => clock.wallNow(), maxDevices }, (effect) =>
    sync?.carryOut(effect),
  );
  sync = new HomieFleetSync({
    runtime,
    pid: runtime.nextPid(),
    name: 'homie-bridge:homie',
    fleet,
    store,
    model,
    baseTopic: 'homie',
    via: 'mqtt:homie',
    adopt: 'manual',
    statusDelayMs: 0,
    running: () => true,
    closed: () => false,
    live: () => {},
  });
  cleanups.push(async () => {
    await fleet.stop().catch(() => {});
    await store.close().catch(() => {});
    runtime.dispose();
  });
  /** What the bridge lists (HomieBridge.discovered). */
  const discovered = () =>
    [...model.sessions.values()].map((s: Session) => discoveredOf(s)).filter((d) => d !== undefined);
  return { clock, store, logs, fleet, model, sync, discovered };
}

describe('Homie under a flood of unknown device ids', () => {
  it('tracks at most maxDevices, announces 20 and sums up the rest, and adoption still works', async () => {
    const { clock, store, logs, fleet, model, sync, discovered } = await rig(300);
    for (let i = 0; i < 3000; i++) model.receive(`homie/stranger-${i}/$homie`, Buffer.from('4.0.0'), true);

    expect(model.sessions.size).toBe(300);
    expect(discovered()).toHaveLength(300);
    expect(model.counters.refused).toBe(2700);
    expect(logs.filter((r) => r.message === 'Homie device waits for adoption')).toHaveLength(20);

    clock.advance(60_000);
    await sync.flush();
    const announced = await store.queryEvents({ kind: 'device.discovered', limit: 10_000 });
    expect(announced.items).toHaveLength(20);
    const summaries = await store.queryEvents({ kind: 'device.discoveredSummary', limit: 10 });
    expect(summaries.items.map((e) => e.ok && e.value.data)).toEqual([
      { count: 280, windowMs: 60_000, via: 'mqtt:homie' },
    ]);
    expect(logs.find((r) => r.message.startsWith('more new Homie devices'))?.fields).toMatchObject({
      count: 280,
    });

    // The operator adopts one from the list: it joins the fleet and leaves the list.
    const s = model.sessions.get('stranger-299')!;
    expect(await sync.add(s)).toEqual({ ok: true });
    await flushMicrotasks();
    expect(fleet.has('stranger-299')).toBe(true);
    expect(discovered()).toHaveLength(299);
  });
});
