/**
 * Retention on every engine: telemetry, events and finished commands older than their cut-off
 * are deleted (in batches smaller than what is there), newer ones kept; an open command is kept
 * whatever its age. The app's loop (src/host/retention.ts) runs a pass on the runtime clock and
 * turns days into cut-offs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRetention } from '../../src/host/retention.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createRuntime, silentLogger } from '../../src/runtime/runtime.js';
import type { Store } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';

const DAY = 24 * 3600_000;
const NOW = Date.parse('2026-12-06T12:00:00Z');

export function defineRetentionContract(engine: StoreEngine): void {
  let store: Store | undefined;

  async function seeded() {
    await engine.fresh();
    store = await engine.open({ telemetryFlushMs: 10 });
    const points = [];
    for (let i = 0; i < 120; i++)
      points.push({
        deviceId: i % 2 ? 'pump-1' : 'pump-2',
        metric: i % 3 ? 'temp' : 'flow',
        deviceTs: null,
        receivedAt: NOW - (i < 80 ? 40 : 5) * DAY + i,
        value: i,
      });
    const appended = await store.appendTelemetry(points);
    expect(appended.ok).toBe(true);
    await store.drained();
    await store.appendEvents([
      { at: NOW - 400 * DAY, deviceId: 'pump-1', kind: 'device.state', data: { to: 'connected' } },
      { at: NOW - 10 * DAY, deviceId: 'pump-1', kind: 'device.state', data: { to: 'offline' } },
    ]);
    const commands = [
      { id: 'old-done', at: NOW - 400 * DAY, status: 'succeeded' as const },
      { id: 'old-open', at: NOW - 400 * DAY, status: 'sent' as const },
      { id: 'new-done', at: NOW - DAY, status: 'failed' as const },
    ];
    for (const c of commands)
      await store.recordCommand({
        commandId: c.id,
        deviceId: 'pump-1',
        action: 'ping',
        args: {},
        actor: 'test',
        status: c.status,
        requestedAt: c.at,
      });
  }

  describe(`${engine.name} store: retention`, () => {
    afterEach(async () => {
      await store?.close();
      store = undefined;
      await engine.cleanup();
    });

    it('deletes what is older than each cut-off in batches, keeps the rest and every open command', async () => {
      await seeded();
      const deleted = await store!.pruneHistory(
        { telemetry: NOW - 30 * DAY, events: NOW - 365 * DAY, commands: NOW - 365 * DAY },
        { batchRows: 7 },
      );
      expect(deleted).toEqual({ telemetry: 80, events: 1, commands: 1 });
      const left = await engine.all<{ n: number; oldest: number }>(
        'SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM telemetry',
      );
      expect(left[0]!.n).toBe(40);
      expect(left[0]!.oldest).toBeGreaterThanOrEqual(NOW - 30 * DAY);
      const events = await engine.all<{ at: number }>('SELECT at FROM events');
      expect(events.map((e) => e.at)).toEqual([NOW - 10 * DAY]);
      const kept = await engine.all<{ command_id: string }>(
        'SELECT command_id FROM commands ORDER BY command_id',
      );
      expect(kept.map((c) => c.command_id)).toEqual(['new-done', 'old-open']);
      // Nothing more to do: a second pass deletes nothing.
      expect(
        await store!.pruneHistory({
          telemetry: NOW - 30 * DAY,
          events: NOW - 365 * DAY,
          commands: NOW - 365 * DAY,
        }),
      ).toEqual({ telemetry: 0, events: 0, commands: 0 });
    });

    it('a cut-off left out keeps that history whole', async () => {
      await seeded();
      expect(await store!.pruneHistory({ events: NOW - 365 * DAY })).toEqual({
        telemetry: 0,
        events: 1,
        commands: 0,
      });
      expect((await engine.all<{ n: number }>('SELECT COUNT(*) AS n FROM telemetry'))[0]!.n).toBe(120);
    });

    it("the app's loop runs on the runtime clock and turns days into cut-offs", async () => {
      await seeded();
      const clock = createSimulatedClock({ wallStartMs: NOW });
      const runtime = createRuntime({ clock, logger: silentLogger });
      const retention = createRetention({
        runtime,
        store: store!,
        days: { telemetry: 30, events: 365, commands: 365 },
        firstAfterMs: 60_000,
      });
      retention.start();
      await clock.advanceAsync(59_000);
      expect((await engine.all<{ n: number }>('SELECT COUNT(*) AS n FROM telemetry'))[0]!.n).toBe(120);
      await clock.advanceAsync(2000);
      await expect
        .poll(async () => (await engine.all<{ n: number }>('SELECT COUNT(*) AS n FROM telemetry'))[0]!.n)
        .toBe(40);
      retention.stop();
      runtime.dispose();
    });
  });
}
