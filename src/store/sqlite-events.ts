/**
 * The event log on SQLite: the insert of a batch, one `INSERT … SELECT … FROM json_each(?)` per
 * chunk, under the shared event log (src/store/store-events.ts: buffer, `'full'` appends, paged
 * query). A chunk holding a device's event messages inserts with `ON CONFLICT DO NOTHING` on their
 * (device, boot, seq) (docs/protocol.md §8): a duplicate is skipped, never the batch.
 *
 * @example
 * const events = createSqliteEvents(context);
 * const [seq] = await events.appendEvents([{ at: Date.now(), kind: 'started', data: {} }]);
 */
import type { EventRow } from './rows.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { SqliteContext } from './sqlite-context.js';
import { StoreError } from './store.js';
import type { EventBatch, EventLog, PreparedEvent, StoredEventKey } from './store-events.js';
import {
  anyDeviceMessage,
  createEventLog,
  EVENT_BATCH_MAX,
  joinChunks,
  placeInserted,
} from './store-events.js';

const rowsOf = (chunk: readonly PreparedEvent[]) =>
  JSON.stringify(chunk.map((e) => [e.at, e.deviceId, e.kind, e.data, e.deviceBoot, e.deviceSeq]));

// Only host events: no key, nothing to skip. The seqs of one statement are consecutive (one
// writer, AUTOINCREMENT), so they follow from last_insert_rowid() and the row count.
async function insertPlain(conn: SqliteConnection, chunk: readonly PreparedEvent[]): Promise<number[]> {
  const info = await conn.run(
    `INSERT INTO events (at, device_id, kind, data)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1)`,
    [rowsOf(chunk)],
  );
  if (info.changes !== chunk.length)
    throw new StoreError('writeFailed', `event insert wrote ${info.changes} rows of ${chunk.length}`);
  const seqs: number[] = [];
  for (let seq = info.lastId - chunk.length + 1; seq <= info.lastId; seq++) seqs.push(seq);
  return seqs;
}

// With device messages: a skipped row may still use up a rowid (AUTOINCREMENT), so the seqs are
// not consecutive; the stored rows say which events they are. `WHERE true`: SQLite's upsert after
// a SELECT needs a WHERE clause to parse.
async function insertKeyed(conn: SqliteConnection, chunk: readonly PreparedEvent[]): Promise<EventBatch> {
  const inserted = await conn.all<StoredEventKey>(
    `INSERT INTO events (at, device_id, kind, data, device_boot, device_seq)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5
       FROM json_each(?1) WHERE true
     ON CONFLICT (device_id, device_boot, device_seq) WHERE device_seq IS NOT NULL DO NOTHING
     RETURNING seq, device_id, device_boot, device_seq`,
    [rowsOf(chunk)],
  );
  return placeInserted(chunk, inserted, (duplicates) =>
    conn.all<StoredEventKey>(
      `SELECT e.seq, e.device_id, e.device_boot, e.device_seq
         FROM json_each(?1) AS k JOIN events AS e
           ON e.device_id = k.value ->> 0 AND e.device_boot = k.value ->> 1 AND e.device_seq = k.value ->> 2
        WHERE e.device_seq IS NOT NULL`,
      [JSON.stringify(duplicates.map((e) => [e.deviceId, e.deviceBoot, e.deviceSeq]))],
    ),
  );
}

async function writeEvents(conn: SqliteConnection, events: readonly PreparedEvent[]): Promise<EventBatch> {
  const chunks: EventBatch[] = [];
  for (let start = 0; start < events.length; start += EVENT_BATCH_MAX) {
    const chunk = events.slice(start, start + EVENT_BATCH_MAX);
    chunks.push(
      anyDeviceMessage(chunk)
        ? await insertKeyed(conn, chunk)
        : { seqs: await insertPlain(conn, chunk), duplicates: undefined },
    );
  }
  return joinChunks(chunks);
}

export function createSqliteEvents(context: SqliteContext): EventLog {
  const { reader } = context;
  return createEventLog({
    ...context,
    insert: writeEvents,
    // One statement when it fits one chunk and skips nothing: the write queue then needs no
    // SAVEPOINT for it. A device message may need a second statement (its stored seq).
    fullStatements: (events) =>
      events.length > EVENT_BATCH_MAX || anyDeviceMessage(events) ? 'many' : 'one',
    mark: '?',
    rows: (sql, params) => reader.all<EventRow>(sql, params),
  });
}
