/**
 * Damaged rollouts: stored rows that cannot be read back (a body that is not JSON, or one the
 * saved-rollout schema refuses, rollout-saved.ts). A damaged rollout runs nothing; it is listed
 * for the operator with the field at fault, holds no image (an image that only damaged rollouts
 * name can be deleted), and can be deleted. A rollout that reads is never deleted here.
 *
 * @example
 * const { good, damaged } = await readStoredRollouts(fw.store);
 * for (const d of damaged) console.log(d.id, d.field, d.message);
 * await deleteDamagedRollout(fw.store, 'ro-1a2b3c4d', 'ana');
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { FirmwareRolloutRecord, FirmwareStore } from '../store/firmware-store.js';
import type { RowResult } from '../store/store.js';
import type { SavedRollout } from './rollout-saved.js';
import { readSavedRollout } from './rollout-saved.js';

/** A stored rollout that cannot be read back, with what its row's own columns still say. */
export interface DamagedRollout {
  readonly id: string;
  /** The row's columns, when the row reads (null when even they do not). */
  readonly version: string | null;
  readonly sha256: string | null;
  /** The state it was saved in (`running`, `paused` …). */
  readonly savedState: string | null;
  readonly createdBy: string | null;
  readonly createdAt: number | null;
  readonly updatedAt: number | null;
  /** The first field at fault: `snapshot.wave`, `policy.waves[0].share`, `body`. */
  readonly field: string;
  /** Names the rollout and the field: `rollout ro-1: saved snapshot.wave must be …, got -1`. */
  readonly message: string;
}

export interface StoredRollouts {
  /** The rows that read, each with its checked snapshot and policy; oldest first. */
  readonly good: readonly { readonly record: FirmwareRolloutRecord; readonly saved: SavedRollout }[];
  readonly damaged: readonly DamagedRollout[];
}

/** The stored rows, sorted into the rollouts that read and the damaged ones. */
export function sortStoredRollouts(rows: readonly RowResult<FirmwareRolloutRecord>[]): StoredRollouts {
  const good: { record: FirmwareRolloutRecord; saved: SavedRollout }[] = [];
  const damaged: DamagedRollout[] = [];
  for (const row of rows) {
    if (!row.ok) {
      // The table's typed columns leave the JSON body as the one part of a row that can fail.
      damaged.push({
        id: row.id,
        version: null,
        sha256: null,
        savedState: null,
        createdBy: null,
        createdAt: null,
        updatedAt: null,
        field: 'body',
        message: row.error.message,
      });
      continue;
    }
    const r = row.value;
    const saved = readSavedRollout(r.id, r.body);
    if (saved.ok) good.push({ record: r, saved: saved.value });
    else
      damaged.push({
        id: r.id,
        version: r.version,
        sha256: r.sha256,
        savedState: r.state,
        createdBy: r.actor,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
        field: saved.error.field,
        message: saved.error.message,
      });
  }
  return { good, damaged };
}

/**
 * Reads the stored rollouts; each damaged one lets go of the image it held (`rollout:<id>`), so
 * the image's deletion is not refused in its name. Idempotent: a release with nothing held does
 * not write.
 */
export async function readStoredRollouts(
  store: Pick<FirmwareStore, 'listRollouts' | 'releaseReferences'>,
): Promise<StoredRollouts> {
  const stored = sortStoredRollouts(await store.listRollouts());
  for (const d of stored.damaged) await store.releaseReferences(`rollout:${d.id}`);
  return stored;
}

/**
 * Deletes the stored rollout `id` if it is damaged, audited with `actor` and its damage.
 * `notFound`: no stored rollout has this id; `notDamaged`: it reads (cancel it instead: a rollout
 * that reads is history or runs).
 */
export async function deleteDamagedRollout(
  store: Pick<FirmwareStore, 'listRollouts' | 'deleteRollout'>,
  id: string,
  actor: string,
): Promise<Result<DamagedRollout, Failure<'notFound' | 'notDamaged'>>> {
  const { good, damaged } = sortStoredRollouts(await store.listRollouts());
  const found = damaged.find((d) => d.id === id);
  if (!found) {
    if (good.some((g) => g.record.id === id))
      return err('notDamaged', `rollout ${id} is not damaged: cancel it instead of deleting it`);
    return err('notFound', `no stored rollout '${id}'`);
  }
  const deleted = await store.deleteRollout(id, actor, found.message);
  if (!deleted.ok) return deleted;
  return ok(found);
}
