/**
 * The event log on PostgreSQL: the insert of a batch, one `INSERT … SELECT … FROM unnest(…)` per
 * chunk, fenced by device, under the shared event log (src/store/store-events.ts: buffer,
 * `'full'` appends, paged query).
 *
 * @example
 * const events = createPostgresEvents(context);
 * const [seq] = await events.appendEvents([{ at: Date.now(), kind: 'started', data: {} }]);
 */
import type pg from 'pg';
import type { PostgresContext } from './postgres-context.js';
import type { PostgresFence } from './postgres-fence.js';
import type { EventRow } from './rows.js';
import { StoreError } from './store.js';
import type { EventLog, PreparedEvent } from './store-events.js';
import { createEventLog, EVENT_BATCH_MAX } from './store-events.js';

// One INSERT … SELECT per chunk; the identity is drawn in the order of the rows (ORDER BY ord),
// so the sorted seqs line up with the events.
async function writeEvents(
  conn: pg.PoolClient,
  events: readonly PreparedEvent[],
  fence: PostgresFence,
): Promise<number[]> {
  await fence.check(
    conn,
    events.map((e) => e.deviceId),
  );
  const seqs: number[] = [];
  for (let start = 0; start < events.length; start += EVENT_BATCH_MAX) {
    const chunk = events.slice(start, start + EVENT_BATCH_MAX);
    const result = await conn.query<{ seq: number }>(
      `INSERT INTO events (at, device_id, kind, data)
         SELECT at, device_id, kind, data
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e (at, device_id, kind, data, ord)
         ORDER BY ord
         RETURNING seq`,
      [
        chunk.map((e) => e.at),
        chunk.map((e) => e.deviceId),
        chunk.map((e) => e.kind),
        chunk.map((e) => e.data),
      ],
    );
    if (result.rows.length !== chunk.length)
      throw new StoreError('writeFailed', `event insert wrote ${result.rows.length} rows of ${chunk.length}`);
    for (const seq of result.rows.map((r) => r.seq).sort((a, b) => a - b)) seqs.push(seq);
  }
  return seqs;
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
