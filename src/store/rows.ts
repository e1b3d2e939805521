/**
 * Stored rows to records, defensively: a column that does not parse or has the wrong shape makes
 * that one row an error value naming the row, the column and the problem. Nothing here throws.
 * Engine-neutral: the SQLite and PostgreSQL stores have the same columns (JSON kept as text).
 *
 * @example
 * const rows = await reader.all<DeviceRow>('SELECT * FROM devices');
 * const devices = rows.map(deviceFromRow);   // RowResult<DeviceRecord>[]
 */
import type { Parsed } from './records.js';
import {
  asNumber,
  isCommandStatus,
  isJsonObject,
  messageOf,
  parseDeadlines,
  parseJson,
  parseJsonObject,
  parseStringArray,
} from './records.js';
import type {
  CommandAuditRecord,
  DeviceRecord,
  EventRecord,
  JsonValue,
  LoadSnapshotsOptions,
  RowResult,
  SnapshotLoad,
  SnapshotRecord,
  StoreFailure,
} from './store.js';

export interface DeviceRow {
  id: string;
  kind: unknown;
  name: unknown;
  tags: unknown;
  attributes: unknown;
  spec: unknown;
  status: unknown;
  created_at: unknown;
  updated_at: unknown;
}

export interface SnapshotRow {
  device_id: string;
  kind: unknown;
  snapshot: unknown;
  deadlines: unknown;
  version: unknown;
  updated_at: unknown;
}

export interface EventRow {
  seq: number;
  at: unknown;
  device_id: unknown;
  kind: unknown;
  data: unknown;
}

export interface CommandRow {
  seq: number;
  command_id: string;
  device_id: unknown;
  action: unknown;
  args: unknown;
  actor: unknown;
  status: unknown;
  result: unknown;
  error: unknown;
  requested_at: unknown;
  completed_at: unknown;
  expires_at: unknown;
}

/** Thrown only inside this module, to leave a row's parsing at its first problem. */
class RowProblem {
  constructor(readonly reason: string) {}
}

function need<T>(parsed: Parsed<T>, column: string): T {
  if (!parsed.ok) throw new RowProblem(`${column} ${parsed.error}`);
  return parsed.value;
}

function text(value: unknown, column: string): string {
  if (typeof value !== 'string') throw new RowProblem(`${column} is not text`);
  return value;
}

function num(value: unknown, column: string): number {
  const n = asNumber(value);
  if (n === undefined) throw new RowProblem(`${column} is not a number`);
  return n;
}

function rowResult<T>(id: string, what: string, build: () => T): RowResult<T> {
  try {
    return { ok: true, value: build() };
  } catch (e) {
    const reason = e instanceof RowProblem ? e.reason : messageOf(e);
    return { ok: false, id, error: { code: 'badRecord', message: `${what}: ${reason}` } };
  }
}

export function deviceFromRow(row: DeviceRow): RowResult<DeviceRecord> {
  return rowResult(row.id, `stored device '${row.id}'`, () => ({
    id: row.id,
    kind: text(row.kind, 'kind'),
    name: text(row.name, 'name'),
    tags: need(parseStringArray(row.tags), 'tags'),
    attributes: need(parseJsonObject(row.attributes), 'attributes'),
    spec: need(parseJsonObject(row.spec), 'spec'),
    status: need(parseJsonObject(row.status), 'status'),
    createdAt: num(row.created_at, 'created_at'),
    updatedAt: num(row.updated_at, 'updated_at'),
  }));
}

/**
 * A snapshot row as a {@link SnapshotLoad}: the kind is checked first (a snapshot of a kind the app
 * does not know cannot be judged), then the JSON, the deadlines, and the caller's validator.
 */
export function snapshotFromRow(
  row: SnapshotRow,
  knownKinds: ReadonlySet<string> | undefined,
  validate: LoadSnapshotsOptions['validate'],
): SnapshotLoad {
  const deviceId = row.device_id;
  const kind = typeof row.kind === 'string' ? row.kind : String(row.kind);
  const fail = (code: 'badSnapshot' | 'unknownKind', message: string): SnapshotLoad => ({
    ok: false,
    deviceId,
    kind,
    error: { code, message },
  });
  if (knownKinds !== undefined && !knownKinds.has(kind)) {
    const known = [...knownKinds].sort().join(', ') || 'none';
    return fail(
      'unknownKind',
      `device '${deviceId}' has kind '${kind}', which this app does not know (known kinds: ${known})`,
    );
  }
  let record: SnapshotRecord;
  try {
    record = {
      deviceId,
      kind,
      snapshot: need(parseJson(row.snapshot), 'snapshot'),
      deadlines: need(parseDeadlines(row.deadlines), 'deadlines'),
      version: num(row.version, 'version'),
      updatedAt: num(row.updated_at, 'updated_at'),
    };
  } catch (e) {
    const reason = e instanceof RowProblem ? e.reason : messageOf(e);
    return fail('badSnapshot', `the stored snapshot of device '${deviceId}' cannot be restored: ${reason}`);
  }
  if (validate !== undefined) {
    let refusal: string | undefined;
    try {
      refusal = validate(record);
    } catch (e) {
      refusal = messageOf(e);
    }
    if (refusal !== undefined)
      return fail('badSnapshot', `the stored snapshot of device '${deviceId}' was refused: ${refusal}`);
  }
  return { ok: true, deviceId, value: record };
}

export function eventFromRow(row: EventRow): RowResult<EventRecord> {
  return rowResult(String(row.seq), `stored event #${row.seq}`, () => {
    const deviceId = row.device_id;
    if (deviceId !== null && typeof deviceId !== 'string') throw new RowProblem('device_id is not text');
    const base = {
      seq: row.seq,
      at: num(row.at, 'at'),
      kind: text(row.kind, 'kind'),
      data: need(parseJson(row.data), 'data'),
    };
    return deviceId === null ? base : { ...base, deviceId };
  });
}

export function commandFromRow(row: CommandRow): RowResult<CommandAuditRecord> {
  return rowResult(row.command_id, `stored command '${row.command_id}'`, () => {
    if (!isCommandStatus(row.status))
      throw new RowProblem(`status ${JSON.stringify(row.status)} is not a command status`);
    const result: JsonValue | null = row.result === null ? null : need(parseJson(row.result), 'result');
    return {
      seq: row.seq,
      commandId: row.command_id,
      deviceId: text(row.device_id, 'device_id'),
      action: text(row.action, 'action'),
      args: need(parseJson(row.args), 'args'),
      actor: text(row.actor, 'actor'),
      status: row.status,
      result,
      error: row.error === null ? null : failureFrom(need(parseJson(row.error), 'error')),
      requestedAt: num(row.requested_at, 'requested_at'),
      completedAt: row.completed_at === null ? null : num(row.completed_at, 'completed_at'),
      expiresAt:
        row.expires_at === null || row.expires_at === undefined ? null : num(row.expires_at, 'expires_at'),
    };
  });
}

function failureFrom(value: JsonValue): StoreFailure<string> {
  if (!isJsonObject(value) || typeof value.code !== 'string' || typeof value.message !== 'string')
    throw new RowProblem('error is not a JSON { code, message }');
  return { code: value.code, message: value.message };
}
