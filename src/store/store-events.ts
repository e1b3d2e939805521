/**
 * The event log both engines share: events checked into rows, a buffer that gathers the
 * `'normal'` appends of many callers into one transaction (each caller gets its own seqs), the
 * bound past which appends are refused, `'full'` appends (operator actions) written at once, and
 * the paged query. The engine brings the function that inserts a batch and runs the query.
 *
 * A device's `event` message is logged at most once per (device, boot, seq) (docs/protocol.md §8):
 * the engines insert with `ON CONFLICT … DO NOTHING` on the `events_once` index, so a duplicate
 * costs its own row only, never the batch; {@link placeInserted} lines the stored rows up with the
 * events, a duplicate gets the stored entry's seq, and `eventStats()` counts it.
 *
 * @example
 * const log = createEventLog({ life, queue, write, insert: writeEvents, fullStatements: () => 'many',
 *   mark: '$', rows: (sql, params) => pool.query(sql, params).then((r) => r.rows) });
 * const seqs = await log.appendEvents([{ at: Date.now(), kind: 'started', data: {} }]);
 */
import type { BatchBuffer, JobQueue } from './batch-buffer.js';
import { createBatchBuffer } from './batch-buffer.js';
import { requireInt, requireName, requireTime, toJsonText } from './records.js';
import type { EventRow } from './rows.js';
import { eventFromRow } from './rows.js';
import type { EventInput, EventStats, Store } from './store.js';
import { StoreError } from './store.js';
import type { StoreLife, Write } from './store-life.js';
import type { Placeholder } from './store-queries.js';
import { eventPageQuery, pageOf } from './store-queries.js';

/** Events per INSERT statement. */
export const EVENT_BATCH_MAX = 5_000;
/** Most events waiting for a commit before `appendEvents` refuses more. */
const EVENT_BUFFER_MAX = 200_000;

/** One event as its row: times rounded, data as JSON text. */
export interface PreparedEvent {
  readonly at: number;
  readonly deviceId: string | null;
  readonly kind: string;
  readonly data: string;
  /** The device's boot and seq of the `event` message it records, or null (not a device message). */
  readonly deviceBoot: number | null;
  readonly deviceSeq: number | null;
}

const UINT32_MAX = 0xffff_ffff;

/** `appendEvents`' input checked; throws `invalidArgument` naming the first bad field. */
function prepareEvents(input: readonly EventInput[]): PreparedEvent[] {
  if (!Array.isArray(input))
    throw new StoreError('invalidArgument', 'events must be an array', { field: 'events' });
  return input.map((e, i): PreparedEvent => {
    const deviceId = e.deviceId === undefined ? null : requireName(e.deviceId, `events[${i}].deviceId`);
    const message = e.deviceMessage;
    if (message !== undefined && deviceId === null)
      throw new StoreError('invalidArgument', `events[${i}].deviceMessage needs a deviceId`, {
        field: `events[${i}].deviceMessage`,
      });
    return {
      at: requireTime(e.at, `events[${i}].at`),
      deviceId,
      kind: requireName(e.kind, `events[${i}].kind`),
      data: toJsonText(e.data, `events[${i}].data`),
      deviceBoot:
        message === undefined
          ? null
          : requireInt(message.boot, `events[${i}].deviceMessage.boot`, 0, UINT32_MAX),
      deviceSeq:
        message === undefined
          ? null
          : requireInt(message.seq, `events[${i}].deviceMessage.seq`, 0, UINT32_MAX),
    };
  });
}

/** What inserting a batch came to. */
export interface EventBatch {
  /** One per event, in order: its new seq, or for a duplicate the stored entry's. */
  readonly seqs: readonly number[];
  /** 1 at each event not stored because its (device, boot, seq) already was; undefined: none. */
  readonly duplicates: Uint8Array | undefined;
}

