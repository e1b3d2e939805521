/**
 * The telemetry calls both engines share: the intake (point validation, bad points refused one by
 * one and warned about at most every 10 s; the write buffer with its bound; the counters behind
 * `stats()`; the series id cache the engines' point writers fill) and the checks and shaping of
 * the two queries. The engine brings the function that writes one batch inside its transaction,
 * and the SQL of the queries. Engine-neutral.
 *
 * @example
 * const intake = createTelemetryIntake({ queue, write: writePoints, life, seriesIds, logger, now,
 *   flushMs: 50, batchMax: 10_000, bufferMax: 200_000 });
 * const r = await intake.appendTelemetry(points);   // { ok: true, value: { written, rejected, duplicates } }
 */
import type { Logger } from '../runtime/runtime.js';
import type { BatchBuffer, JobQueue } from './batch-buffer.js';
import { createBatchBuffer } from './batch-buffer.js';
import {
  MAX_BUCKETS,
  messageOf,
  requireInt,
  requireName,
  requireTime,
  telemetryPointProblem,
} from './records.js';
import type { Bucket, Store, StoreStats, TelemetryPoint } from './store.js';
import { StoreError } from './store.js';
import type { StoreLife } from './store-life.js';

/** Telemetry points to hand to one transaction at most; more wait for the next one. */
const MAX_POINTS_PER_TRANSACTION = 200_000;
/** Time between two warnings about refused telemetry points. */
const REFUSED_LOG_INTERVAL_MS = 10_000;

/** "deviceId\0metric" → series id. */
export type SeriesIds = Map<string, number>;

/** The key of one metric of one device in {@link SeriesIds}. */
export function seriesKey(deviceId: string, metric: string): string {
  return `${deviceId}\u0000${metric}`;
}

/** Drops a device's series ids (its series were deleted: a device added later gets new ones). */
export function forgetSeries(seriesIds: SeriesIds, deviceId: string): void {
  for (const key of [...seriesIds.keys()]) if (key.startsWith(`${deviceId}\u0000`)) seriesIds.delete(key);
}

/** The telemetry buffer's timing and bounds (see the engines' `telemetry…` options). */
export interface TelemetrySizes {
  readonly flushMs: number;
  readonly batchMax: number;
  readonly bufferMax: number;
}

/** The buffer options of the engines' `open…Store`, checked, with their defaults. */
export function telemetryOptions(options: {
  readonly telemetryFlushMs?: number;
  readonly telemetryBatchMax?: number;
  readonly telemetryBufferMax?: number;
}): TelemetrySizes {
  const flushMs = requireInt(options.telemetryFlushMs ?? 50, 'telemetryFlushMs', 0, 60_000);
  const batchMax = requireInt(options.telemetryBatchMax ?? 10_000, 'telemetryBatchMax', 1, 1_000_000);
  const bufferMax = requireInt(
    options.telemetryBufferMax ?? batchMax * 20,
    'telemetryBufferMax',
    batchMax,
    1e8,
  );
  return { flushMs, batchMax, bufferMax };
}

/** What one caller's points came to, once committed. */
interface AppendCounts {
  readonly written: number;
  readonly duplicates: number;
  /** The caller's share of the batch's duplicate mask (a view), when it has a duplicate. */
  readonly duplicateAt: Uint8Array | undefined;
}

export interface TelemetryIntakeOptions<C> extends TelemetrySizes {
  readonly queue: JobQueue<C>;
  /**
   * Writes one batch inside the job's transaction: a mask with 1 at each point skipped as already
   * stored (undefined: none was). Filling `seriesIds` is its business; the cache is cleared here
   * when a batch fails, since the ids it learnt may belong to a transaction that rolled back.
   */
  readonly write: (conn: C, points: readonly TelemetryPoint[]) => Promise<Uint8Array | undefined>;
  readonly life: StoreLife;
  readonly seriesIds: SeriesIds;
  readonly logger: Logger;
  readonly now: () => number;
}

export interface TelemetryIntake extends Pick<Store, 'appendTelemetry' | 'drained'> {
  /** The store's `stats().telemetry` (the event log adds its own part). */
  stats(): Pick<StoreStats, 'telemetry'>;
  /** Flushed and counted by the store's close. */
  readonly buffer: BatchBuffer<TelemetryPoint, AppendCounts>;
}

