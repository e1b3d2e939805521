/**
 * Bounded under a flood of strangers (issue 12 §4): 10,000 hellos with distinct unknown ids on a
 * real fleet and SQLite file (simulated clock). The discovered list stays at its bound (the oldest
 * dropped, counted), the log and event log get 20 lines and one summary instead of 10,000, and a
 * device the operator adopts from the list still joins.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { LinkHandle, LinkHub } from '../../src/transports/link-hub.js';
import { createLinkHub } from '../../src/transports/link-hub.js';
import type { DeviceId, HelloMessage, TelemetryMessage } from '../../src/transports/protocol.js';
import { createProtocolCarrier } from '../../src/transports/protocol-carrier.js';
import { tempDir } from '../store/helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const hello = (id: string): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: id as DeviceId,
  kind: 'fleetvisor.generic',
  boot: 1,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
});

async function rig(adopt: 'auto' | 'manual', maxDiscovered: number | 'default' = 1000) {
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
  let hub: LinkHub | undefined;
  const carrier = createProtocolCarrier({ send: (id, m) => hub?.send(id, m) ?? false, replyTimeoutMs: 5000 });
  const fleet = createFleet({ runtime, store, kinds: [genericDevice], carrier, reconcileIntervalMs: 0 });
  await fleet.start();
  hub = createLinkHub({
    runtime,
    fleet,
    store,
    adopt,
    ...(maxDiscovered === 'default' ? {} : { maxDiscovered }),
  });
  cleanups.push(async () => {
    await fleet.stop().catch(() => {});
    await store.close().catch(() => {});
    runtime.dispose();
  });
  const link: LinkHandle = { via: 'mqtt', presence: 'status', send: () => true };
  return { clock, store, logs, fleet, hub, link };
}

describe('link hub under a flood of unknown hellos', () => {
  it('keeps the discovered list bounded, announces 20 and sums up the rest, and adoption still works', async () => {
    const { clock, store, logs, fleet, hub, link } = await rig('manual');

    for (let i = 0; i < 10_000; i++) hub.deliver(`stranger-${i}` as DeviceId, hello(`stranger-${i}`), link);
    await flushMicrotasks();

    const list = hub.discovered();
    expect(list).toHaveLength(1000);
    expect(list[0]!.id).toBe('stranger-9000'); // the oldest 9,000 dropped
    expect(hub.discoveryStats()).toEqual({ listed: 1000, dropped: 9000, unannounced: 9980 });
    const waiting = logs.filter((r) => r.message === 'new device waits for adoption');
    expect(waiting).toHaveLength(20);

    clock.advance(60_000);
    await flushMicrotasks();
    await hub.flush(); // the events written when the minute ended are committed
    const summary = logs.find(
      (r) => r.message === 'more new devices were discovered than announced one by one',
    );
    expect(summary?.fields).toMatchObject({ count: 9980 });
    const events = await store.queryEvents({ kind: 'device.discovered', limit: 10_000 });
    expect(events.items.length).toBe(20);
    const summaries = await store.queryEvents({ kind: 'device.discoveredSummary', limit: 10 });
    expect(summaries.items.map((e) => e.ok && e.value.data)).toEqual([{ count: 9980, windowMs: 60_000 }]);

    // The operator adopts one from the list: it joins the fleet.
    const adopted = await hub.adopt('stranger-9999');
    expect(adopted).toEqual({ ok: true });
    expect(fleet.has('stranger-9999')).toBe(true);
    expect(hub.discovered()).toHaveLength(999);
  });
  it('automatic adoption pauses past 200 new devices a minute, with one alarm; the rest wait for an operator', async () => {
    const { clock, store, logs, fleet, hub, link } = await rig('auto');
    for (let i = 0; i < 500; i++) hub.deliver(`fake-${i}` as DeviceId, hello(`fake-${i}`), link);
    await clock.advanceAsync(0);
    for (let i = 0; i < 50 && fleet.list().length < 200; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fleet.list()).toHaveLength(200);
    const waiting = hub.discovered();
    expect(waiting).toHaveLength(300);
    expect(new Set(waiting.map((d) => d.reason))).toEqual(new Set(['adoptionPaused']));
    expect(logs.filter((r) => r.message.startsWith('adoption paused'))).toHaveLength(1);
    // Heard again, a paused device keeps waiting (no adoption behind the operator's back).
    hub.deliver('fake-499' as DeviceId, hello('fake-499'), link);
    await new Promise((r) => setTimeout(r, 20));
    expect(fleet.has('fake-499')).toBe(false);
    // The operator adopts it.
    expect(await hub.adopt('fake-499')).toEqual({ ok: true });
    expect(fleet.has('fake-499')).toBe(true);
    const alarms = await store.queryEvents({ kind: 'fleet.adoptionPaused', limit: 10 });
    expect(alarms.items).toHaveLength(1);
  });
  it('counts every bad message of a device past the 10 a minute written, and writes one summary when the minute ends', async () => {
    const { clock, store, hub, link } = await rig('manual');
    const ghost = 'ghost-1' as DeviceId;
    for (let seq = 1; seq <= 500; seq++) {
      const m: TelemetryMessage = { v: 1, type: 'telemetry', boot: 1, seq, ts: 1, values: { t: seq } };
      hub.deliver(ghost, m, link);
    }
    expect(hub.stats(ghost)?.errors).toEqual({ unknownDevice: 500 });
    await clock.advanceAsync(60_000);
    await hub.flush(); // the events written when the minute ended are committed
    const one = await store.queryEvents({ kind: 'device.badMessage', deviceId: ghost, limit: 1000 });
    expect(one.items).toHaveLength(10);
    const summary = await store.queryEvents({
      kind: 'device.badMessagesSuppressed',
      deviceId: ghost,
      limit: 10,
    });
    expect(summary.items.map((e) => e.ok && e.value.data)).toEqual([
      { count: 490, windowMs: 60_000, via: 'mqtt' },
    ]);
  });
  it('lists a real fleet of 2,000 waiting devices whole by default (the bound is for floods)', async () => {
    const { hub, link } = await rig('manual', 'default');
    for (let i = 0; i < 2000; i++) hub.deliver(`site-${i}` as DeviceId, hello(`site-${i}`), link);
    expect(hub.discovered()).toHaveLength(2000);
    expect(hub.discoveryStats().dropped).toBe(0);
  });

  it('bounds bad messages across devices: 1,000 strangers sending 10 each write 100 events, 20 log lines and one summary', async () => {
    const { clock, store, logs, hub, link } = await rig('manual');
    for (let n = 0; n < 1000; n++)
      for (let seq = 1; seq <= 10; seq++) {
        const m: TelemetryMessage = { v: 1, type: 'telemetry', boot: 1, seq, ts: 1, values: { t: seq } };
        hub.deliver(`nobody-${n}` as DeviceId, m, link);
      }
    expect(hub.stats('nobody-999' as DeviceId)?.errors).toEqual({ unknownDevice: 10 });
    await clock.advanceAsync(60_000);
    await hub.flush(); // the events written when the minute ended are committed
    const one = await store.queryEvents({ kind: 'device.badMessage', limit: 10_000 });
    expect(one.items).toHaveLength(100);
    expect(logs.filter((r) => r.message === 'bad message from device')).toHaveLength(20);
    const summary = await store.queryEvents({ kind: 'device.badMessagesSummary', limit: 10 });
    expect(summary.items.map((e) => e.ok && e.value.data)).toEqual([
      { count: 9900, devices: 990, byCode: { unknownDevice: 9900 }, windowMs: 60_000 },
    ]);
    const line = logs.find(
      (r) => r.message === 'more bad messages than written one by one in the last minute',
    );
    expect(line?.fields).toMatchObject({ count: 9900, devices: 990, notLogged: 80 });
  });
});
