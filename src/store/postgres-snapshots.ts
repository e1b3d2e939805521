/**
 * Actor snapshots on PostgreSQL: one row per device, replaced on save (`'full'`, fenced by the
 * device), loaded all at once at start or one at a time to restart one actor; each parsed and
 * validated on its own.
 *
 * @example
 * const snapshots = createPostgresSnapshots(context);
 * const loads = await snapshots.loadSnapshots({ knownKinds: ['pump'] });
 */
import type { PostgresContext } from './postgres-context.js';
import { requireName } from './records.js';
import type { SnapshotRow } from './rows.js';
import { snapshotFromRow } from './rows.js';
import type { Store } from './store.js';
import { knownKindsOf, snapshotParams } from './store-inputs.js';

export function createPostgresSnapshots(
  context: PostgresContext,
): Pick<Store, 'saveSnapshot' | 'loadSnapshots' | 'loadSnapshot'> {
  const { life, rows, fence, now } = context;
  return {
    async saveSnapshot(input) {
      life.ensureOpen();
      const params = snapshotParams(input, now);
      await fence.change(
        params[0],
        `INSERT INTO snapshots (device_id, kind, snapshot, deadlines, version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (device_id) DO UPDATE SET kind = $2, snapshot = $3, deadlines = $4, version = $5,
           updated_at = $6`,
        params,
      );
    },

    loadSnapshots(options = {}) {
      return life.read('loadSnapshots', async () => {
        const known = knownKindsOf(options);
        const found = await rows<SnapshotRow>('SELECT * FROM snapshots ORDER BY device_id');
        return found.map((row) => snapshotFromRow(row, known, options.validate));
      });
    },

    loadSnapshot(deviceId, options = {}) {
      return life.read('loadSnapshot', async () => {
        const id = requireName(deviceId, 'deviceId');
        const known = knownKindsOf(options);
        const row = (await rows<SnapshotRow>('SELECT * FROM snapshots WHERE device_id = $1', [id]))[0];
        return row === undefined ? undefined : snapshotFromRow(row, known, options.validate);
      });
    },
  };
}
