/**
 * What a store call answers once its statement ran, the same for both engines: rows changed
 * become ok or an expected outcome (`notFound`, `alreadyRecorded`), a device row becomes its
 * record or `badRecord`.
 *
 * @example
 * const changed = (await conn.run('UPDATE devices SET status = ?1 …', params)).changes;
 * return deviceChanged(changed, id);   // ok, or { code: 'notFound', message: "no device 'pump-1'" }
 */
import type { DeviceRow } from './rows.js';
import { deviceFromRow } from './rows.js';
import type { DeviceRecord, RowResult, StoreResult } from './store.js';
import { StoreError } from './store.js';

/** Ok when a row of device `id` changed, else `notFound`. */
export function deviceChanged(changed: number, id: string): StoreResult<void, 'notFound'> {
  return changed > 0
    ? { ok: true, value: undefined }
    : { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
}

/** The row an upsert returned as the stored record. */
export function upsertedDevice(row: DeviceRow | undefined, id: string): RowResult<DeviceRecord> {
  if (row === undefined) throw new StoreError('writeFailed', `device '${id}' was not returned by its upsert`);
  const parsed = deviceFromRow(row);
  if (parsed.ok) return parsed;
  // Reachable only when a field kept from a corrupt stored row does not parse.
  return { ...parsed, error: { code: 'badRecord', message: `saved, but ${parsed.error.message}` } };
}

/** `getDevice`'s answer for the row found (undefined: none). */
export function deviceFound(
  row: DeviceRow | undefined,
  id: string,
): StoreResult<DeviceRecord, 'notFound' | 'badRecord'> {
  if (row === undefined) return { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
  const parsed = deviceFromRow(row);
  return parsed.ok ? parsed : { ok: false, error: parsed.error };
}

/** Ok when the command's row was inserted, else `alreadyRecorded`. */
export function commandRecorded(changed: number, commandId: string): StoreResult<void, 'alreadyRecorded'> {
  return changed > 0
    ? { ok: true, value: undefined }
    : {
        ok: false,
        error: { code: 'alreadyRecorded', message: `command '${commandId}' is already recorded` },
      };
}

/** Ok when the command's row was updated, else `notFound`. */
export function commandUpdated(changed: number, id: string): StoreResult<void, 'notFound'> {
  return changed > 0
    ? { ok: true, value: undefined }
    : { ok: false, error: { code: 'notFound', message: `no command '${id}' was recorded` } };
}
