/**
 * The paged queries of the event log and the command audit log, built once for both engines: the
 * filters are checked (misuse throws `invalidArgument` naming the field), and the SQL differs only
 * by its placeholders (`?1` in SQLite, `$1` in PostgreSQL). The rows then become a {@link Page}
 * whose cursor is the last row's seq when the page is full.
 *
 * @example
 * const q = eventPageQuery({ deviceId: 'pump-1', limit: 100 }, '?');
 * const rows = await reader.all<EventRow>(q.sql, q.params);
 * return pageOf(rows.map(eventFromRow), rows, q.limit);
 */
import { MAX_PAGE_LIMIT, requireCommandStatus, requireInt, requireName, requireTime } from './records.js';
import type { CommandQuery, EventQuery, Page } from './store.js';
import { StoreError } from './store.js';

/** How an engine numbers its placeholders: `?1, ?2…` (SQLite) or `$1, $2…` (PostgreSQL). */
export type Placeholder = '?' | '$';

export interface PageQuery {
  readonly sql: string;
  readonly params: (string | number)[];
  readonly limit: number;
}

/**
 * A WHERE clause built from optional filters: `add('kind = ?', v)` numbers the placeholder and
 * keeps the value beside it.
 */
function conditions(mark: Placeholder) {
  const where: string[] = [];
  const params: (string | number)[] = [];
  return {
    where,
    params,
    add(sql: string, value: string | number): void {
      params.push(value);
      where.push(sql.replace('?', `${mark}${params.length}`));
    },
    /** `WHERE …` or nothing. */
    clause(): string {
      return where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    },
  };
}

/** A page cursor (`afterSeq`, `beforeSeq`). */
function requireSeq(value: number, field: string): number {
  return requireInt(value, field, 0, Number.MAX_SAFE_INTEGER);
}

export function eventPageQuery(query: EventQuery, mark: Placeholder): PageQuery {
  const limit = requireInt(query?.limit, 'query.limit', 1, MAX_PAGE_LIMIT);
  const order = query.order ?? 'asc';
  if (order !== 'asc' && order !== 'desc')
    throw new StoreError('invalidArgument', "query.order must be 'asc' or 'desc'", {
      field: 'query.order',
    });
  const c = conditions(mark);
  if (query.deviceId !== undefined) c.add('device_id = ?', requireName(query.deviceId, 'query.deviceId'));
  if (query.kind !== undefined) c.add('kind = ?', requireName(query.kind, 'query.kind'));
  if (query.fromMs !== undefined) c.add('at >= ?', requireTime(query.fromMs, 'query.fromMs'));
  if (query.toMs !== undefined) c.add('at < ?', requireTime(query.toMs, 'query.toMs'));
  if (query.afterSeq !== undefined) c.add('seq > ?', requireSeq(query.afterSeq, 'query.afterSeq'));
  if (query.beforeSeq !== undefined) c.add('seq < ?', requireSeq(query.beforeSeq, 'query.beforeSeq'));
  c.params.push(limit);
  return {
    sql: `SELECT seq, at, device_id, kind, data FROM events
           ${c.clause()}
           ORDER BY seq ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT ${mark}${c.params.length}`,
    params: c.params,
    limit,
  };
}

export function commandPageQuery(query: CommandQuery, mark: Placeholder): PageQuery {
  const limit = requireInt(query?.limit, 'query.limit', 1, MAX_PAGE_LIMIT);
  const c = conditions(mark);
  if (query.deviceId !== undefined) c.add('device_id = ?', requireName(query.deviceId, 'query.deviceId'));
  if (query.status !== undefined) c.add('status = ?', requireCommandStatus(query.status, 'query.status'));
  if (query.fromMs !== undefined) c.add('requested_at >= ?', requireTime(query.fromMs, 'query.fromMs'));
  if (query.toMs !== undefined) c.add('requested_at < ?', requireTime(query.toMs, 'query.toMs'));
  if (query.beforeSeq !== undefined) c.add('seq < ?', requireSeq(query.beforeSeq, 'query.beforeSeq'));
  c.params.push(limit);
  return {
    sql: `SELECT * FROM commands ${c.clause()}
           ORDER BY seq DESC LIMIT ${mark}${c.params.length}`,
    params: c.params,
    limit,
  };
}

/** The rows of a page query as a {@link Page}: a full page has a cursor, its last seq. */
export function pageOf<T>(items: Page<T>['items'], rows: readonly { seq: number }[], limit: number): Page<T> {
  const last = rows[rows.length - 1];
  return { items, nextCursor: rows.length === limit && last !== undefined ? last.seq : undefined };
}
