/**
 * Bulk adoption jobs on SQLite (src/store/adopt-jobs.ts): a new job replaces its owner's job before
 * it in one transaction; its progress row is rewritten after every batch; its ids are written once.
 *
 * @example
 * const jobs = createSqliteAdoptJobs(context);
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
import { requireName } from './records.js';
import type { SqliteContext } from './sqlite-context.js';

export function createSqliteAdoptJobs(context: SqliteContext): AdoptJobStore {
  const { reader, life, write, now } = context;
  return {
    async createAdoptJob(job) {
      life.ensureOpen();
      const p = adoptJobParams(job);
      const at = now();
      const changed = await write('full', 'many', async (conn) => {
        if (await conn.get('SELECT 1 FROM adopt_jobs WHERE id = ?1', [p.id])) return 0;
        await conn.run(
          'DELETE FROM adopt_job_ids WHERE job_id IN (SELECT id FROM adopt_jobs WHERE owner = ?1)',
          [p.owner],
        );
        await conn.run('DELETE FROM adopt_jobs WHERE owner = ?1', [p.owner]);
        await conn.run(
          `INSERT INTO adopt_jobs (id, owner, selection, started_by, started_at, total, state, done, adopted,
             failed, skipped, failures, cancelled_by, finished_at, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)`,
          [p.id, p.owner, p.selection, p.startedBy, p.startedAt, p.total, ...p.progress, at],
        );
        await conn.run('INSERT INTO adopt_job_ids (job_id, ids) VALUES (?1, ?2)', [p.id, p.ids]);
        return 1;
      });
      return adoptJobCreated(changed, p.id);
    },

    async updateAdoptJob(id, progress) {
      life.ensureOpen();
      requireName(id, 'id');
      const params = adoptProgressParams(progress);
      const changed = await write('full', 'many', async (conn) => {
        const job = await conn.get<{ total: number }>('SELECT total FROM adopt_jobs WHERE id = ?1', [id]);
        if (job === undefined) return 0;
        if (params[1] > job.total) return -job.total - 1;
        return (
          await conn.run(
            `UPDATE adopt_jobs SET state = ?1, done = ?2, adopted = ?3, failed = ?4, skipped = ?5, failures = ?6,
               cancelled_by = ?7, finished_at = ?8, updated_at = ?9
             WHERE id = ?10`,
            [...params, now(), id],
          )
        ).changes;
      });
      return adoptJobUpdated(changed, id, progress);
    },

    loadAdoptJob(owner) {
      return life.read('loadAdoptJob', async () => {
        requireName(owner, 'owner');
        const row = await reader.get<AdoptJobRow>(
          `SELECT j.*, i.ids AS ids FROM adopt_jobs AS j LEFT JOIN adopt_job_ids AS i ON i.job_id = j.id
           WHERE j.owner = ?1 ORDER BY j.started_at DESC LIMIT 1`,
          [owner],
        );
        return row === undefined ? undefined : adoptJobFromRow(row);
      });
    },
  };
}
