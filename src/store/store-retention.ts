/**
 * Retention, the same loop for both engines: deletes in bounded batches, each its own short
 * `'normal'` write, so ingest goes on between them; telemetry series by series, on the
 * (series_id, received_at) index. The engine brings its DELETE statements and runs one batch.
 *
 * @example
 * const retention = createRetention({ life, now, logger, listSeries, deleteBatch, sql: SQLITE_RETENTION_SQL });
 * await retention.pruneHistory({ events: Date.now() - 30 * 86_400_000 });
 */
import type { Logger } from '../runtime/runtime.js';
import { requireInt, requireTime } from './records.js';
import type { Store } from './store.js';
import type { StoreLife } from './store-life.js';

/** Rows deleted per transaction by `pruneTelemetry`, so writes interleave with a large prune. */
const PRUNE_CHUNK = 10_000;

/** The engine's DELETE statements; the last parameter of each is the most rows it deletes. */
export interface RetentionSql {
  /** `(cutoff, chunk)`: telemetry of every series received before the cutoff. */
  readonly telemetryChunk: string;
  /** `(seriesId, cutoff, batch)`: one series' telemetry received before the cutoff. */
  readonly seriesTelemetry: string;
  /** `(cutoff, batch)`: events before the cutoff. */
  readonly events: string;
  /** `(cutoff, batch)`: final commands requested before the cutoff (open ones are kept). */
  readonly commands: string;
}

export interface RetentionEngine {
  readonly life: StoreLife;
  readonly now: () => number;
  readonly logger: Logger;
  readonly sql: RetentionSql;
  /** The id of every telemetry series. */
  listSeries(): Promise<readonly { readonly id: number }[]>;
  /** Runs one DELETE as its own `'normal'` write; resolves with the rows it deleted. */
  deleteBatch(sql: string, params: readonly number[]): Promise<number>;
}

export function createRetention(engine: RetentionEngine): Pick<Store, 'pruneHistory' | 'pruneTelemetry'> {
  const { life, sql } = engine;

  /** Runs one batch delete until it deletes fewer rows than a batch. */
  async function drain(statement: string, params: readonly number[], batch: number): Promise<number> {
    let total = 0;
    for (;;) {
      life.ensureOpen();
      const changed = await engine.deleteBatch(statement, [...params, batch]);
      total += changed;
      if (changed < batch) return total;
    }
  }

  return {
    async pruneHistory(before, options = {}) {
      life.ensureOpen();
      const batch = Math.max(1, Math.min(100_000, options.batchRows ?? 5000));
      const cutOff = (v: number | undefined, what: string) =>
        v === undefined ? undefined : requireTime(v, `before.${what}`);
      const t = cutOff(before.telemetry, 'telemetry');
      const e = cutOff(before.events, 'events');
      const c = cutOff(before.commands, 'commands');
      const deleted = { telemetry: 0, events: 0, commands: 0 };
      if (t !== undefined) {
        const series = await engine.listSeries();
        for (const { id } of series) deleted.telemetry += await drain(sql.seriesTelemetry, [id, t], batch);
      }
      if (e !== undefined) deleted.events = await drain(sql.events, [e], batch);
      if (c !== undefined) deleted.commands = await drain(sql.commands, [c], batch);
      return deleted;
    },

    async pruneTelemetry(olderThanMs: number) {
      life.ensureOpen();
      const age = requireInt(olderThanMs, 'olderThanMs', 0, Number.MAX_SAFE_INTEGER);
      const cutoff = engine.now() - age;
      let deleted = 0;
      for (;;) {
        const changed = await engine.deleteBatch(sql.telemetryChunk, [cutoff, PRUNE_CHUNK]);
        deleted += changed;
        if (changed < PRUNE_CHUNK || life.closing) break;
      }
      if (deleted > 0) engine.logger.debug('telemetry pruned', { deleted, cutoff });
      return { deleted };
    },
  };
}
