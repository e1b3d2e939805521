/**
 * Bulk adoption jobs in the store (src/store/adopt-jobs.ts), on every engine: a job and its ids
 * survive a reopen with its progress (done, adopted, failed, skipped, failures, a cancel asked);
 * a new job replaces its owner's previous one and leaves other owners' alone; misuse is refused
 * naming the field; a damaged row loads as `badRecord`. Issue 13: the host resumes a running job
 * after a restart from what is kept here.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdoptJobInput, AdoptJobProgress } from '../../src/store/adopt-jobs.js';
import type { Store } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';

const T = 1_750_000_000_000;

const fresh: AdoptJobProgress = {
  state: 'running',
  done: 0,
  adopted: 0,
  failed: 0,
  skipped: 0,
  failures: [],
  cancelledBy: null,
  finishedAt: null,
};

function job(id: string, ids: readonly string[], owner = 'local', startedAt = T): AdoptJobInput {
  return {
    id,
    owner,
    ids,
    selection: { text: 'pump-', except: 1 },
    startedBy: 'ana',
    startedAt,
    progress: fresh,
  };
}

export function defineAdoptJobsContract(engine: StoreEngine): void {
  describe(`${engine.name} store: bulk adoption jobs`, () => {
    let store: Store;
    let clock: number;

    beforeEach(async () => {
      await engine.fresh();
      clock = T;
      store = await engine.open({ now: () => clock });
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    const ids = Array.from({ length: 10_000 }, (_, i) => `pump-${i}`);

    it('keeps a job of 10,000 ids and its progress across a reopen', async () => {
      expect(await store.loadAdoptJob('local')).toBeUndefined();
      expect(await store.createAdoptJob(job('adopt-1', ids))).toEqual({ ok: true, value: undefined });
      const progress: AdoptJobProgress = {
        ...fresh,
        done: 48,
        adopted: 45,
        failed: 2,
        skipped: 1,
        failures: [
          { code: 'unknownKind', count: 2, message: "kind 'x' is unknown", ids: ['pump-3', 'pump-9'] },
        ],
        cancelledBy: 'bo',
      };
      clock = T + 5_000;
      expect(await store.updateAdoptJob('adopt-1', progress)).toEqual({ ok: true, value: undefined });
      await store.close();
      store = await engine.open({ now: () => clock });
      const loaded = await store.loadAdoptJob('local');
      expect(loaded).toEqual({
        ok: true,
        value: { ...job('adopt-1', ids), progress, updatedAt: T + 5_000 },
      });
      const ended = {
        ...progress,
        done: 10_000,
        adopted: 9_997,
        state: 'cancelled' as const,
        finishedAt: T + 9,
      };
      expect((await store.updateAdoptJob('adopt-1', ended)).ok).toBe(true);
      expect(await store.loadAdoptJob('local')).toMatchObject({ ok: true, value: { progress: ended } });
    });

    it('keeps one job per owner: a new one replaces the owner’s last, ids and all', async () => {
      await store.createAdoptJob(job('adopt-1', ['a', 'b']));
      await store.createAdoptJob(job('adopt-9', ['z'], 'beta'));
      expect(await store.createAdoptJob(job('adopt-2', ['c'], 'local', T + 1))).toEqual({
        ok: true,
        value: undefined,
      });
      expect(await store.loadAdoptJob('local')).toMatchObject({
        ok: true,
        value: { id: 'adopt-2', ids: ['c'] },
      });
      expect(await store.loadAdoptJob('beta')).toMatchObject({
        ok: true,
        value: { id: 'adopt-9', ids: ['z'] },
      });
      const kept = await engine.all<{ n: number }>('SELECT count(*) AS n FROM adopt_job_ids');
      expect(kept[0]!.n).toBe(2);
      // The replaced job is gone: its progress has nowhere to go.
      const late = await store.updateAdoptJob('adopt-1', { ...fresh, done: 1, adopted: 1 });
      expect(late).toMatchObject({ ok: false, error: { code: 'notFound' } });
      const again = await store.createAdoptJob(job('adopt-2', ['d']));
      expect(again).toMatchObject({ ok: false, error: { code: 'alreadyRecorded' } });
      expect(await store.loadAdoptJob('local')).toMatchObject({ ok: true, value: { ids: ['c'] } });
    });

    it('refuses misuse naming the field, and writes nothing', async () => {
      const bad: [AdoptJobInput, string][] = [
        [job('', ['a']), 'id'],
        [job('j', ['a', '']), 'ids[1]'],
        [{ ...job('j', ['a']), owner: '' }, 'owner'],
        [{ ...job('j', ['a']), progress: { ...fresh, done: 2, adopted: 2 } }, 'progress.done'],
        [{ ...job('j', ['a']), progress: { ...fresh, done: 1 } }, 'progress.done'],
        [{ ...job('j', ['a']), progress: { ...fresh, state: 'paused' as 'running' } }, 'progress.state'],
      ];
      for (const [input, field] of bad)
        await expect(store.createAdoptJob(input), field).rejects.toMatchObject({
          code: 'invalidArgument',
          field,
        });
      expect(await store.loadAdoptJob('local')).toBeUndefined();
      await store.createAdoptJob(job('j', ['a', 'b']));
      await expect(store.updateAdoptJob('j', { ...fresh, done: 3, adopted: 3 })).rejects.toMatchObject({
        code: 'invalidArgument',
        field: 'progress.done',
      });
      expect(await store.loadAdoptJob('local')).toMatchObject({ ok: true, value: { progress: fresh } });
    });

    it('loads a damaged job as badRecord, naming the column', async () => {
      await store.createAdoptJob(job('adopt-1', ['a', 'b']));
      await engine.exec("UPDATE adopt_job_ids SET ids = '[\"a\", 2' WHERE job_id = 'adopt-1'");
      const damaged = await store.loadAdoptJob('local');
      expect(damaged).toMatchObject({ ok: false, id: 'adopt-1', error: { code: 'badRecord' } });
      expect(damaged?.ok ? '' : damaged?.error.message).toContain('ids');
      await engine.exec(
        'UPDATE adopt_job_ids SET ids = \'["a", "b"]\'; UPDATE adopt_jobs SET state = \'odd\'',
      );
      const odd = await store.loadAdoptJob('local');
      expect(odd?.ok ? '' : odd?.error.message).toContain('state');
    });
  });
}
