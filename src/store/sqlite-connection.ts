/**
 * One SQLite connection behind promises: the only file that touches sqlite3's callback API.
 *
 * Statements are prepared once per SQL text and reused (sqlite3 queues calls on a statement, so
 * concurrent callers are safe); sqlite3 runs each call on the libuv pool, so a query never blocks
 * the event loop. Errors are sqlite3's own (`code: 'SQLITE_BUSY'`, …); callers wrap them.
 *
 * @example
 * const conn = await openSqliteConnection('/tmp/x.sqlite', { readOnly: false });
 * await conn.run('INSERT INTO t(a) VALUES (?)', [1]);
 * const rows = await conn.all<{ a: number }>('SELECT a FROM t');
 * await conn.close();
 */
import sqlite3 from 'sqlite3';

/** A value SQLite can bind. */
export type SqlValue = string | number | null | Buffer;
export type SqlParams = readonly SqlValue[];

export interface RunInfo {
  /** Rows changed by the statement. */
  readonly changes: number;
  /** `last_insert_rowid()` after the statement. */
  readonly lastId: number;
}

export interface SqliteConnection {
  readonly file: string;
  run(sql: string, params?: SqlParams): Promise<RunInfo>;
  /** The first row; write the SQL so it returns one (LIMIT 1). */
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  /** Runs one or more statements without parameters (pragmas, BEGIN/COMMIT, DDL). */
  exec(sql: string): Promise<void>;
  /** Finalizes the cached statements and closes; idempotent. */
  close(): Promise<void>;
}

export interface OpenConnectionOptions {
  readonly readOnly: boolean;
  /** How long a statement waits for another process's lock before SQLITE_BUSY. */
  readonly busyTimeoutMs?: number;
}

/** Opens (and for a writer, creates) the database file. Rejects with sqlite3's error. */
export function openSqliteConnection(
  file: string,
  options: OpenConnectionOptions,
): Promise<SqliteConnection> {
  const mode = options.readOnly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
  return new Promise((resolve, reject) => {
    const db: sqlite3.Database = new sqlite3.Database(file, mode, (error) => {
      if (error) reject(error);
      else {
        db.configure('busyTimeout', options.busyTimeoutMs ?? 5000);
        resolve(wrap(file, db));
      }
    });
  });
}

/** The SQLite result code of an error from sqlite3 (`'SQLITE_FULL'`, …), if it is one. */
export function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

function wrap(file: string, db: sqlite3.Database): SqliteConnection {
  const statements = new Map<string, Promise<sqlite3.Statement>>();
  let closed: Promise<void> | undefined;

  // Prepared with a callback and awaited: sqlite3 never calls back the calls queued on a statement
  // whose prepare failed, so using one unawaited would hang on bad SQL. A failed prepare is not
  // cached (the schema may change, e.g. during migrations).
  function statement(sql: string): Promise<sqlite3.Statement> {
    let prepared = statements.get(sql);
    if (prepared === undefined) {
      prepared = new Promise((resolve, reject) => {
        const stmt = db.prepare(sql, (error: Error | null) => {
          if (error) {
            statements.delete(sql);
            reject(error);
          } else resolve(stmt);
        });
      });
      statements.set(sql, prepared);
    }
    return prepared;
  }

  async function all<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    const stmt = await statement(sql);
    return new Promise<T[]>((resolve, reject) => {
      stmt.all(params, (error: Error | null, rows: T[]) => {
        if (error) reject(error);
        else resolve(rows);
      });
    });
  }

  return {
    file,
    async run(sql, params = []) {
      const stmt = await statement(sql);
      return new Promise((resolve, reject) => {
        stmt.run(params, function (this: sqlite3.RunResult, error: Error | null) {
          if (error) reject(error);
          else resolve({ changes: this.changes, lastId: this.lastID });
        });
      });
    },
    // Never sqlite3's own get(): it leaves the statement stepped but not reset, which keeps a read
    // transaction open on the connection (stale reads, a WAL that cannot checkpoint).
    async get<T>(sql: string, params: SqlParams = []) {
      const rows = await all<T>(sql, params);
      return rows[0];
    },
    all,
    exec(sql) {
      return new Promise((resolve, reject) => {
        db.exec(sql, (error) => {
          if (error) reject(error);
          else resolve();
        });
      });
    },
    close() {
      closed ??= (async () => {
        const prepared = await Promise.allSettled(statements.values());
        statements.clear();
        await Promise.all(
          prepared.map((p) =>
            p.status === 'fulfilled'
              ? new Promise<void>((resolve) => p.value.finalize(() => resolve()))
              : undefined,
          ),
        );
        await new Promise<void>((resolve, reject) =>
          db.close((error) => (error ? reject(error) : resolve())),
        );
      })();
      return closed;
    },
  };
}