/** A row of the event log as an insert's RETURNING or the duplicates' look-up gives it. */
export interface StoredEventKey {
  readonly seq: number;
  readonly device_id: string | null;
  readonly device_boot: number | null;
  readonly device_seq: number | null;
}

/** The dedupe key of a device's event message; undefined for other events. */
function keyOf(deviceId: string | null, boot: number | null, seq: number | null): string | undefined {
  // Number(): a driver may hand bigint columns back as strings.
  return seq === null || boot === null ? undefined : `${deviceId}\u0000${Number(boot)}\u0000${Number(seq)}`;
}

const eventKey = (e: PreparedEvent) => keyOf(e.deviceId, e.deviceBoot, e.deviceSeq);
const rowKey = (r: StoredEventKey) => keyOf(r.device_id, r.device_boot, r.device_seq);

/**
 * Lines up the rows one `INSERT … ON CONFLICT DO NOTHING RETURNING …` stored with its events:
 * sorted by seq they follow the events in order (one statement draws its seqs in the order of its
 * rows), and an event left without a row was a duplicate. A duplicate of an event earlier in the
 * chunk takes that one's seq; for the others, `stored` reads the seqs already in the log.
 * Throws `writeFailed` when the rows do not match the events (the insert skipped a row for
 * another reason than the dedupe key).
 */
export async function placeInserted(
  events: readonly PreparedEvent[],
  inserted: readonly StoredEventKey[],
  stored: (events: readonly PreparedEvent[]) => Promise<readonly StoredEventKey[]>,
): Promise<EventBatch> {
  const rows = [...inserted].sort((a, b) => a.seq - b.seq);
  if (rows.length === events.length) return { seqs: rows.map((r) => r.seq), duplicates: undefined };
  const insertedAt = new Map<string, number>();
  for (const r of rows) {
    const key = rowKey(r);
    if (key !== undefined) insertedAt.set(key, r.seq);
  }
  const seqs = new Array<number>(events.length);
  const duplicates = new Uint8Array(events.length);
  const claimed = new Set<string>();
  const unknown: number[] = [];
  let next = 0;
  events.forEach((e, i) => {
    const key = eventKey(e);
    if (key === undefined || (insertedAt.has(key) && !claimed.has(key))) {
      const row = rows[next++];
      if (row === undefined || rowKey(row) !== key)
        throw new StoreError(
          'writeFailed',
          `event insert: the stored rows do not match the events (at ${i})`,
        );
      if (key !== undefined) claimed.add(key);
      seqs[i] = row.seq;
      return;
    }
    duplicates[i] = 1;
    const seq = insertedAt.get(key);
    if (seq !== undefined) seqs[i] = seq;
    else unknown.push(i);
  });
  if (next !== rows.length)
    throw new StoreError('writeFailed', `event insert wrote ${rows.length} rows, ${next} expected`);
  if (unknown.length > 0) {
    const found = new Map<string | undefined, number>();
    for (const r of await stored(unknown.map((i) => events[i]!))) found.set(rowKey(r), r.seq);
    for (const i of unknown) {
      const seq = found.get(eventKey(events[i]!));
      if (seq === undefined)
        throw new StoreError(
          'writeFailed',
          `event insert skipped event ${i}, and no stored event has its key`,
        );
      seqs[i] = seq;
    }
  }
  return { seqs, duplicates };
}

/** The chunks' results of one batch, in order, as the batch's. */
export function joinChunks(chunks: readonly EventBatch[]): EventBatch {
  if (chunks.length === 1) return chunks[0]!;
  const seqs = chunks.flatMap((c) => c.seqs);
  if (chunks.every((c) => c.duplicates === undefined)) return { seqs, duplicates: undefined };
  const duplicates = new Uint8Array(seqs.length);
  let start = 0;
  for (const c of chunks) {
    if (c.duplicates) duplicates.set(c.duplicates, start);
    start += c.seqs.length;
  }
  return { seqs, duplicates };
}

