/**
 * A store call's arguments checked and turned into the parameters of its statement, the same for
 * both engines (the SQL numbers them in this order: `?1…` in SQLite, `$1…` in PostgreSQL). Misuse
 * throws {@link StoreError} `invalidArgument` naming the field, in the order the fields are listed.
 *
 * @example
 * const params = deviceParams(device, now());   // [id, kind, name, tags, attributes, spec, status, at]
 * await conn.run('INSERT INTO devices … VALUES (?1, ?2, …)', params);
 */
import {
  requireCommandStatus,
  requireDeadlines,
  requireInt,
  requireName,
  requireObject,
  requireTags,
  requireTime,
  toJsonText,
} from './records.js';
import type {
  CommandInput,
  CommandUpdate,
  DeviceInput,
  JsonObject,
  LoadSnapshotsOptions,
  SnapshotInput,
} from './store.js';
import { StoreError } from './store.js';

/** `[id, kind, name, tags, attributes, spec, status, at]`; a field left out is null (kept on update). */
export type DeviceParams = [
  string,
  string,
  string,
  string | null,
  string | null,
  string | null,
  string | null,
  number,
];

export function deviceParams(device: DeviceInput, at: () => number): DeviceParams {
  const id = requireName(device?.id, 'device.id');
  const kind = requireName(device.kind, 'device.kind');
  const name = requireName(device.name, 'device.name');
  return [
    id,
    kind,
    name,
    device.tags === undefined ? null : toJsonText(requireTags(device.tags, 'device.tags'), 'device.tags'),
    device.attributes === undefined
      ? null
      : toJsonText(requireObject(device.attributes, 'device.attributes'), 'device.attributes'),
    device.spec === undefined ? null : toJsonText(requireObject(device.spec, 'device.spec'), 'device.spec'),
    device.status === undefined
      ? null
      : toJsonText(requireObject(device.status, 'device.status'), 'device.status'),
    at(),
  ];
}

/** `[status, at, id]` of `setDeviceStatus`. */
export function statusParams(
  deviceId: string,
  status: JsonObject,
  at: () => number,
): [string, number, string] {
  const id = requireName(deviceId, 'deviceId');
  const text = toJsonText(requireObject(status, 'status'), 'status');
  return [text, at(), id];
}

/** `[deviceId, kind, snapshot, deadlines, version, at]` of `saveSnapshot`. */
export function snapshotParams(
  input: SnapshotInput,
  at: () => number,
): [string, string, string, string, number, number] {
  const deviceId = requireName(input?.deviceId, 'snapshot.deviceId');
  const kind = requireName(input.kind, 'snapshot.kind');
  const snapshot = toJsonText(input.snapshot, 'snapshot.snapshot');
  const deadlines = toJsonText(requireDeadlines(input.deadlines, 'snapshot.deadlines'), 'snapshot.deadlines');
  const version = requireInt(input.version, 'snapshot.version', 0, Number.MAX_SAFE_INTEGER);
  return [deviceId, kind, snapshot, deadlines, version, at()];
}

/** The kinds a snapshot load accepts; undefined: any. */
export function knownKindsOf(options: LoadSnapshotsOptions): ReadonlySet<string> | undefined {
  return options.knownKinds === undefined ? undefined : new Set(options.knownKinds);
}

/** `[commandId, deviceId, action, args, actor, status, requestedAt, expiresAt]` of `recordCommand`. */
export function commandParams(command: CommandInput): [string, string, ...(string | number | null)[]] {
  const commandId = requireName(command?.commandId, 'command.commandId');
  return [
    commandId,
    requireName(command.deviceId, 'command.deviceId'),
    requireName(command.action, 'command.action'),
    toJsonText(command.args, 'command.args'),
    requireName(command.actor, 'command.actor'),
    requireCommandStatus(command.status ?? 'pending', 'command.status'),
    requireTime(command.requestedAt, 'command.requestedAt'),
    command.expiresAt == null ? null : requireTime(command.expiresAt, 'command.expiresAt'),
  ];
}

/**
 * `[status, result, error, completedAt, commandId]` of `updateCommand`; null keeps the stored
 * value (the SQL coalesces).
 */
export function commandUpdateParams(
  commandId: string,
  update: CommandUpdate,
): [string, string | null, string | null, number | null, string] {
  const id = requireName(commandId, 'commandId');
  const status = requireCommandStatus(update?.status, 'update.status');
  let error: string | null = null;
  if (update.error !== undefined) {
    requireName(update.error?.code, 'update.error.code');
    if (typeof update.error.message !== 'string')
      throw new StoreError('invalidArgument', 'update.error.message must be a string', {
        field: 'update.error.message',
      });
    error = toJsonText({ code: update.error.code, message: update.error.message }, 'update.error');
  }
  return [
    status,
    update.result === undefined ? null : toJsonText(update.result, 'update.result'),
    error,
    update.completedAt === undefined ? null : requireTime(update.completedAt, 'update.completedAt'),
    id,
  ];
}
