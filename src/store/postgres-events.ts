/**
 * The event log on PostgreSQL: the insert of a batch, one `INSERT … SELECT … FROM unnest(…)` per
 * chunk, fenced by device, under the shared event log (src/store/store-events.ts: buffer,
 * `'full'` appends, paged query). A device's event message already stored for its (device, boot,
 * seq) is skipped by `ON CONFLICT DO NOTHING` (docs/protocol.md §8), never the batch; another
 * instance inserting the same one at once waits for it, then skips.
 *
 * @example
 * const events = createPostgresEvents(context);
 * const [seq] = await events.appendEvents([{ at: Date.now(), kind: 'started', data: {} }]);
 */
import type pg from 'pg';
import type { PostgresContext } from './postgres-context.js';
import type { PostgresFence } from './postgres-fence.js';
import type { EventRow } from './rows.js';
import type { EventBatch, EventLog, PreparedEvent, StoredEventKey } from './store-events.js';
import { createEventLog, EVENT_BATCH_MAX, joinChunks, placeInserted } from './store-events.js';

// One INSERT … SELECT per chunk; the identity is drawn in the order of the rows (ORDER BY ord),
// so the stored rows sorted by seq line up with the events (a skipped row may use up a value).
async function writeEvents(
  conn: pg.PoolClient,
  events: readonly PreparedEvent[],
  fence: PostgresFence,
): Promise<EventBatch> {
  await fence.check(
    conn,
    events.map((e) => e.deviceId),
  );
  const chunks: EventBatch[] = [];
  for (let start = 0; start < events.length; start += EVENT_BATCH_MAX) {
    const chunk = events.slice(start, start + EVENT_BATCH_MAX);
    const result = await conn.query<StoredEventKey>(
      `INSERT INTO events (at, device_id, kind, data, device_boot, device_seq)
         SELECT at, device_id, kind, data, device_boot, device_seq
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
           WITH ORDINALITY AS e (at, device_id, kind, data, device_boot, device_seq, ord)
         ORDER BY ord
       ON CONFLICT (device_id, device_boot, device_seq) WHERE device_seq IS NOT NULL DO NOTHING
       RETURNING seq, device_id, device_boot, device_seq`,
      [
        chunk.map((e) => e.at),
        chunk.map((e) => e.deviceId),
        chunk.map((e) => e.kind),
        chunk.map((e) => e.data),
        chunk.map((e) => e.deviceBoot),
        chunk.map((e) => e.deviceSeq),
      ],
    );
    chunks.push(await placeInserted(chunk, result.rows, (skipped) => storedKeys(conn, skipped)));
  }
  return joinChunks(chunks);
}

/** The stored entries of these device messages (read after the insert that skipped them). */
async function storedKeys(conn: pg.PoolClient, events: readonly PreparedEvent[]): Promise<StoredEventKey[]> {
  const result = await conn.query<StoredEventKey>(
    `SELECT e.seq, e.device_id, e.device_boot, e.device_seq
       FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS k (device_id, device_boot, device_seq)
       JOIN events AS e
         ON e.device_id = k.device_id AND e.device_boot = k.device_boot AND e.device_seq = k.device_seq
      WHERE e.device_seq IS NOT NULL`,
    [events.map((e) => e.deviceId), events.map((e) => e.deviceBoot), events.map((e) => e.deviceSeq)],
  );
  return result.rows;
}

export function createPostgresEvents(context: PostgresContext): EventLog {
  const { rows, fence } = context;
  return createEventLog({
    ...context,
    insert: (conn, events) => writeEvents(conn, events, fence),
    fullStatements: () => 'many',
    admit: (events) => fence.tokensOf(events.map((e) => e.deviceId)),
    mark: '$',
    rows: (sql, params) => rows<EventRow>(sql, params),
  });
}
