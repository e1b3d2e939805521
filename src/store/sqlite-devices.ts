/**
 * The device registry on SQLite: upsert (`'full'`), reported status (`'normal'`), lookups, delete
 * (the device and its snapshot), and the purge of a device's history (telemetry, series, events,
 * commands) on an operator's request.
 *
 * @example
 * const devices = createSqliteDevices(context);
 * const saved = await devices.upsertDevice({ id: 'pump-1', kind: 'pump', name: 'Pump 1' });
 */

import { requireName } from './records.js';
import type { DeviceRow } from './rows.js';
import { deviceFromRow } from './rows.js';
import type { SqliteContext } from './sqlite-context.js';
import type { Store } from './store.js';
import { deviceParams, statusParams } from './store-inputs.js';
import { deviceChanged, deviceFound, upsertedDevice } from './store-outcomes.js';
import { forgetSeries } from './store-telemetry.js';

export function createSqliteDevices(
  context: SqliteContext,
): Pick<
  Store,
  'upsertDevice' | 'setDeviceStatus' | 'getDevice' | 'listDevices' | 'deleteDevice' | 'purgeDeviceHistory'
> {
  const { reader, life, write, now, seriesIds } = context;
  return {
    async upsertDevice(device) {
      life.ensureOpen();
      const params = deviceParams(device, now);
      const row = await write('full', 'one', (conn) =>
        conn.get<DeviceRow>(
          `INSERT INTO devices (id, kind, name, tags, attributes, spec, status, created_at, updated_at)
           VALUES (?1, ?2, ?3, coalesce(?4, '[]'), coalesce(?5, '{}'), coalesce(?6, '{}'), coalesce(?7, '{}'), ?8, ?8)
           ON CONFLICT (id) DO UPDATE SET kind = ?2, name = ?3, tags = coalesce(?4, tags),
             attributes = coalesce(?5, attributes), spec = coalesce(?6, spec), status = coalesce(?7, status),
             updated_at = ?8
           RETURNING *`,
          params,
        ),
      );
      return upsertedDevice(row, params[0]);
    },

    async setDeviceStatus(deviceId, status) {
      life.ensureOpen();
      const params = statusParams(deviceId, status, now);
      const info = await write('normal', 'one', (conn) =>
        conn.run('UPDATE devices SET status = ?1, updated_at = ?2 WHERE id = ?3', params),
      );
      return deviceChanged(info.changes, params[2]);
    },

    getDevice(deviceId) {
      return life.read('getDevice', async () => {
        const id = requireName(deviceId, 'deviceId');
        return deviceFound(await reader.get<DeviceRow>('SELECT * FROM devices WHERE id = ?1', [id]), id);
      });
    },

    listDevices() {
      return life.read('listDevices', async () =>
        (await reader.all<DeviceRow>('SELECT * FROM devices ORDER BY id')).map(deviceFromRow),
      );
    },

    async deleteDevice(deviceId) {
      life.ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      const info = await write('full', 'many', async (conn) => {
        await conn.run('DELETE FROM snapshots WHERE device_id = ?1', [id]);
        return conn.run('DELETE FROM devices WHERE id = ?1', [id]);
      });
      return deviceChanged(info.changes, id);
    },

    async purgeDeviceHistory(deviceId) {
      life.ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      return write('full', 'many', async (conn) => {
        const telemetry = await conn.run(
          'DELETE FROM telemetry WHERE series_id IN (SELECT id FROM telemetry_series WHERE device_id = ?1)',
          [id],
        );
        await conn.run('DELETE FROM telemetry_series WHERE device_id = ?1', [id]);
        const events = await conn.run('DELETE FROM events WHERE device_id = ?1', [id]);
        const commands = await conn.run('DELETE FROM commands WHERE device_id = ?1', [id]);
        forgetSeries(seriesIds, id);
        return { telemetry: telemetry.changes, events: events.changes, commands: commands.changes };
      });
    },
  };
}
