/**
 * Every instance's rollouts for every UI of a cluster (PostgreSQL migration 13,
 * `fleetvisor_rollouts`). A rollout runs and is saved on the instance it was created on (its data
 * folder's file, src/host/rollout-runner.ts); that instance also writes its snapshot here, at most
 * once every `everyMs` (1 s) while it changes and at once when it ends, so the Rollouts view of
 * any instance lists it with the instance that runs it (read-only there: src/host/api/rollouts.ts).
 * A write that fails is logged and the next change writes again; the rollout itself never waits
 * for this table.
 *
 * @example
 * const mirror = createRolloutMirror({ db: pool, instanceId: 'alpha', logger });
 * mirror.saved(snapshot);                       // written within a second
 * await readOtherRollouts(pool, 'beta');        // [{ instance: 'alpha', snapshot }]
 */
import type pg from 'pg';
import type { RolloutSnapshot } from '../firmware/rollout.js';
import type { Logger } from '../runtime/runtime.js';

export interface RolloutMirror {
  /** The rollout's snapshot as just saved; written soon (at once when it has ended). */
  saved(snapshot: RolloutSnapshot): void;
  /** Writes what is waiting now (a graceful stop). */
  flush(): Promise<void>;
}

const ENDED = new Set(['completed', 'aborted', 'cancelled']);

export function createRolloutMirror(options: {
  readonly db: pg.Pool;
  readonly instanceId: string;
  readonly logger: Logger;
  readonly everyMs?: number;
}): RolloutMirror {
  const { db, instanceId, logger } = options;
  const everyMs = options.everyMs ?? 1000;
  const waiting = new Map<string, RolloutSnapshot>();
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  let warned = false;

  const write = (): Promise<void> => {
    timer = undefined;
    const batch = [...waiting.values()];
    waiting.clear();
    if (batch.length === 0) return writing;
    writing = writing.then(async () => {
      try {
        await db.query(
          `INSERT INTO fleetvisor_rollouts (id, instance, snapshot)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
           ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, snapshot = EXCLUDED.snapshot,
             saved_at = clock_timestamp()`,
          [batch.map((s) => s.id), batch.map(() => instanceId), batch.map((s) => JSON.stringify(s))],
        );
        warned = false;
      } catch (error) {
        if (!warned)
          logger.warn('cluster: rollouts not written for the other instances (written at the next change)', {
            error: String(error),
          });
        warned = true;
      }
    });
    return writing;
  };

  return {
    saved(snapshot) {
      waiting.set(snapshot.id, snapshot);
      if (ENDED.has(snapshot.state)) {
        if (timer) clearTimeout(timer);
        void write();
        return;
      }
      timer ??= setTimeout(() => void write(), everyMs);
    },
    async flush() {
      if (timer) clearTimeout(timer);
      await write();
    },
  };
}

/** The rollouts other instances run, as they last wrote them (rows that do not parse are left out). */
export async function readOtherRollouts(
  db: pg.Pool,
  instanceId: string,
): Promise<{ readonly instance: string; readonly snapshot: RolloutSnapshot }[]> {
  const r = await db.query<{ instance: string; snapshot: string }>(
    'SELECT instance, snapshot FROM fleetvisor_rollouts WHERE instance <> $1',
    [instanceId],
  );
  return r.rows.flatMap((row) => {
    try {
      const snapshot = JSON.parse(row.snapshot) as RolloutSnapshot;
      const whole =
        typeof snapshot?.id === 'string' &&
        Array.isArray(snapshot.order) &&
        Array.isArray(snapshot.waveEnds) &&
        typeof snapshot.devices === 'object' &&
        snapshot.devices !== null &&
        typeof snapshot.counts === 'object' &&
        snapshot.counts !== null;
      return whole ? [{ instance: row.instance, snapshot }] : [];
    } catch {
      return [];
    }
  });
}

/** Which instance runs this rollout, if another one does (undefined: none, or not readable). */
export async function rolloutInstance(db: pg.Pool, id: string): Promise<string | undefined> {
  const r = await db.query<{ instance: string }>('SELECT instance FROM fleetvisor_rollouts WHERE id = $1', [
    id,
  ]);
  return r.rows[0]?.instance;
}
