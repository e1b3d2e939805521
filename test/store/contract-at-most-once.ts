/**
 * docs/protocol.md: telemetry is stored at most once per (device, boot, seq), whatever the distance
 * between a duplicate and the newest seq (issue 12 §5: a duplicate 150 000 behind was stored again).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, TelemetryPoint } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';

const T = 1_750_000_000_000;

export function defineAtMostOnceContract(engine: StoreEngine): void {
  describe(`${engine.name} store: telemetry at most once per (device, boot, seq)`, () => {
    let store: Store;

    beforeEach(async () => {
      await engine.fresh();
      store = await engine.open({ telemetryFlushMs: 1 });
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    /** One message of `deviceId`: one point per metric, all with the message's boot and seq. */
    const message = (seq: number, boot = 1, deviceId = 'd1', metrics = ['temp', 'rssi']): TelemetryPoint[] =>
      metrics.map((metric, i) => ({
        deviceId,
        metric,
        deviceTs: null,
        receivedAt: T + seq,
        value: i,
        boot,
        seq,
      }));

    const rows = async (deviceId = 'd1') =>
      (
        await engine.all<{ n: number }>(
          `SELECT count(*) AS n FROM telemetry t JOIN telemetry_series s ON s.id = t.series_id
         WHERE s.device_id = '${deviceId}'`,
        )
      )[0]!.n;

    it('stores a message sent three times once, however far behind the newest seq it is', async () => {
      await store.appendTelemetry(Array.from({ length: 1_000 }, (_, seq) => message(seq)).flat());
      await store.appendTelemetry(message(151_000));
      for (let i = 0; i < 3; i++) {
        const r = await store.appendTelemetry(message(0)); // 151 000 behind the newest
        expect(r).toEqual({ ok: true, value: { written: 0, rejected: 0, duplicates: 2 } });
        expect(await store.appendTelemetry(message(150_000))).toMatchObject({ ok: true });
      }
      expect(await rows()).toBe(2 * 1_002);
      expect(store.stats().telemetry.duplicates).toBe(2 * 3 + 2 * 2);
    });

    it('after a jump ahead, ordinary messages are stored and duplicates are not', async () => {
      await store.appendTelemetry(message(5));
      await store.appendTelemetry(message(1_000_000)); // a jump ahead
      for (let seq = 6; seq < 20; seq++)
        expect(await store.appendTelemetry(message(seq))).toEqual({
          ok: true,
          value: { written: 2, rejected: 0, duplicates: 0 },
        });
      for (const seq of [5, 1_000_000, 10])
        expect(await store.appendTelemetry(message(seq))).toEqual({
          ok: true,
          value: { written: 0, rejected: 0, duplicates: 2 },
        });
      expect(await rows()).toBe(2 * 16);
    });

    it('keeps the promise across a restart of the app', async () => {
      await store.appendTelemetry(message(42));
      await store.close();
      store = await engine.open({ telemetryFlushMs: 1 });
      expect(await store.appendTelemetry(message(42))).toMatchObject({
        value: { written: 0, duplicates: 2 },
      });
      expect(await rows()).toBe(2);
    });

    it('tells each caller of a shared batch what it wrote, duplicates inside one batch included', async () => {
      await store.close();
      store = await engine.open({ telemetryFlushMs: 60_000, telemetryBatchMax: 8 });
      const calls = [
        store.appendTelemetry(message(1)),
        store.appendTelemetry(message(2)),
        store.appendTelemetry(message(1)), // a duplicate of the first, in the same batch
        store.appendTelemetry(message(3)), // 8 points: the batch is full and flushes
      ];
      expect(await Promise.all(calls)).toEqual([
        { ok: true, value: { written: 2, rejected: 0, duplicates: 0 } },
        { ok: true, value: { written: 2, rejected: 0, duplicates: 0 } },
        { ok: true, value: { written: 0, rejected: 0, duplicates: 2 } },
        { ok: true, value: { written: 2, rejected: 0, duplicates: 0 } },
      ]);
      expect(await rows()).toBe(6);
    });

    it('tells apart another boot, another device and another metric of the same seq', async () => {
      await store.appendTelemetry(message(7, 1, 'd1', ['temp']));
      expect(await store.appendTelemetry(message(7, 2, 'd1', ['temp']))).toMatchObject({
        value: { written: 1 },
      });
      expect(await store.appendTelemetry(message(7, 1, 'd2', ['temp']))).toMatchObject({
        value: { written: 1 },
      });
      expect(await store.appendTelemetry(message(7, 1, 'd1', ['rssi']))).toMatchObject({
        value: { written: 1 },
      });
      expect((await rows('d1')) + (await rows('d2'))).toBe(4);
    });

    it('stores every point of a convention without boot and seq (nothing to deduplicate on)', async () => {
      const p: TelemetryPoint = { deviceId: 'd1', metric: 'temp', deviceTs: null, receivedAt: T, value: 1 };
      await store.appendTelemetry([p]);
      expect(await store.appendTelemetry([p])).toEqual({
        ok: true,
        value: { written: 1, rejected: 0, duplicates: 0 },
      });
      expect(await rows()).toBe(2);
    });

    it('refuses a point with a boot but no seq, or one that is not a uint32, and writes the rest', async () => {
      const base: TelemetryPoint = {
        deviceId: 'd1',
        metric: 'temp',
        deviceTs: null,
        receivedAt: T,
        value: 1,
      };
      const r = await store.appendTelemetry([
        { ...base, boot: 1 },
        { ...base, seq: 1 },
        { ...base, boot: 1, seq: -1 },
        { ...base, boot: 1.5, seq: 1 },
        { ...base, boot: 1, seq: 2 ** 32 },
        { ...base, boot: 1, seq: 3 },
      ]);
      expect(r).toEqual({ ok: true, value: { written: 1, rejected: 5, duplicates: 0 } });
    });
  });
}
