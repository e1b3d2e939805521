/**
 * The event log both engines share: events checked into rows, a buffer that gathers the
 * `'normal'` appends of many callers into one transaction (each caller gets its own seqs), the
 * bound past which appends are refused, `'full'` appends (operator actions) written at once, and
 * the paged query. The engine brings the function that inserts a batch and runs the query.
 *
 * @example
 * const log = createEventLog({ life, queue, write, insert: writeEvents, fullStatements: () => 'many',
 *   mark: '$', rows: (sql, params) => pool.query(sql, params).then((r) => r.rows) });
 * const seqs = await log.appendEvents([{ at: Date.now(), kind: 'started', data: {} }]);
 */
import type { BatchBuffer, JobQueue } from './batch-buffer.js';
import { createBatchBuffer } from './batch-buffer.js';
import { requireName, requireTime, toJsonText } from './records.js';
import type { EventRow } from './rows.js';
import { eventFromRow } from './rows.js';
import type { EventInput, Store } from './store.js';
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
}

/** `appendEvents`' input checked; throws `invalidArgument` naming the first bad field. */
function prepareEvents(input: readonly EventInput[]): PreparedEvent[] {
  if (!Array.isArray(input))
    throw new StoreError('invalidArgument', 'events must be an array', { field: 'events' });
  return input.map((e, i): PreparedEvent => {
    const deviceId = e.deviceId === undefined ? null : requireName(e.deviceId, `events[${i}].deviceId`);
    return {
      at: requireTime(e.at, `events[${i}].at`),
      deviceId,
      kind: requireName(e.kind, `events[${i}].kind`),
      data: toJsonText(e.data, `events[${i}].data`),
    };
  });
}

type EventBuffer = BatchBuffer<PreparedEvent, number[]>;

/** `write` inserts a batch and resolves with its seqs, in the order of the events. */
function createEventBuffer<C>(
  queue: JobQueue<C>,
  write: (conn: C, events: readonly PreparedEvent[]) => Promise<number[]>,
): EventBuffer {
  return createBatchBuffer<C, PreparedEvent, number[], number[]>({
    queue,
    durability: 'normal',
    flushMs: 0,
    flushAt: 1,
    maxWaiting: EVENT_BUFFER_MAX,
    maxPerJob: 50_000,
    write,
    slice: (seqs, offset, count) => seqs.slice(offset, offset + count),
  });
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
  /** Inserts a batch inside the job's transaction; resolves with its seqs, in order. */
  insert(conn: C, events: readonly PreparedEvent[]): Promise<number[]>;
  /** What a `'full'` append's job declares to the write queue, by its number of events. */
  fullStatements(count: number): 'one' | 'many';
  /** Refuses, before anything is queued, events this instance may not write (throws). */
  admit?(events: readonly PreparedEvent[]): void;
  /** The engine's placeholders, for the page query. */
  readonly mark: Placeholder;
  rows(sql: string, params: readonly (string | number)[]): Promise<EventRow[]>;
}

export interface EventLog extends Pick<Store, 'appendEvents' | 'queryEvents'> {
  /** Flushed and counted by the store's close. */
  readonly buffer: EventBuffer;
}

export function createEventLog<C>(engine: EventLogEngine<C>): EventLog {
  const { life } = engine;
  const buffer = createEventBuffer(engine.queue, engine.insert);
  return {
    buffer,

    async appendEvents(input, options = {}) {
      life.ensureOpen();
      const prepared = prepareEvents(input);
      if (prepared.length === 0) return [];
      engine.admit?.(prepared);
      if (options.durability === 'full')
        return engine.write('full', engine.fullStatements(prepared.length), (conn) =>
          engine.insert(conn, prepared),
        );
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
