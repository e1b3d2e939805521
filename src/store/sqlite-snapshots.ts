/**
 * Actor snapshots on SQLite: one row per device, replaced on save (`'full'`), loaded all at once
 * at start or one at a time to restart one actor; each parsed and validated on its own.
 *
 * @example
 * const snapshots = createSqliteSnapshots(context);
 * const loads = await snapshots.loadSnapshots({ knownKinds: ['pump'] });
 */

import { requireName } from './records.js';
import type { SnapshotRow } from './rows.js';
import { snapshotFromRow } from './rows.js';
import type { SqliteContext } from './sqlite-context.js';
import type { Store } from './store.js';
import { knownKindsOf, snapshotParams } from './store-inputs.js';

export function createSqliteSnapshots(
  context: SqliteContext,
): Pick<Store, 'saveSnapshot' | 'loadSnapshots' | 'loadSnapshot'> {
  const { reader, life, write, now } = context;
  return {
    async saveSnapshot(input) {
      life.ensureOpen();
      const params = snapshotParams(input, now);
      await write('full', 'one', (conn) =>
        conn.run(
          `INSERT INTO snapshots (device_id, kind, snapshot, deadlines, version, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)
           ON CONFLICT (device_id) DO UPDATE SET kind = ?2, snapshot = ?3, deadlines = ?4, version = ?5,
             updated_at = ?6`,
          params,
        ),
      );
    },

    loadSnapshots(options = {}) {
      return life.read('loadSnapshots', async () => {
        const known = knownKindsOf(options);
        const rows = await reader.all<SnapshotRow>('SELECT * FROM snapshots ORDER BY device_id');
        return rows.map((row) => snapshotFromRow(row, known, options.validate));
      });
    },

    loadSnapshot(deviceId, options = {}) {
      return life.read('loadSnapshot', async () => {
        const id = requireName(deviceId, 'deviceId');
        const known = knownKindsOf(options);
        const row = await reader.get<SnapshotRow>('SELECT * FROM snapshots WHERE device_id = ?1', [id]);
        return row === undefined ? undefined : snapshotFromRow(row, known, options.validate);
      });
    },
  };
}
