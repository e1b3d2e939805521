import { afterEach, describe, expect, it } from 'vitest';
import type { OpenedFirmware } from '../../src/firmware/open-firmware.js';
import { deleteDamagedRollout, readStoredRollouts } from '../../src/firmware/rollout-damage.js';
import type { JsonObject } from '../../src/lib/json.js';
import { rawAll, rawRun } from '../store/helpers.js';
import { openSampleFirmware, pausedSnapshot } from './rollout-snapshots.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const snapshot = pausedSnapshot;

const opened = () => openSampleFirmware(cleanups);

async function save(fw: OpenedFirmware, id: string, sha256: string, body: unknown, ended = false) {
  await fw.store.saveRollout(
    {
      id,
      sha256,
      version: '1.1.0',
      state: ended ? 'completed' : 'paused',
      body: body as JsonObject,
      actor: 'ana',
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_001_000,
    },
    ended,
  );
}

const holders = (file: string) =>
  rawAll<{ holder: string }>(file, 'SELECT holder FROM firmware_image_refs ORDER BY holder').then((rows) =>
    rows.map((r) => r.holder),
  );

describe('damaged rollouts', () => {
  it('are listed apart with the field at fault, and hold no image: only damaged ones naming it, the image is deleted', async () => {
    const { fw, file, sha } = await opened();
    await save(fw, 'ro-good', sha, { snapshot: snapshot('ro-good', sha, ['a']), policy: {} });
    await save(fw, 'ro-bad', sha, { snapshot: { ...snapshot('ro-bad', sha, ['b']), wave: -1 }, policy: {} });
    await save(fw, 'ro-cut', sha, { snapshot: snapshot('ro-cut', sha, ['c']), policy: {} });
    await rawRun(file, `UPDATE firmware_rollouts SET body = '{"snapshot": {"id' WHERE id = 'ro-cut'`);
    expect(await holders(file)).toEqual(['rollout:ro-bad', 'rollout:ro-cut', 'rollout:ro-good']);

    const { good, damaged } = await readStoredRollouts(fw.store);
    expect(good.map((g) => g.record.id)).toEqual(['ro-good']);
    expect(damaged).toHaveLength(2);
    expect(damaged.find((d) => d.id === 'ro-bad')).toEqual({
      id: 'ro-bad',
      version: '1.1.0',
      sha256: sha,
      savedState: 'paused',
      createdBy: 'ana',
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_001_000,
      field: 'snapshot.wave',
      message: 'rollout ro-bad: saved snapshot.wave must be a whole number >= 0, got -1',
    });
    const cut = damaged.find((d) => d.id === 'ro-cut')!;
    expect(cut).toMatchObject({ field: 'body', version: null, createdBy: null });
    expect(cut.message).toMatch(/^firmware rollout row 'ro-cut': body is not valid JSON/);
    // Damaged ones let go of the image; the good one still holds it.
    expect(await holders(file)).toEqual(['rollout:ro-good']);

    const refused = await fw.images.remove(sha, 'ops');
    expect(refused).toMatchObject({ ok: false, error: { code: 'inUse' } });
    if (!refused.ok) {
      expect(refused.error.message).toContain('rollout:ro-good');
      expect(refused.error.message).not.toContain('ro-bad');
    }
    // The good one ends: only damaged rollouts still name the image, and it is deleted.
    await save(
      fw,
      'ro-good',
      sha,
      { snapshot: { ...snapshot('ro-good', sha, ['a']), state: 'completed' }, policy: {} },
      true,
    );
    // A row damaged after the last read holds its image until the delete looks.
    await save(fw, 'ro-late', sha, { snapshot: snapshot('ro-late', sha, ['d']), policy: {} });
    await rawRun(
      file,
      `UPDATE firmware_rollouts SET body = '{"snapshot": 5, "policy": {}}' WHERE id = 'ro-late'`,
    );
    expect(await fw.images.remove(sha, 'ops')).toMatchObject({ ok: true, value: { sha256: sha } });
    expect(await fw.store.getImage(sha)).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(await holders(file)).toEqual([]);
  });

  it('a damaged one is deleted and audited; one that reads, or none, is not', async () => {
    const { fw, file, sha } = await opened();
    await save(fw, 'ro-good', sha, { snapshot: snapshot('ro-good', sha, ['a']), policy: {} });
    await save(fw, 'ro-bad', sha, {
      snapshot: snapshot('ro-bad', sha, ['b']),
      policy: { onFailure: 'explode' },
    });

    expect(await deleteDamagedRollout(fw.store, 'ro-good', 'ana')).toMatchObject({
      ok: false,
      error: { code: 'notDamaged' },
    });
    expect(await deleteDamagedRollout(fw.store, 'ro-none', 'ana')).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    const deleted = await deleteDamagedRollout(fw.store, 'ro-bad', 'ana');
    expect(deleted).toMatchObject({ ok: true, value: { id: 'ro-bad', field: 'policy.onFailure' } });

    const ids = (await fw.store.listRollouts()).map((r) => (r.ok ? r.value.id : r.id));
    expect(ids).toEqual(['ro-good']);
    expect(await holders(file)).toEqual(['rollout:ro-good']);
    const audit = await rawAll<{ data: string }>(
      file,
      "SELECT data FROM events WHERE kind = 'firmware.rolloutDeleted'",
    );
    expect(audit.map((a) => JSON.parse(a.data))).toEqual([
      {
        rollout: 'ro-bad',
        sha256: sha,
        version: '1.1.0',
        state: 'paused',
        actor: 'ana',
        reason: `rollout ro-bad: saved policy.onFailure must be 'pause' or 'abort', got "explode"`,
      },
    ]);
    expect(await deleteDamagedRollout(fw.store, 'ro-bad', 'ana')).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
  });
});
