import { describe, expect, it } from 'vitest';
import { createDeviceEventLog } from '../../src/devices/device-event-log.js';
import type { JsonValue } from '../../src/lib/json.js';
import type { EventInput } from '../../src/store/store.js';
import { createRig } from '../runtime/helpers.js';

/** A store double for the unit test only: the log's writes, in order (the store has its own suite). */
function recordingStore() {
  const calls: { events: EventInput[]; durability: string | undefined }[] = [];
  return {
    calls,
    all: () => calls.flatMap((c) => c.events),
    appendEvents: async (events: readonly EventInput[], o?: { durability?: string }) => {
      calls.push({ events: [...events], durability: o?.durability });
      return events.map((_, i) => i);
    },
  };
}

describe('device event log', () => {
  it('events appended in one turn reach the store in one call', async () => {
    const rig = createRig();
    const store = recordingStore();
    const log = createDeviceEventLog({ runtime: rig.rt, store });
    for (let i = 0; i < 50; i++) log.append('device.online', `d${i}`, { i });
    await log.flush();
    expect(store.calls).toHaveLength(1);
    expect(store.all()).toHaveLength(50);
  });

  it('operator events go with full durability, device events with normal', async () => {
    const rig = createRig();
    const store = recordingStore();
    const log = createDeviceEventLog({ runtime: rig.rt, store });
    log.append('device.online', 'a', null);
    log.append('device.adopted', 'a', { by: 'ana' }, 'full');
    await log.flush();
    expect(store.calls.map((c) => [c.durability, c.events.map((e) => e.kind)])).toEqual([
      ['full', ['device.adopted']],
      ['normal', ['device.online']],
    ]);
  });

  it('past the per-device limit every event is counted and one summary says how many were left out', async () => {
    const rig = createRig();
    const store = recordingStore();
    const log = createDeviceEventLog({ runtime: rig.rt, store, maxPerWindow: 10, windowMs: 60_000 });
    const written = Array.from({ length: 25 }, (_, i) => log.limited('device.badMessage', 'pump-7', { i }));
    expect(written.filter(Boolean)).toHaveLength(10);
    // another device has its own budget
    expect(log.limited('device.badMessage', 'pump-8', {})).toBe(true);
    await log.flush();
    expect(store.all().filter((e) => e.kind === 'device.eventsSuppressed')).toHaveLength(0);
    rig.clock.advance(60_000);
    await log.flush();
    const summary = store.all().filter((e) => e.kind === 'device.eventsSuppressed');
    expect(summary).toEqual([
      expect.objectContaining({
        deviceId: 'pump-7',
        data: { kind: 'device.badMessage', suppressed: 15, written: 10, windowMs: 60_000 },
      }),
    ]);
    expect(log.stats().suppressed).toBe(15);
    // a new window has a fresh budget
    expect(log.limited('device.badMessage', 'pump-7', {})).toBe(true);
  });

  it('a flood of distinct keys is aggregated: memory bounded, the count kept', async () => {
    const rig = createRig();
    const store = recordingStore();
    const log = createDeviceEventLog({ runtime: rig.rt, store, maxPerWindow: 5, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) log.limited('device.unknown', `ghost-${i}`, { i } as JsonValue);
    await log.close();
    const rows = store.all();
    // 100 tracked keys write one each; the aggregate key writes 5 and summarises the rest
    expect(rows.filter((e) => e.kind === 'device.unknown')).toHaveLength(105);
    const summary = rows.filter((e) => e.kind === 'device.eventsSuppressed');
    expect(summary).toHaveLength(1);
    expect(summary[0]!.data).toMatchObject({
      kind: 'device.unknown',
      suppressed: 10_000 - 105,
      devices: 9_900,
    });
    expect(summary[0]!.deviceId).toBeUndefined();
  });

  it('a failing store is reported and counted, never thrown at the caller', async () => {
    const rig = createRig();
    const log = createDeviceEventLog({
      runtime: rig.rt,
      store: { appendEvents: () => Promise.reject(new Error('disk full')) },
    });
    log.append('device.online', 'a', null);
    await log.flush();
    expect(log.stats().failed).toBe(1);
    expect(rig.events.some((e) => e.type === 'report' && e.message.includes('1 lost'))).toBe(true);
  });
});
