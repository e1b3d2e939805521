/**
 * The device registry on PostgreSQL: upsert (`'full'`), reported status (`'normal'`), lookups,
 * delete (the device and its snapshot), and the purge of a device's history (telemetry, series,
 * events, commands) on an operator's request.
 *
 * @example
 * const devices = createPostgresDevices(context);
 * const saved = await devices.upsertDevice({ id: 'pump-1', kind: 'pump', name: 'Pump 1' });
 */
import type pg from 'pg';
import type { DeviceFirmware } from './firmware-store.js';
import type { PostgresContext } from './postgres-context.js';
import { requireName } from './records.js';
import type { DeviceRow } from './rows.js';
import { deviceFromRow } from './rows.js';
import type { Store } from './store.js';
import { deviceParams, statusParams } from './store-inputs.js';
import { deviceChanged, deviceFound, upsertedDevice } from './store-outcomes.js';
import { forgetSeries } from './store-telemetry.js';

export function createPostgresDevices(
  context: PostgresContext,
): Pick<
  Store,
  'upsertDevice' | 'setDeviceStatus' | 'getDevice' | 'listDevices' | 'deleteDevice' | 'purgeDeviceHistory'
> {
  const { life, write, change, rows, now, seriesIds } = context;
  return {
    async upsertDevice(device) {
      life.ensureOpen();
      const params = deviceParams(device, now);
      const row = await write(
        'full',
        'one',
        async (conn) =>
          (
            await conn.query<DeviceRow>(
              `INSERT INTO devices AS d (id, kind, name, tags, attributes, spec, status, created_at, updated_at)
             VALUES ($1, $2, $3, coalesce($4, '[]'), coalesce($5, '{}'), coalesce($6, '{}'), coalesce($7, '{}'), $8, $8)
             ON CONFLICT (id) DO UPDATE SET kind = $2, name = $3, tags = coalesce($4, d.tags),
               attributes = coalesce($5, d.attributes), spec = coalesce($6, d.spec), status = coalesce($7, d.status),
               updated_at = $8
             RETURNING *`,
              params,
            )
          ).rows[0],
      );
      return upsertedDevice(row, params[0]);
    },

    async setDeviceStatus(deviceId, status) {
      life.ensureOpen();
      const params = statusParams(deviceId, status, now);
      const changed = await change(
        'normal',
        'UPDATE devices SET status = $1, updated_at = $2 WHERE id = $3',
        params,
      );
      return deviceChanged(changed, params[2]);
    },

    getDevice(deviceId) {
      return life.read('getDevice', async () => {
        const id = requireName(deviceId, 'deviceId');
        return deviceFound((await rows<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]))[0], id);
      });
    },

    listDevices() {
      return life.read('listDevices', async () =>
        (await rows<DeviceRow>('SELECT * FROM devices ORDER BY id')).map(deviceFromRow),
      );
    },

    async deleteDevice(deviceId) {
      life.ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      const changed = await write('full', 'many', async (conn) => {
        await conn.query('DELETE FROM snapshots WHERE device_id = $1', [id]);
        return (await conn.query('DELETE FROM devices WHERE id = $1', [id])).rowCount ?? 0;
      });
      return deviceChanged(changed, id);
    },

    async purgeDeviceHistory(deviceId) {
      life.ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      return write('full', 'many', async (conn) => {
        const deleted = async (sql: string) => (await conn.query(sql, [id])).rowCount ?? 0;
        const telemetry = await deleted(
          'DELETE FROM telemetry WHERE series_id IN (SELECT id FROM telemetry_series WHERE device_id = $1)',
        );
        await deleted('DELETE FROM telemetry_series WHERE device_id = $1');
        const events = await deleted('DELETE FROM events WHERE device_id = $1');
        const commands = await deleted('DELETE FROM commands WHERE device_id = $1');
        forgetSeries(seriesIds, id);
        return { telemetry, events, commands };
      });
    },
  };
}

/**
 * Every device's firmware as the shared database knows it (the Firmware view's "running on" and
 * the drift reconciler, docs/firmware.md, when the fleet is on PostgreSQL: the data folder's own
 * SQLite file holds the images, not the devices). A status or spec that is not a JSON object with
 * a string `firmware` says nothing of it (null), as on SQLite.
 */
export async function postgresDevicesByFirmware(pool: pg.Pool): Promise<DeviceFirmware[]> {
  const r = await pool.query<{ id: string; kind: string; status: string; spec: string }>(
    'SELECT id, kind, status, spec FROM devices ORDER BY id',
  );
  return r.rows.map((row) => ({
    deviceId: row.id,
    kind: row.kind,
    running: firmwareIn(row.status),
    desired: firmwareIn(row.spec),
  }));
}

function firmwareIn(json: string): string | null {
  try {
    const v = (JSON.parse(json) as { firmware?: unknown } | null)?.firmware;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}
