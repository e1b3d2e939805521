/**
 * Rollouts start jobs only inside their maintenance window: the window as an operator writes it
 * (`mon-fri 22:00-02:00 utc`), whether it is open at a moment and when it opens next (past
 * midnight, on listed days only), and a rollout on a simulated clock that waits for the window,
 * says when it opens, and starts its jobs once it does.
 */
import { describe, expect, it } from 'vitest';
import type { UpdateStartErrorCode } from '../../src/firmware/firmware-updates.js';
import {
  createRollout,
  formatMaintenanceWindow,
  type MaintenanceWindow,
  maintenanceWindowAt,
  parseMaintenanceWindow,
} from '../../src/firmware/rollout.js';
import type { UpdateJob, UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import { err, type Failure, ok, type Result } from '../../src/lib/result.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const at = (iso: string) => Date.parse(iso);

describe('maintenance windows', () => {
  it('reads the forms an operator writes, and refuses the rest by name', () => {
    expect(parseMaintenanceWindow('02:00-04:00')).toEqual(
      ok({ startMinute: 120, durationMinutes: 120, zone: 'local' }),
    );
    expect(parseMaintenanceWindow('mon-fri 22:00-02:00 UTC')).toEqual(
      ok({ startMinute: 1320, durationMinutes: 240, days: [1, 2, 3, 4, 5], zone: 'utc' }),
    );
    expect(parseMaintenanceWindow('sat,sun 00:00-24:00 utc')).toEqual(
      ok({ startMinute: 0, durationMinutes: 1440, days: [0, 6], zone: 'utc' }),
    );
    expect(parseMaintenanceWindow('fri-mon 01:30-02:15 utc')).toMatchObject({
      ok: true,
      value: { days: [0, 1, 5, 6] },
    });
    for (const bad of ['02:00', '25:00-26:00', 'someday 02:00-03:00', 'mon tue 02:00-03:00', '']) {
      const r = parseMaintenanceWindow(bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('badWindow');
    }
    const w = parseMaintenanceWindow('mon-fri 22:00-02:00 utc');
    if (w.ok) expect(formatMaintenanceWindow(w.value)).toBe('mon,tue,wed,thu,fri 22:00-02:00 utc');
    const allDay = parseMaintenanceWindow('00:00-24:00 utc');
    if (allDay.ok) expect(formatMaintenanceWindow(allDay.value)).toBe('00:00-24:00 utc');
  });

  it('is open inside its hours (past midnight too) on its days, and names the next opening otherwise', () => {
    const w: MaintenanceWindow = {
      startMinute: 22 * 60,
      durationMinutes: 240,
      days: [1, 2, 3, 4, 5],
      zone: 'utc',
    };
    // 2026-12-07 is a Monday.
    expect(maintenanceWindowAt(w, at('2026-12-07T23:00:00Z'))).toEqual({ open: true, opensAt: undefined });
    expect(maintenanceWindowAt(w, at('2026-12-08T01:59:00Z')).open).toBe(true); // Monday's, after midnight
    expect(maintenanceWindowAt(w, at('2026-12-08T02:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-08T22:00:00Z'),
    });
    // Friday night's window runs into Saturday; Saturday's own does not open; next is Monday.
    expect(maintenanceWindowAt(w, at('2026-12-12T01:00:00Z')).open).toBe(true);
    expect(maintenanceWindowAt(w, at('2026-12-12T23:00:00Z'))).toEqual({
      open: false,
      opensAt: at('2026-12-14T22:00:00Z'),
    });
  });
});

/** A job that ends when told to: the rollout's view of one device's update. */
function fakeJobs() {
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const updates = {
    start(deviceId: string): Result<UpdateJob, Failure<UpdateStartErrorCode>> {
      if (finishers.has(deviceId)) return err('busy', 'a job runs');
      started.push(deviceId);
      let finish: (s: UpdateJobSnapshot) => void = () => {};
      const done = new Promise<UpdateJobSnapshot>((r) => {
        finish = r;
      });
      const snap = { deviceId, step: 'transferring' } as UpdateJobSnapshot;
      finishers.set(deviceId, () => finish({ ...snap, step: 'succeeded' }));
      return ok({ snapshot: () => snap, done } as unknown as UpdateJob);
    },
    cancel: () => err('noJob', 'no job'),
  };
  return { updates, started, finish: (id: string) => finishers.get(id)?.() };
}

describe('a rollout with a maintenance window', () => {
  it('starts nothing while the window is shut, says when it opens, and starts the wave when it does', async () => {
    const clock = createSimulatedClock({ wallStartMs: at('2026-12-07T20:00:00Z') }); // Monday 20:00
    const jobs = fakeJobs();
    const rollout = createRollout({
      runtime: { clock, logger: silentLogger },
      updates: jobs.updates,
      id: 'ro-window',
      image: new Uint8Array(4),
      version: '1.1.0',
      sha256: 'ab'.repeat(32),
      devices: ['d1', 'd2', 'd3'],
      policy: {
        waves: [{ share: 1, maxConcurrent: 3 }],
        window: { startMinute: 22 * 60, durationMinutes: 120, zone: 'utc' },
      },
    });
    rollout.start();
    expect(jobs.started).toEqual([]);
    expect(rollout.snapshot()).toMatchObject({ state: 'running', windowOpensAt: at('2026-12-07T22:00:00Z') });
    await clock.advanceAsync(119 * 60_000);
    expect(jobs.started).toEqual([]);
    await clock.advanceAsync(60_000 + 1000);
    expect(jobs.started).toEqual(['d1', 'd2', 'd3']);
    expect(rollout.snapshot().windowOpensAt).toBeUndefined();
    for (const id of ['d1', 'd2', 'd3']) jobs.finish(id);
    const final = await rollout.done;
    expect(final.state).toBe('completed');
    expect(final.counts.succeeded).toBe(3);
  });
});
