/**
 * The page queries both engines run (src/store/store-queries.ts): the SQL each filter builds with
 * either engine's placeholders, the checks on the filters, and the cursor of a page. The queries
 * themselves run in the contract suite (test/store/contract.ts) on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/store.js';
import { commandPageQuery, eventPageQuery, pageOf } from '../../src/store/store-queries.js';

/** The SQL on one line, for comparing. */
const flat = (sql: string) => sql.replace(/\s+/g, ' ').trim();

function fieldOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (e) {
    if (e instanceof StoreError && e.code === 'invalidArgument') return e.field;
    throw e;
  }
  return undefined;
}

describe('eventPageQuery', () => {
  it('without filters: the whole log, oldest first, the limit as the only parameter', () => {
    const q = eventPageQuery({ limit: 50 }, '?');
    expect(flat(q.sql)).toBe('SELECT seq, at, device_id, kind, data FROM events ORDER BY seq ASC LIMIT ?1');
    expect(q.params).toEqual([50]);
    expect(q.limit).toBe(50);
  });

  it('numbers the filters in order with the engine’s placeholders, the limit last', () => {
    const query = { deviceId: 'pump-1', kind: 'started', fromMs: 1000.4, toMs: 2000, afterSeq: 7, limit: 10 };
    const sqlite = eventPageQuery(query, '?');
    const postgres = eventPageQuery(query, '$');
    expect(flat(sqlite.sql)).toBe(
      'SELECT seq, at, device_id, kind, data FROM events ' +
        'WHERE device_id = ?1 AND kind = ?2 AND at >= ?3 AND at < ?4 AND seq > ?5 ORDER BY seq ASC LIMIT ?6',
    );
    expect(flat(postgres.sql)).toBe(flat(sqlite.sql).replace(/\?(\d)/g, '$$$1'));
    // Times are rounded to whole milliseconds.
    expect(sqlite.params).toEqual(['pump-1', 'started', 1000, 2000, 7, 10]);
    expect(postgres.params).toEqual(sqlite.params);
  });

  it('descending pages go before a seq', () => {
    const q = eventPageQuery({ beforeSeq: 90, order: 'desc', limit: 5 }, '$');
    expect(flat(q.sql)).toBe(
      'SELECT seq, at, device_id, kind, data FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT $2',
    );
    expect(q.params).toEqual([90, 5]);
  });

  it('refuses a bad filter naming it', () => {
    expect(fieldOf(() => eventPageQuery({ limit: 0 }, '?'))).toBe('query.limit');
    expect(fieldOf(() => eventPageQuery({ limit: 10_001 }, '?'))).toBe('query.limit');
    expect(fieldOf(() => eventPageQuery({ limit: 1, order: 'up' as 'asc' }, '?'))).toBe('query.order');
    expect(fieldOf(() => eventPageQuery({ limit: 1, deviceId: '' }, '?'))).toBe('query.deviceId');
    expect(fieldOf(() => eventPageQuery({ limit: 1, fromMs: Number.NaN }, '?'))).toBe('query.fromMs');
    expect(fieldOf(() => eventPageQuery({ limit: 1, afterSeq: -1 }, '?'))).toBe('query.afterSeq');
  });
});

describe('commandPageQuery', () => {
  it('newest first, filtered by device, status and request time', () => {
    const q = commandPageQuery(
      { deviceId: 'pump-1', status: 'pending', fromMs: 1, toMs: 2, beforeSeq: 40, limit: 20 },
      '$',
    );
    expect(flat(q.sql)).toBe(
      'SELECT * FROM commands WHERE device_id = $1 AND status = $2 AND requested_at >= $3 ' +
        'AND requested_at < $4 AND seq < $5 ORDER BY seq DESC LIMIT $6',
    );
    expect(q.params).toEqual(['pump-1', 'pending', 1, 2, 40, 20]);
    expect(flat(commandPageQuery({ limit: 3 }, '?').sql)).toBe(
      'SELECT * FROM commands ORDER BY seq DESC LIMIT ?1',
    );
  });

  it('refuses a status that is not a command status', () => {
    expect(fieldOf(() => commandPageQuery({ limit: 1, status: 'done' as 'sent' }, '?'))).toBe('query.status');
  });
});

describe('pageOf', () => {
  it('a full page has the last seq as its cursor; a shorter one is the last page', () => {
    const rows = [{ seq: 3 }, { seq: 5 }];
    const items = rows.map((r) => ({ ok: true as const, value: r.seq }));
    expect(pageOf(items, rows, 2)).toEqual({ items, nextCursor: 5 });
    expect(pageOf(items, rows, 3)).toEqual({ items, nextCursor: undefined });
    expect(pageOf([], [], 1)).toEqual({ items: [], nextCursor: undefined });
  });
});