export function createTelemetryIntake<C>(options: TelemetryIntakeOptions<C>): TelemetryIntake {
  const { life, seriesIds, logger, now, bufferMax } = options;
  const counts = { written: 0, duplicates: 0, rejected: 0, overloaded: 0, failed: 0 };
  let lastFailure: string | null = null;
  let refusedSinceLog = 0;
  let lastRefusedLogAt = Number.NEGATIVE_INFINITY;

  const buffer = createBatchBuffer<C, TelemetryPoint, Uint8Array | undefined, AppendCounts>({
    queue: options.queue,
    durability: 'normal',
    flushMs: options.flushMs,
    flushAt: options.batchMax,
    maxWaiting: bufferMax,
    maxPerJob: MAX_POINTS_PER_TRANSACTION,
    write: options.write,
    slice: (duplicateMask, offset, count) => {
      let duplicates = 0;
      if (duplicateMask !== undefined)
        for (let i = offset; i < offset + count; i++) duplicates += duplicateMask[i]!;
      counts.written += count - duplicates;
      counts.duplicates += duplicates;
      const duplicateAt = duplicates > 0 ? duplicateMask!.subarray(offset, offset + count) : undefined;
      return { written: count - duplicates, duplicates, duplicateAt };
    },
    onFailure: (error, count) => {
      seriesIds.clear();
      counts.failed += count;
      lastFailure = messageOf(error);
      logger.error('telemetry points could not be committed', { points: count, error: lastFailure });
    },
  });

  function noteRefused(count: number, problem: string): void {
    refusedSinceLog += count;
    const at = now();
    if (at - lastRefusedLogAt < REFUSED_LOG_INTERVAL_MS) return;
    logger.warn('telemetry points refused', { refused: refusedSinceLog, example: problem });
    refusedSinceLog = 0;
    lastRefusedLogAt = at;
  }

  return {
    buffer,

    async appendTelemetry(points: readonly TelemetryPoint[], options?: { readonly perPoint?: boolean }) {
      life.ensureOpen();
      if (!Array.isArray(points))
        throw new StoreError('invalidArgument', 'points must be an array', { field: 'points' });
      let valid = points;
      let firstProblem: string | undefined;
      /** 1 at each refused point, once there is one. */
      let rejectedAt: Uint8Array | undefined;
      for (let i = 0; i < points.length; i++) {
        const problem = telemetryPointProblem(points[i]!);
        if (problem === undefined) continue;
        // Rare path: copy the valid points only once a bad one shows up.
        firstProblem ??= `points[${i}]: ${problem}`;
        rejectedAt = Uint8Array.from(points, (p) => (telemetryPointProblem(p) === undefined ? 0 : 1));
        valid = points.filter((_p, k) => rejectedAt![k] === 0);
        break;
      }
      const rejected = points.length - valid.length;
      counts.rejected += rejected;
      if (rejected > 0) noteRefused(rejected, firstProblem!);
      const perPoint = options?.perPoint === true;
      if (valid.length === 0)
        return {
          ok: true,
          value:
            perPoint && rejectedAt
              ? { written: 0, rejected, duplicates: 0, skipped: rejectedAt }
              : { written: 0, rejected, duplicates: 0 },
        };
      const added = buffer.add(valid);
      if (added === undefined) {
        counts.overloaded += valid.length;
        return {
          ok: false,
          error: {
            code: 'overloaded',
            message: `${buffer.waiting} telemetry points are already waiting for a commit (limit ${bufferMax})`,
          },
        };
      }
      const { written, duplicates, duplicateAt } = await added;
      if (!perPoint || (rejectedAt === undefined && duplicateAt === undefined))
        return { ok: true, value: { written, rejected, duplicates } };
      return {
        ok: true,
        value: { written, rejected, duplicates, skipped: skippedPoints(rejectedAt, duplicateAt) },
      };
    },

    stats(): Pick<StoreStats, 'telemetry'> {
      return { telemetry: { ...counts, lastFailure, waiting: buffer.waiting } };
    },

    drained() {
      life.ensureOpen();
      return buffer.whenAtMost(Math.floor(bufferMax / 2));
    },
  };
}

/**
 * One entry per point of a call (see TelemetryAppendSummary.skipped): 1 where refused, 2 where a
 * duplicate. `duplicateAt` runs over the valid points only, in order.
 */
function skippedPoints(rejectedAt: Uint8Array | undefined, duplicateAt: Uint8Array | undefined): Uint8Array {
  if (rejectedAt === undefined) return duplicateAt!.map((d) => (d === 0 ? 0 : 2));
  const skipped = new Uint8Array(rejectedAt.length);
  let v = 0;
  for (let i = 0; i < rejectedAt.length; i++) {
    if (rejectedAt[i] !== 0) skipped[i] = 1;
    else if (duplicateAt !== undefined && duplicateAt[v++] !== 0) skipped[i] = 2;
  }
  return skipped;
}

/** The checked arguments of a bucket query, in the order of its SQL parameters. */
export interface TelemetryRange {
  readonly id: string;
  readonly name: string;
  readonly from: number;
  readonly to: number;
  /** Buckets. */
  readonly n: number;
  readonly span: number;
}

/** One bucket as the engines' query returns it: bucket = floor((t - from) * n / span). */
export interface BucketRow {
  bucket: number;
  min: number;
  max: number;
  avg: number;
  count: number;
}

/** The engine's two telemetry queries; the calls check their arguments and shape the rows. */
export interface TelemetryReads {
  /** The non-empty buckets of the range, by bucket. */
  buckets(range: TelemetryRange): Promise<BucketRow[]>;
  /** The metric names of a device, sorted. */
  metrics(deviceId: string): Promise<{ metric: string }[]>;
}

export function createTelemetryReads(
  life: StoreLife,
  reads: TelemetryReads,
): Pick<Store, 'queryTelemetry' | 'listMetrics'> {
  return {
    queryTelemetry(deviceId, metric, fromMs, toMs, buckets) {
      return life.read('queryTelemetry', async () => {
        const id = requireName(deviceId, 'deviceId');
        const name = requireName(metric, 'metric');
        const from = requireTime(fromMs, 'fromMs');
        const to = requireTime(toMs, 'toMs');
        const n = requireInt(buckets, 'buckets', 1, MAX_BUCKETS);
        if (to <= from) return [];
        const span = to - from;
        const rows = await reads.buckets({ id, name, from, to, n, span });
        return rows.map(
          (r): Bucket => ({
            start: from + Math.ceil((r.bucket * span) / n),
            min: r.min,
            max: r.max,
            avg: r.avg,
            count: r.count,
          }),
        );
      });
    },

    listMetrics(deviceId) {
      return life.read('listMetrics', async () => {
        const rows = await reads.metrics(requireName(deviceId, 'deviceId'));
        return rows.map((r) => r.metric);
      });
    },
  };
}
