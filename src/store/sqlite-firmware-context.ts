/**
 * What the concerns of the SQLite firmware store (src/store/sqlite-firmware-store.ts: images,
 * references, jobs, rollouts) share: its own connection, the turn its writes take, the open/closed
 * state, the clock and the audit; and the row helpers they all read with.
 *
 * @example
 * const context = createFirmwareContext(conn, Date.now);
 * const jobs = createSqliteFirmwareJobs(context);
 * await context.close();
 */
import type { JsonObject } from '../lib/json.js';
import { messageOf } from './records.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { RowResult } from './store.js';
import { StoreError } from './store.js';

export interface FirmwareContext {
  readonly conn: SqliteConnection;
  /** Wall clock for `importedAt`, reference times and the audit. */
  readonly now: () => number;
  /**
   * Runs `body` in one `BEGIN IMMEDIATE` transaction, after the writes asked for before it.
   * Rejects with `closed`, or `writeFailed` naming `what` (a {@link StoreError} from `body` as is).
   */
  write<T>(what: string, body: () => Promise<T>): Promise<T>;
  /** Rejects with `closed`, or `readFailed` naming `what`. */
  read<T>(what: string, sql: string, params?: (string | number)[]): Promise<T[]>;
  /** Appends a device-less event to the log; call it inside `write`. */
  audit(kind: string, data: JsonObject): Promise<void>;
  /** Waits for the writes under way, then closes the connection; later calls reject `closed`. */
  close(): Promise<void>;
}

export function createFirmwareContext(conn: SqliteConnection, now: () => number): FirmwareContext {
  let closed = false;
  // One connection carries one transaction at a time: writes take turns.
  let turn: Promise<unknown> = Promise.resolve();

  function write<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new StoreError('closed', 'the firmware store is closed'));
    const run = turn.then(async () => {
      try {
        await conn.exec('BEGIN IMMEDIATE');
      } catch (cause) {
        throw new StoreError('writeFailed', `${what}: ${messageOf(cause)}`, { cause });
      }
      try {
        const out = await body();
        await conn.exec('COMMIT');
        return out;
      } catch (cause) {
        await conn.exec('ROLLBACK').catch(() => {});
        if (cause instanceof StoreError) throw cause;
        throw new StoreError('writeFailed', `${what}: ${messageOf(cause)}`, { cause });
      }
    });
    turn = run.catch(() => {});
    return run;
  }

  async function read<T>(what: string, sql: string, params: (string | number)[] = []): Promise<T[]> {
    if (closed) throw new StoreError('closed', 'the firmware store is closed');
    try {
      return await conn.all<T>(sql, params);
    } catch (cause) {
      throw new StoreError('readFailed', `${what}: ${messageOf(cause)}`, { cause });
    }
  }

  async function audit(kind: string, data: JsonObject): Promise<void> {
    await conn.run('INSERT INTO events (at, device_id, kind, data) VALUES (?, NULL, ?, ?)', [
      now(),
      kind,
      JSON.stringify(data),
    ]);
  }

  return {
    conn,
    now,
    write,
    read,
    audit,
    async close() {
      if (closed) return;
      closed = true;
      await turn;
      await conn.close();
    },
  };
}

/** `json_extract` fails on bad JSON: read a field only from valid JSON text. */
export const field = (column: string, path: string) =>
  `CASE WHEN json_valid(${column}) AND json_type(${column}, '${path}') = 'text' THEN json_extract(${column}, '${path}') END`;

export function fail<C extends string>(
  code: C,
  message: string,
): { ok: false; error: { code: C; message: string } } {
  return { ok: false, error: { code, message } };
}

/** The per-row error of a row that does not parse. */
export function badRecord<T>(id: string, message: string): RowResult<T> {
  return { ok: false, id, error: { code: 'badRecord', message } };
}

type ColumnKind = 'text' | 'number';
type ColumnValues<C extends Record<string, ColumnKind>> = {
  -readonly [K in keyof C]: C[K] extends 'text' ? string : number;
};

/**
 * The named columns of `row`, each of the kind asked for; undefined when one is missing or holds
 * another type (a corrupt row). A number may be any number, as SQLite returns it.
 */
export function readColumns<const C extends Record<string, ColumnKind>>(
  row: Readonly<Record<string, unknown>>,
  kinds: C,
): ColumnValues<C> | undefined {
  const out: Record<string, string | number> = {};
  for (const [name, kind] of Object.entries(kinds)) {
    const value = row[name];
    if ((kind === 'text' && typeof value === 'string') || (kind === 'number' && typeof value === 'number'))
      out[name] = value;
    else return undefined;
  }
  return out as ColumnValues<C>;
}
