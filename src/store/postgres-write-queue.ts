/**
 * The single writer of a PostgreSQL store: every write goes through one queue, and the jobs that
 * queued up while a transaction ran share the next one (group commit). A job's promise settles
 * only after the COMMIT that holds it, so writes are acknowledged once committed, and apply in
 * call order. Each transaction borrows a connection from the pool and gives it back after.
 *
 * Durability per transaction: a group with only `'normal'` jobs commits with
 * `synchronous_commit = off` — the commit is in the server's memory and WAL buffer, so a crash of
 * the app loses nothing, and only a crash of the database server may lose the last commits. A group
 * with a `'full'` job waits for the WAL flush, which also hardens every commit before it.
 *
 * Isolation of jobs within a group: PostgreSQL abandons a whole transaction on any error, so in a
 * shared transaction every job runs inside its own SAVEPOINT; a job that fails is rolled back to it
 * and rejected alone, and the others commit. A failure outside a job (BEGIN, COMMIT, a lost
 * connection) rejects every job of the group: none of them was committed.
 *
 * @example
 * const queue = createPostgresWriteQueue(pool);
 * await queue.submit({ durability: 'full', statements: 'one', run: (c) => c.query('DELETE FROM t') });
 */
import type pg from 'pg';
import type { JobQueue } from './batch-buffer.js';
import type { GroupEntry, JobOutcome, QueuedJob } from './group-commit.js';
import { createGroupCommitQueue, rejectGroup, settleGroup, writeFailed } from './group-commit.js';

export interface PostgresWriteJob<T> extends QueuedJob<pg.PoolClient, T> {
  /** Kept for parity with the SQLite queue; every job of a shared transaction gets a SAVEPOINT here. */
  readonly statements: 'one' | 'many';
}

export interface PostgresWriteQueue extends JobQueue<pg.PoolClient> {
  submit<T>(job: PostgresWriteJob<T>): Promise<T>;
  /** Resolves when every job submitted so far has settled. */
  idle(): Promise<void>;
  /** Jobs waiting or running. */
  readonly depth: number;
}

export function createPostgresWriteQueue(
  pool: pg.Pool,
  options: { readonly maxJobsPerTransaction?: number } = {},
): PostgresWriteQueue {
  async function runGroup(group: GroupEntry<pg.PoolClient>[]): Promise<void> {
    let conn: pg.PoolClient;
    try {
      conn = await pool.connect();
    } catch (error) {
      for (const e of group) e.reject(writeFailed('could not reach the database', error));
      return;
    }
    // A connection that failed outside a job is destroyed instead of going back to the pool.
    let broken: Error | undefined;
    // The server may end a session while it is checked out and between statements (a restart, or
    // idle_in_transaction_session_timeout after this process was paused): pg reports that as an
    // 'error' event on the client, which would end the process without a listener. The pending
    // statement, if any, fails on its own; this only marks the connection broken.
    const onError = (error: Error) => {
      broken = error;
    };
    conn.on('error', onError);
    try {
      const full = group.some((e) => e.job.durability === 'full');
      try {
        await conn.query(full ? 'BEGIN' : 'BEGIN; SET LOCAL synchronous_commit = off');
      } catch (error) {
        broken = asError(error);
        for (const e of group) e.reject(writeFailed('could not start a write transaction', error));
        return;
      }
      const shared = group.length > 1;
      const outcomes: JobOutcome[] = [];
      for (const entry of group) {
        try {
          if (shared) await conn.query('SAVEPOINT job');
          const value = await entry.job.run(conn);
          if (shared) await conn.query('RELEASE SAVEPOINT job');
          outcomes.push({ ok: true, value });
        } catch (error) {
          let undone = shared;
          if (shared) {
            try {
              await conn.query('ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job');
            } catch {
              undone = false;
            }
          }
          if (!undone) {
            await conn.query('ROLLBACK').catch((e: unknown) => {
              broken = asError(e);
            });
            rejectGroup(group, outcomes.length, error);
            return;
          }
          outcomes.push({ ok: false, error });
        }
      }
      try {
        await conn.query('COMMIT');
      } catch (error) {
        broken = asError(error);
        for (const e of group) e.reject(writeFailed('commit failed', error));
        return;
      }
      settleGroup(group, outcomes);
    } finally {
      conn.off('error', onError);
      conn.release(broken);
    }
  }

  return createGroupCommitQueue(options.maxJobsPerTransaction ?? 1000, runGroup);
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
