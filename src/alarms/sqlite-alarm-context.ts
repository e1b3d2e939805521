/**
 * What the alarm store's concerns (src/alarms/sqlite-alarm-store.ts: rules, alarms) share: the
 * connection of its own and the one queue every call takes its turn on, so a read sees every
 * write asked for before it.
 *
 * @example
 * const context = createAlarmContext(conn);
 * const n = await context.queued('count alarms', () => context.conn.get('SELECT count(*) AS n FROM alarms'));
 */
import { messageOf } from '../store/records.js';
import type { SqliteConnection } from '../store/sqlite-connection.js';
import { StoreError } from '../store/store.js';

export interface AlarmContext {
  readonly conn: SqliteConnection;
  /**
   * Runs `body` after every call queued before it. Rejects with `closed`, a {@link StoreError}
   * from `body` as is, or `writeFailed` naming `what`.
   */
  queued<T>(what: string, body: () => Promise<T>): Promise<T>;
  /** Waits for the queue, then closes the connection; later calls reject `closed`. */
  close(): Promise<void>;
}

export function createAlarmContext(conn: SqliteConnection): AlarmContext {
  let closed = false;
  let turn: Promise<unknown> = Promise.resolve();
  const queued = <T>(what: string, body: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new StoreError('closed', 'the alarm store is closed'));
    const run = turn.then(body).catch((cause: unknown) => {
      throw cause instanceof StoreError
        ? cause
        : new StoreError('writeFailed', `alarms: ${what}: ${messageOf(cause)}`, { cause });
    });
    turn = run.catch(() => {});
    return run;
  };
  return {
    conn,
    queued,
    async close() {
      if (closed) return;
      await turn;
      closed = true;
      await conn.close();
    },
  };
}
