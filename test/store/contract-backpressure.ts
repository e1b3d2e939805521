/**
 * The store side of backpressure (issue 12 §0): when the telemetry buffer is full the store says
 * so (`overloaded`), offers `drained()` to wait for room, and counts every point it refused or
 * failed to commit, by cause, in its stats. Nothing is dropped without a count.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, TelemetryPoint } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';
import { sleep } from './helpers.js';

const T = 1_750_000_000_000;
const points = (n: number, from = 0): TelemetryPoint[] =>
  Array.from({ length: n }, (_, i) => ({
    deviceId: 'd1',
    metric: 't',
    deviceTs: null,
    receivedAt: T + from + i,
    value: from + i,
  }));

export function defineBackpressureContract(engine: StoreEngine): void {
  describe(`${engine.name} store: backpressure`, () => {
    let store: Store;

    beforeEach(async () => {
      await engine.fresh();
      store = await engine.open({
        telemetryFlushMs: 300,
        telemetryBatchMax: 100,
        telemetryBufferMax: 150,
      });
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    it('drained() resolves at once while there is room', async () => {
      let done = false;
      await store.drained().then(() => {
        done = true;
      });
      expect(done).toBe(true);
    });

    it('refuses past the bound, waits in drained() until the buffer empties, then takes the retry', async () => {
      const first = store.appendTelemetry(points(90));
      const refused = await store.appendTelemetry(points(90, 90));
      expect(refused).toMatchObject({ ok: false, error: { code: 'overloaded' } });
      expect(store.stats().telemetry).toMatchObject({ overloaded: 90, waiting: 90, failed: 0 });

      let drained = false;
      const room = store.drained().then(() => {
        drained = true;
      });
      await sleep(100);
      expect(drained).toBe(false); // the first 90 still wait for their flush
      await room;
      expect((await first).ok).toBe(true);
      // The caller retries what was refused: nothing lost.
      expect(await store.appendTelemetry(points(90, 90))).toMatchObject({ ok: true, value: { written: 90 } });
      expect(await engine.all('SELECT count(*) AS n FROM telemetry')).toEqual([{ n: 180 }]);
      expect(store.stats().telemetry).toMatchObject({ written: 180, overloaded: 90, failed: 0, waiting: 0 });
    });

    it('counts points whose commit failed, with the cause, and the callers hear of it', async () => {
      await store.appendTelemetry(points(1)); // creates the series
      await engine.refuseTelemetryValue(666, 'disk on fire');
      const bad = store.appendTelemetry([{ ...points(1)[0]!, value: 666 }, ...points(4, 10)]);
      await expect(bad).rejects.toMatchObject({ code: 'writeFailed' });
      expect(store.stats().telemetry).toMatchObject({ written: 1, failed: 5 });
      expect(store.stats().telemetry.lastFailure).toContain('disk on fire');
    });
  });
}
