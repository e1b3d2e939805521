/**
 * The event log on SQLite: the insert of a batch, one `INSERT … SELECT … FROM json_each(?)` per
 * chunk, under the shared event log (src/store/store-events.ts: buffer, `'full'` appends, paged
 * query).
 *
 * @example
 * const events = createSqliteEvents(context);
 * const [seq] = await events.appendEvents([{ at: Date.now(), kind: 'started', data: {} }]);
 */
import type { EventRow } from './rows.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { SqliteContext } from './sqlite-context.js';
import { StoreError } from './store.js';
import type { EventLog, PreparedEvent } from './store-events.js';
import { createEventLog, EVENT_BATCH_MAX } from './store-events.js';

// One INSERT … SELECT per chunk; the seqs of one statement are consecutive (one writer,
// AUTOINCREMENT), so they follow from last_insert_rowid() and the row count.
async function writeEvents(conn: SqliteConnection, events: readonly PreparedEvent[]): Promise<number[]> {
  const seqs: number[] = [];
  for (let start = 0; start < events.length; start += EVENT_BATCH_MAX) {
    const chunk = events.slice(start, start + EVENT_BATCH_MAX);
    const info = await conn.run(
      `INSERT INTO events (at, device_id, kind, data)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1)`,
      [JSON.stringify(chunk.map((e) => [e.at, e.deviceId, e.kind, e.data]))],
    );
    if (info.changes !== chunk.length)
      throw new StoreError('writeFailed', `event insert wrote ${info.changes} rows of ${chunk.length}`);
    for (let seq = info.lastId - chunk.length + 1; seq <= info.lastId; seq++) seqs.push(seq);
  }
  return seqs;
}

export function createSqliteEvents(context: SqliteContext): EventLog {
  const { reader } = context;
  return createEventLog({
    ...context,
    insert: writeEvents,
    // One statement when it fits one chunk: the write queue then needs no SAVEPOINT for it.
    fullStatements: (count) => (count > EVENT_BATCH_MAX ? 'many' : 'one'),
    mark: '?',
    rows: (sql, params) => reader.all<EventRow>(sql, params),
  });
}
