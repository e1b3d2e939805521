/**
 * Bulk adoption jobs on PostgreSQL (src/store/adopt-jobs.ts), as on SQLite: a new job replaces its
 * owner's job before it in one transaction; its progress row is rewritten after every batch; its
 * ids are written once. Not fenced: a job belongs to an instance, not to a device's shard.
 *
 * @example
 * const jobs = createPostgresAdoptJobs(context);
 * await jobs.updateAdoptJob('adopt-1', progress);
 */
import type { AdoptJobRow, AdoptJobStore } from './adopt-jobs.js';
import {
  adoptJobCreated,
  adoptJobFromRow,
  adoptJobParams,
  adoptJobUpdated,
  adoptProgressParams,
} from './adopt-jobs.js';
import type { PostgresContext } from './postgres-context.js';
import { requireName } from './records.js';

export function createPostgresAdoptJobs(context: PostgresContext): AdoptJobStore {
  const { life, write, rows, now } = context;
  return {
    async createAdoptJob(job) {
      life.ensureOpen();
      const p = adoptJobParams(job);
      const at = now();
      const changed = await write('full', 'many', async (conn) => {
        const there = await conn.query('SELECT 1 FROM adopt_jobs WHERE id = $1', [p.id]);
        if ((there.rowCount ?? 0) > 0) return 0;
        await conn.query(
          'DELETE FROM adopt_job_ids WHERE job_id IN (SELECT id FROM adopt_jobs WHERE owner = $1)',
          [p.owner],
        );
        await conn.query('DELETE FROM adopt_jobs WHERE owner = $1', [p.owner]);
        await conn.query(
          `INSERT INTO adopt_jobs (id, owner, selection, started_by, started_at, total, state, done, adopted,
             failed, skipped, failures, cancelled_by, finished_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
          [p.id, p.owner, p.selection, p.startedBy, p.startedAt, p.total, ...p.progress, at],
        );
        await conn.query('INSERT INTO adopt_job_ids (job_id, ids) VALUES ($1, $2)', [p.id, p.ids]);
        return 1;
      });
      return adoptJobCreated(changed, p.id);
    },

    async updateAdoptJob(id, progress) {
      life.ensureOpen();
      requireName(id, 'id');
      const params = adoptProgressParams(progress);
      const changed = await write('full', 'many', async (conn) => {
        const job = await conn.query<{ total: number }>('SELECT total FROM adopt_jobs WHERE id = $1', [id]);
        const total = job.rows[0]?.total;
        if (total === undefined) return 0;
        if (params[1] > total) return -total - 1;
        const updated = await conn.query(
          `UPDATE adopt_jobs SET state = $1, done = $2, adopted = $3, failed = $4, skipped = $5, failures = $6,
             cancelled_by = $7, finished_at = $8, updated_at = $9
           WHERE id = $10`,
          [...params, now(), id],
        );
        return updated.rowCount ?? 0;
      });
      return adoptJobUpdated(changed, id, progress);
    },

    loadAdoptJob(owner) {
      return life.read('loadAdoptJob', async () => {
        requireName(owner, 'owner');
        const found = await rows<AdoptJobRow>(
          `SELECT j.*, i.ids AS ids FROM adopt_jobs AS j LEFT JOIN adopt_job_ids AS i ON i.job_id = j.id
           WHERE j.owner = $1 ORDER BY j.started_at DESC LIMIT 1`,
          [owner],
        );
        const row = found[0];
        return row === undefined ? undefined : adoptJobFromRow(row);
      });
    },
  };
}
