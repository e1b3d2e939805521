/**
 * Every instance's rollouts in the cluster's database (PostgreSQL migration 13,
 * `fleetvisor_rollouts`): for every UI, and so that a rollout outlives its instance.
 *
 * A rollout runs on one instance at a time, the one its row names (`instance`): the one it was
 * created on, until that instance dies or stops. The running instance saves it in its data
 * folder's file (src/host/rollout-runner.ts) and writes its snapshot, policy and creator here,
 * at most once every `everyMs` (1 s) while it changes and at once when it ends.
 *
 * - **Listing.** The Rollouts view of any instance lists the others' rows, read-only there
 *   (src/host/api/rollouts.ts).
 * - **Take-over.** An instance that finds a running or paused rollout whose instance is gone
 *   (left, or not seen for a lease) claims it: one `UPDATE … WHERE instance = <the gone one>`, so
 *   exactly one instance wins. It then continues the rollout as after a restart (src/host/
 *   rollout-takeover.ts): its jobs, which run on the devices' owners, are followed where they are.
 * - **Fencing.** A write here changes a row only while it still names the writer. The write of an
 *   instance that was taken over (paused past its lease, cut off) changes nothing, and the
 *   instance lets the rollout go (`onLost`): it starts no job for it any more. A device's owner
 *   runs one job at a time, so a job asked by both meanwhile runs once.
 *
 * A write that fails is logged and the next change writes again; the rollout never waits for
 * this table.
 *
 * @example
 * const mirror = createRolloutMirror({ db: pool, instanceId: 'alpha', logger, onLost: (id) => runner.release(id) });
 * mirror.saved({ snapshot, policy, actor: 'ann' }); // written within a second
 * await readOtherRollouts(pool, 'beta');            // [{ instance: 'alpha', snapshot }]
 * await orphanedRollouts(pool, 'beta', 6000);       // [{ id: 'ro-1', instance: 'alpha' }] once alpha is gone
 * await claimRollout(pool, 'ro-1', 'alpha', 'beta'); // its body, or undefined: another won
 */
import type pg from 'pg';
import type { RolloutPolicy, RolloutSnapshot } from '../firmware/rollout.js';
import type { Logger } from '../runtime/runtime.js';

/** What another instance needs to continue a rollout (with the image, shared by its SHA-256). */
export interface SharedRollout {
  readonly snapshot: RolloutSnapshot;
  readonly policy: RolloutPolicy;
  readonly actor: string;
}

export interface RolloutMirror {
  /** The rollout as just saved; written soon (at once when it has ended). */
  saved(rollout: SharedRollout): void;
  /** Writes what is waiting now (a graceful stop). */
  flush(): Promise<void>;
}

const ENDED = new Set(['completed', 'aborted', 'cancelled']);

export function createRolloutMirror(options: {
  readonly db: pg.Pool;
  readonly instanceId: string;
  readonly logger: Logger;
  /** A rollout another instance runs now (it took it over): this one must let it go. */
  readonly onLost: (id: string) => void;
  readonly everyMs?: number;
}): RolloutMirror {
  const { db, instanceId, logger } = options;
  const everyMs = options.everyMs ?? 1000;
  const waiting = new Map<string, SharedRollout>();
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
        const r = await db.query<{ id: string }>(
          `INSERT INTO fleetvisor_rollouts (id, instance, state, body)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
           ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, body = EXCLUDED.body,
             saved_at = clock_timestamp()
           WHERE fleetvisor_rollouts.instance = EXCLUDED.instance
           RETURNING id`,
          [
            batch.map((b) => b.snapshot.id),
            batch.map(() => instanceId),
            batch.map((b) => b.snapshot.state),
            batch.map((b) => JSON.stringify(b)),
          ],
        );
        warned = false;
        const written = new Set(r.rows.map((row) => row.id));
        for (const b of batch)
          if (!written.has(b.snapshot.id)) {
            logger.warn('cluster: another instance runs this rollout now: let go here', {
              rollout: b.snapshot.id,
            });
            options.onLost(b.snapshot.id);
          }
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
    saved(rollout) {
      waiting.set(rollout.snapshot.id, rollout);
      if (ENDED.has(rollout.snapshot.state)) {
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

/** A row's body, checked as far as a rollout's restore reads it; undefined when it does not read. */
export function parseSharedRollout(text: string): SharedRollout | undefined {
  try {
    const b = JSON.parse(text) as Partial<SharedRollout>;
    const s = b?.snapshot;
    const whole =
      typeof s?.id === 'string' &&
      typeof s.sha256 === 'string' &&
      typeof s.version === 'string' &&
      Array.isArray(s.order) &&
      Array.isArray(s.waveEnds) &&
      typeof s.devices === 'object' &&
      s.devices !== null &&
      typeof s.counts === 'object' &&
      s.counts !== null &&
      typeof b.policy === 'object' &&
      b.policy !== null &&
      typeof b.actor === 'string';
    return whole ? (b as SharedRollout) : undefined;
  } catch {
    return undefined;
  }
}

/** The rollouts other instances run, as they last wrote them (rows that do not parse are left out). */
export async function readOtherRollouts(
  db: pg.Pool,
  instanceId: string,
): Promise<{ readonly instance: string; readonly snapshot: RolloutSnapshot }[]> {
  const r = await db.query<{ instance: string; body: string }>(
    'SELECT instance, body FROM fleetvisor_rollouts WHERE instance <> $1',
    [instanceId],
  );
  return r.rows.flatMap((row) => {
    const b = parseSharedRollout(row.body);
    return b ? [{ instance: row.instance, snapshot: b.snapshot }] : [];
  });
}

/** Which instance runs this rollout (undefined: no row). */
export async function rolloutInstance(db: pg.Pool, id: string): Promise<string | undefined> {
  const r = await db.query<{ instance: string }>('SELECT instance FROM fleetvisor_rollouts WHERE id = $1', [
    id,
  ]);
  return r.rows[0]?.instance;
}

/**
 * Running or paused rollouts whose instance is gone: it left (a graceful stop) or was not seen
 * within `goneAfterMs` (its heartbeat is its lease renewal, every third of a lease).
 */
export async function orphanedRollouts(
  db: pg.Pool,
  instanceId: string,
  goneAfterMs: number,
): Promise<{ readonly id: string; readonly instance: string; readonly sha256: string }[]> {
  const r = await db.query<{ id: string; instance: string; body: string }>(
    `SELECT r.id, r.instance, r.body FROM fleetvisor_rollouts r
     WHERE r.state IN ('running', 'paused') AND r.instance <> $1
       AND NOT EXISTS (
         SELECT 1 FROM fleetvisor_instances i
         WHERE i.id = r.instance AND i.left_at IS NULL
           AND i.seen_at > clock_timestamp() - $2 * interval '1 millisecond')`,
    [instanceId, goneAfterMs],
  );
  return r.rows.flatMap((row) => {
    const b = parseSharedRollout(row.body);
    return b ? [{ id: row.id, instance: row.instance, sha256: b.snapshot.sha256 }] : [];
  });
}

/** Takes the rollout over from `from`; its body, or undefined when another instance took it first. */
export async function claimRollout(
  db: pg.Pool,
  id: string,
  from: string,
  to: string,
): Promise<SharedRollout | undefined> {
  const r = await db.query<{ body: string }>(
    `UPDATE fleetvisor_rollouts SET instance = $3, saved_at = clock_timestamp()
     WHERE id = $1 AND instance = $2 RETURNING body`,
    [id, from, to],
  );
  const row = r.rows[0];
  return row ? parseSharedRollout(row.body) : undefined;
}