/** Whether any event carries a device message's key (the engine then inserts ignoring conflicts). */
export const anyDeviceMessage = (events: readonly PreparedEvent[]): boolean =>
  events.some((e) => e.deviceSeq !== null);

type EventBuffer = BatchBuffer<PreparedEvent, number[]>;

/** `write` inserts a batch; `counted` is told each caller's duplicates once committed. */
function createEventBuffer<C>(
  queue: JobQueue<C>,
  write: (conn: C, events: readonly PreparedEvent[]) => Promise<EventBatch>,
  counted: (duplicates: number) => void,
): EventBuffer {
  return createBatchBuffer<C, PreparedEvent, EventBatch, number[]>({
    queue,
    durability: 'normal',
    flushMs: 0,
    flushAt: 1,
    maxWaiting: EVENT_BUFFER_MAX,
    maxPerJob: 50_000,
    write,
    slice: (batch, offset, count) => {
      counted(duplicatesIn(batch, offset, count));
      return batch.seqs.slice(offset, offset + count);
    },
  });
}

function duplicatesIn(batch: EventBatch, offset: number, count: number): number {
  let n = 0;
  if (batch.duplicates) for (let i = offset; i < offset + count; i++) n += batch.duplicates[i]!;
  return n;
}

/** Queues `'normal'` events; throws `writeFailed` when the log is not keeping up. */
function addEvents(events: EventBuffer, prepared: readonly PreparedEvent[]): Promise<number[]> {
  const added = events.add(prepared);
  if (added === undefined)
    throw new StoreError(
      'writeFailed',
      `the event log is not keeping up: ${events.waiting} events already wait for a commit (limit ${EVENT_BUFFER_MAX})`,
    );
  return added;
}

export interface EventLogEngine<C> {
  readonly life: StoreLife;
  readonly queue: JobQueue<C>;
  readonly write: Write<C>;
  /**
   * Inserts a batch inside the job's transaction, skipping (not failing on) the events whose
   * device message is already stored; resolves with the seqs, in order, and the duplicates.
   */
  insert(conn: C, events: readonly PreparedEvent[]): Promise<EventBatch>;
  /** What a `'full'` append's job declares to the write queue, by its events. */
  fullStatements(events: readonly PreparedEvent[]): 'one' | 'many';
  /** Refuses, before anything is queued, events this instance may not write (throws). */
  admit?(events: readonly PreparedEvent[]): void;
  /** The engine's placeholders, for the page query. */
  readonly mark: Placeholder;
  rows(sql: string, params: readonly (string | number)[]): Promise<EventRow[]>;
}

export interface EventLog extends Pick<Store, 'appendEvents' | 'queryEvents'> {
  /** Flushed and counted by the store's close. */
  readonly buffer: EventBuffer;
  /** The store's `stats().events`. */
  eventStats(): EventStats;
}

export function createEventLog<C>(engine: EventLogEngine<C>): EventLog {
  const { life } = engine;
  let duplicates = 0;
  const counted = (n: number) => {
    duplicates += n;
  };
  const buffer = createEventBuffer(engine.queue, engine.insert, counted);
  return {
    buffer,

    eventStats: () => ({ duplicates }),

    async appendEvents(input, options = {}) {
      life.ensureOpen();
      const prepared = prepareEvents(input);
      if (prepared.length === 0) return [];
      engine.admit?.(prepared);
      if (options.durability === 'full') {
        const batch = await engine.write('full', engine.fullStatements(prepared), (conn) =>
          engine.insert(conn, prepared),
        );
        counted(duplicatesIn(batch, 0, prepared.length));
        return [...batch.seqs];
      }
      return addEvents(buffer, prepared);
    },

    queryEvents(query) {
      return life.read('queryEvents', async () => {
        const { sql, params, limit } = eventPageQuery(query, engine.mark);
        const rows = await engine.rows(sql, params);
        return pageOf(rows.map(eventFromRow), rows, limit);
      });
    },
  };
}
