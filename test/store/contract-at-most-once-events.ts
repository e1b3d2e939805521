/**
 * docs/protocol.md §8: a device's `event` message is logged at most once per (device, boot, seq),
 * as its telemetry is stored (test/store/contract-at-most-once.ts), whatever the distance between
 * a duplicate and the newest seq and across a reopen of the store (issue 12 §5). Events that are
 * not a device's message (the host's own, lifecycle, audit) carry no key and are all kept.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventInput, Store } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';

const T = 1_750_000_000_000;

export function defineEventsAtMostOnceContract(engine: StoreEngine): void {
  describe(`${engine.name} store: device events at most once per (device, boot, seq)`, () => {
    let store: Store;

    beforeEach(async () => {
      await engine.fresh();
      store = await engine.open();
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    /** A device's `event` message as the link hub logs it. */
    const event = (seq: number, boot = 1, deviceId = 'd1', name = 'overheat'): EventInput => ({
      at: T + seq,
      deviceId,
      kind: `device.event.${name}`,
      data: { severity: 'warning', boot, seq },
      deviceMessage: { boot, seq },
    });

    const rows = async (where = "device_id = 'd1'") =>
      (await engine.all<{ n: number }>(`SELECT count(*) AS n FROM events WHERE ${where}`))[0]!.n;

    it('logs an event sent again 2,000 messages later once, and answers with the stored seq', async () => {
      const [first] = await store.appendEvents([event(0)]);
      for (let from = 1; from <= 2_000; from += 500)
        await store.appendEvents(Array.from({ length: 500 }, (_, i) => event(from + i, 1, 'd1', 'tick')));
      for (let i = 0; i < 3; i++) expect(await store.appendEvents([event(0)])).toEqual([first]);
      expect(await rows("kind = 'device.event.overheat'")).toBe(1);
      expect(await rows()).toBe(2_001);
      expect(store.stats().events.duplicates).toBe(3);
    });

    it('keeps the promise across a reopen of the store', async () => {
      const [first] = await store.appendEvents([event(42)]);
      await store.close();
      store = await engine.open();
      expect(store.stats().events.duplicates).toBe(0);
      expect(await store.appendEvents([event(42)])).toEqual([first]);
      expect(await store.appendEvents([event(42)], { durability: 'full' })).toEqual([first]);
      expect(await rows()).toBe(1);
      expect(store.stats().events.duplicates).toBe(2);
    });

    it('skips only the duplicates of a shared batch: the rest of it is stored, each caller told its seqs', async () => {
      const [a] = await store.appendEvents([event(1)]);
      const calls = [
        store.appendEvents([event(2), event(1), { at: T, kind: 'device.online', deviceId: 'd1', data: {} }]),
        store.appendEvents([event(3), event(2)]), // event(2) twice in the same batch
        store.appendEvents([{ at: T, kind: 'host.started', data: null }]),
      ];
      const [first, second, third] = await Promise.all(calls);
      expect(first![1]).toBe(a);
      expect(second![1]).toBe(first![0]);
      const fresh = [first![0]!, first![2]!, second![0]!, third![0]!];
      expect(new Set(fresh).size).toBe(4);
      expect(fresh.every((seq) => seq > a!)).toBe(true);
      expect(await rows('true')).toBe(5);
      expect(store.stats().events.duplicates).toBe(2);

      const page = await store.queryEvents({ deviceId: 'd1', limit: 10 });
      expect(page.items.map((i) => (i.ok ? i.value.seq : -1))).toEqual([a, first![0], first![2], second![0]]);
    });

    it('tells apart another boot, another device and another seq', async () => {
      await store.appendEvents([event(7)]);
      await store.appendEvents([event(7, 2), event(7, 1, 'd2'), event(8)]);
      expect(await rows('true')).toBe(4);
      expect(store.stats().events.duplicates).toBe(0);
    });

    it('keeps every event that is not a device message, however alike', async () => {
      const online: EventInput = { at: T, kind: 'device.online', deviceId: 'd1', data: { seq: 1 } };
      const audit: EventInput = { at: T, kind: 'firmware.update', data: { seq: 1 } };
      for (let i = 0; i < 3; i++) {
        await store.appendEvents([online, audit]);
        await store.appendEvents([online], { durability: 'full' });
      }
      expect(await rows('true')).toBe(9);
      expect(store.stats().events.duplicates).toBe(0);
    });

    it('refuses a device message without a device or with a boot or seq that is not a uint32', async () => {
      const bad: [EventInput, string][] = [
        [{ at: T, kind: 'k', data: null, deviceMessage: { boot: 1, seq: 1 } }, 'events[0].deviceMessage'],
        [{ ...event(1), deviceMessage: { boot: -1, seq: 1 } }, 'events[0].deviceMessage.boot'],
        [{ ...event(1), deviceMessage: { boot: 1, seq: 2 ** 32 } }, 'events[0].deviceMessage.seq'],
        [{ ...event(1), deviceMessage: { boot: 1, seq: 1.5 } }, 'events[0].deviceMessage.seq'],
      ];
      for (const [input, field] of bad)
        await expect(store.appendEvents([input])).rejects.toMatchObject({
          code: 'invalidArgument',
          field,
        });
      expect(await rows('true')).toBe(0);
    });
  });
}
