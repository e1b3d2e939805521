/**
 * The single writer: every write of a SQLite store goes through one queue on one connection, with
 * group commit. Jobs that arrive while a transaction is running wait, then all of them run in the
 * next transaction (`BEGIN IMMEDIATE` … `COMMIT`), and each job's promise settles only after that
 * COMMIT returns: a write is acknowledged only once it is committed.
 *
 * Why group commit: a `synchronous=FULL` commit costs an fsync, so one transaction per snapshot
 * would cap a fleet at a few hundred transitions per second; grouping pays one fsync for everything
 * that queued up meanwhile, without delaying a lone write.
 *
 * Durability per transaction: `PRAGMA synchronous` is set to FULL when any job of the group asks
 * for `'full'`, else NORMAL. In WAL mode a FULL commit fsyncs the WAL, which also makes every
 * earlier NORMAL commit durable, so mixing the two on one connection never weakens a FULL write.
 *
 * Isolation of jobs within a group: a job that fails is rejected alone and the others commit.
 * A job declared `'one'` runs exactly one statement, which SQLite undoes by itself on a constraint
 * error; a `'many'` job runs inside a SAVEPOINT when it shares the transaction. Errors that make
 * SQLite abandon the whole transaction (SQLITE_FULL, IOERR, BUSY, NOMEM, CORRUPT…) roll the group
 * back and reject every job in it: none of them was committed.
 *
 * @example
 * const queue = createWriteQueue(conn);
 * await queue.submit({ durability: 'full', statements: 'one', run: (c) => c.run('DELETE FROM t') });
 */
import type { GroupEntry, JobOutcome, QueuedJob } from './group-commit.js';
import { createGroupCommitQueue, rejectGroup, settleGroup, writeFailed } from './group-commit.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { sqliteCode } from './sqlite-connection.js';
import type { Durability } from './store.js';

export interface WriteJob<T> extends QueuedJob<SqliteConnection, T> {
  /**
   * `'one'`: `run` executes exactly one statement and nothing after it. `'many'`: anything else
   * (it gets a SAVEPOINT when it shares a transaction).
   */
  readonly statements: 'one' | 'many';
}

export interface WriteQueue {
  /** Queues a job; resolves with its result after the COMMIT that holds it. */
  submit<T>(job: WriteJob<T>): Promise<T>;
  /** Resolves when every job submitted so far has settled. */
  idle(): Promise<void>;
  /** Jobs waiting or running (for health and back-pressure). */
  readonly depth: number;
}

export interface WriteQueueOptions {
  /** Most jobs in one transaction, to bound a transaction's length. */
  readonly maxJobsPerTransaction?: number;
}

// SQLite may roll back the whole transaction on these (https://www.sqlite.org/lang_transaction.html).
const ABORTS_TRANSACTION = new Set([
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_BUSY',
  'SQLITE_NOMEM',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_READONLY',
  'SQLITE_INTERRUPT',
  'SQLITE_LOCKED',
  'SQLITE_CANTOPEN',
  'SQLITE_PROTOCOL',
]);

export function createWriteQueue(conn: SqliteConnection, options: WriteQueueOptions = {}): WriteQueue {
  let currentSync: Durability | undefined;

  async function runGroup(group: GroupEntry<SqliteConnection>[]): Promise<void> {
    const sync: Durability = group.some((e) => e.job.durability === 'full') ? 'full' : 'normal';
    try {
      if (sync !== currentSync) {
        currentSync = undefined;
        await conn.exec(`PRAGMA synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
        currentSync = sync;
      }
      await conn.exec('BEGIN IMMEDIATE');
    } catch (error) {
      for (const e of group) e.reject(writeFailed('could not start a write transaction', error));
      return;
    }

    const shared = group.length > 1;
    const outcomes: JobOutcome[] = [];
    for (const entry of group) {
      const savepoint = shared && entry.job.statements === 'many';
      try {
        if (savepoint) await conn.exec('SAVEPOINT job');
        const value = await entry.job.run(conn);
        if (savepoint) await conn.exec('RELEASE job');
        outcomes.push({ ok: true, value });
      } catch (error) {
        if (!shared || ABORTS_TRANSACTION.has(sqliteCode(error) ?? '')) {
          await rollback();
          rejectGroup(group, outcomes.length, error);
          return;
        }
        if (savepoint) {
          try {
            await conn.exec('ROLLBACK TO job; RELEASE job');
          } catch (undoError) {
            await rollback();
            for (const e of group) e.reject(writeFailed('write rolled back', undoError));
            return;
          }
        }
        outcomes.push({ ok: false, error });
      }
    }

    try {
      await conn.exec('COMMIT');
    } catch (error) {
      await rollback();
      for (const e of group) e.reject(writeFailed('commit failed', error));
      return;
    }
    settleGroup(group, outcomes);
  }

  async function rollback(): Promise<void> {
    try {
      await conn.exec('ROLLBACK');
    } catch {
      // SQLite already rolled the transaction back on the error.
    }
  }

  return createGroupCommitQueue(options.maxJobsPerTransaction ?? 1000, runGroup);
}
