/**
 * The telemetry intake both engines share (src/store/store-telemetry.ts), on a fake write queue:
 * each caller's share of a batch's duplicates, the bound (`overloaded`), refused points counted and
 * warned about at most every 10 s of the injected clock, and a failed batch forgetting the series
 * ids. The engines' writers run in the contract suite (test/store/contract.ts).
 */
import { describe, expect, it } from 'vitest';
import type { JobQueue } from '../../src/store/batch-buffer.js';
import type { TelemetryPoint } from '../../src/store/store.js';
import { createStoreLife } from '../../src/store/store-life.js';
import { createTelemetryIntake, seriesKey } from '../../src/store/store-telemetry.js';

const point = (deviceId: string, value: number): TelemetryPoint => ({
  deviceId,
  metric: 'temp',
  deviceTs: null,
  receivedAt: 1000,
  value,
});

/** Runs the jobs one after the other, as a write queue does, on no connection. */
function serialQueue(): JobQueue<null> {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    submit: (job) => {
      const result = tail.then(() => job.run(null));
      tail = result.catch(() => {});
      return result;
    },
  };
}

/** Lets queued jobs start (promise callbacks only, no timer). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function setup(write: (points: readonly TelemetryPoint[]) => Promise<Uint8Array | undefined>) {
  const warnings: unknown[] = [];
  const errors: unknown[] = [];
  const logger = {
    debug() {},
    info() {},
    warn: (_message: string, fields?: unknown) => warnings.push(fields),
    error: (_message: string, fields?: unknown) => errors.push(fields),
  };
  const clock = { now: 0 };
  const seriesIds = new Map<string, number>();
  const intake = createTelemetryIntake<null>({
    queue: serialQueue(),
    write: (_conn, points) => write(points),
    life: createStoreLife('test'),
    seriesIds,
    logger,
    now: () => clock.now,
    flushMs: 0,
    batchMax: 10,
    bufferMax: 10,
  });
  return { intake, warnings, errors, clock, seriesIds };
}

describe('createTelemetryIntake', () => {
  it('tells each caller its own duplicates from the batch mask', async () => {
    // The second point of the batch was already stored.
    const { intake } = setup(async (points) => Uint8Array.from(points, (_p, i) => (i === 1 ? 1 : 0)));
    const a = intake.appendTelemetry([point('a', 1), point('a', 2)]);
    const b = intake.appendTelemetry([point('b', 3)]);
    expect(await a).toEqual({ ok: true, value: { written: 1, rejected: 0, duplicates: 1 } });
    expect(await b).toEqual({ ok: true, value: { written: 1, rejected: 0, duplicates: 0 } });
    expect(intake.stats().telemetry).toMatchObject({ written: 2, duplicates: 1, waiting: 0 });
  });

  it('with perPoint, says which of its points were refused (1) or duplicates (2), and nothing when all were written', async () => {
    // The batch holds the valid points only: a's 1 and 3 (3 already stored), then b's 4.
    const { intake } = setup(async (points) => Uint8Array.from(points, (p) => (p.value === 3 ? 1 : 0)));
    const bad = point('a', Number.NaN);
    const a = intake.appendTelemetry([point('a', 1), bad, point('a', 3)], { perPoint: true });
    const b = intake.appendTelemetry([point('b', 4)], { perPoint: true });
    const c = intake.appendTelemetry([point('c', 3)]);
    expect(await a).toEqual({
      ok: true,
      value: { written: 1, rejected: 1, duplicates: 1, skipped: Uint8Array.from([0, 1, 2]) },
    });
    expect(await b).toEqual({ ok: true, value: { written: 1, rejected: 0, duplicates: 0 } });
    expect(await c).toEqual({ ok: true, value: { written: 0, rejected: 0, duplicates: 1 } });
    expect(await intake.appendTelemetry([bad], { perPoint: true })).toEqual({
      ok: true,
      value: { written: 0, rejected: 1, duplicates: 0, skipped: Uint8Array.from([1]) },
    });
  });

  it('refuses bad points one by one and warns at most every 10 s', async () => {
    const { intake, warnings, clock } = setup(async () => undefined);
    const bad = { ...point('a', Number.NaN) };
    expect(await intake.appendTelemetry([bad, point('a', 1)])).toEqual({
      ok: true,
      value: { written: 1, rejected: 1, duplicates: 0 },
    });
    await intake.appendTelemetry([bad]);
    clock.now = 10_000;
    await intake.appendTelemetry([bad]);
    expect(warnings).toEqual([
      { refused: 1, example: 'points[0]: value NaN is not a finite number' },
      { refused: 2, example: 'points[0]: value NaN is not a finite number' },
    ]);
    expect(intake.stats().telemetry.rejected).toBe(3);
  });

  it('answers overloaded past the bound, writing nothing of that call', async () => {
    const releases: (() => void)[] = [];
    const { intake } = setup(
      (points) => new Promise((resolve) => releases.push(() => resolve(new Uint8Array(points.length)))),
    );
    const points = (deviceId: string, count: number) =>
      Array.from({ length: count }, (_, i) => point(deviceId, i));
    // The first batch is being written; five points wait behind it; six more would make eleven.
    const first = intake.appendTelemetry(points('a', 6));
    await settle();
    const second = intake.appendTelemetry(points('b', 5));
    const third = await intake.appendTelemetry(points('c', 6));
    expect(third.ok ? 'ok' : third.error.code).toBe('overloaded');
    expect(intake.stats().telemetry).toMatchObject({ overloaded: 6, waiting: 5 });
    releases[0]!();
    await first;
    await settle();
    releases[1]!();
    await second;
    expect(intake.stats().telemetry).toMatchObject({ written: 11, waiting: 0 });
  });

  it('a failed batch rejects its callers, is counted, and forgets the series ids', async () => {
    const { intake, errors, seriesIds } = setup(async () => {
      throw new Error('disk full');
    });
    seriesIds.set(seriesKey('a', 'temp'), 1);
    await expect(intake.appendTelemetry([point('a', 1)])).rejects.toThrow('disk full');
    expect(seriesIds.size).toBe(0);
    expect(intake.stats().telemetry).toMatchObject({ failed: 1, lastFailure: 'disk full' });
    expect(errors).toEqual([{ points: 1, error: 'disk full' }]);
  });
});
