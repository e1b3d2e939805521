/**
 * The persistence port: one engine-neutral, promise-based {@link Store} interface and its record
 * types. The app talks only to this interface; `openSqliteStore` is today's engine, and another
 * (PostgreSQL for several instances sharing a fleet, DESIGN §9) can replace it without touching a
 * caller.
 *
 * Contract every engine keeps:
 * - **A write is acknowledged only after its commit.** A resolved write promise means the data
 *   survives a crash of the app (`kill -9`); writes marked `'full'` below also survive an OS crash
 *   or power loss, provided the disk honours fsync.
 * - **Writes apply in call order.**
 * - **Bad data never throws past the store.** A stored value that does not parse or validate comes
 *   back as a per-row error value (`{ ok: false, error: { code, message } }`); the other rows load.
 * - **Expected outcomes are values** from a closed set of codes (`notFound`, `badRecord`, …),
 *   documented per method. Promises reject only with a {@link StoreError}: misuse (bad
 *   arguments, a closed store) or an engine failure (disk full, I/O error).
 * - Times are wall-clock epoch milliseconds (integers); durations end in `Ms`.
 *
 * @example
 * const store = await openSqliteStore({ file: join(resolveDataDir(), DATABASE_FILE_NAME) });
 * await store.upsertDevice({ id: 'pump-1', kind: 'generic', name: 'Pump 1', tags: ['hall-a'] });
 * await store.saveSnapshot({ deviceId: 'pump-1', kind: 'generic', snapshot, deadlines: [], version: 1 });
 * for (const loaded of await store.loadSnapshots({ knownKinds: ['generic'] })) {
 *   if (loaded.ok) restore(loaded.value);
 *   else markFailed(loaded.deviceId, loaded.error.message);
 * }
 */
import type { JsonObject, JsonValue } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';
import type { AdoptJobStore } from './adopt-jobs.js';
import type { CommandLogStore } from './command-log.js';
import type { LatestTelemetryStore } from './latest-telemetry.js';

export type {
  CommandAuditRecord,
  CommandInput,
  CommandLogStore,
  CommandQuery,
  CommandStatus,
  CommandUpdate,
} from './command-log.js';
export { COMMAND_STATUSES } from './command-log.js';

/** Any value JSON can carry. Stored JSON columns come back as this type. */
export type { JsonObject, JsonValue };

/**
 * How hard a commit is pushed to disk. `'full'`: fsync on every commit — survives power loss
 * (operator actions, snapshots, commands). `'normal'`: survives an app crash, and a power loss may
 * roll back the last commits (high-rate telemetry and the event log).
 */
export type Durability = 'full' | 'normal';

/** An expected failure, as a value: a code from the documented closed set and a readable message. */
export type StoreFailure<C extends string> = Failure<C>;

/** The ok-or-error envelope of every query or write with an expected failure. */
export type StoreResult<T, C extends string> = Result<T, Failure<C>>;

/**
 * One stored row, parsed defensively: the record, or why this row could not be read. `id` names
 * the row (device id, command id, or an event's seq as a string).
 */
export type RowResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly id: string; readonly error: StoreFailure<'badRecord'> };

export type StoreErrorCode =
  /** The database was written by a newer app version (its schema version is above ours). */
  | 'databaseTooNew'
  /** The file could not be opened as a database (not a database, no permission, WAL refused). */
  | 'openFailed'
  /** A schema migration failed; the database is left at the last version that applied. */
  | 'migrationFailed'
  /** The engine failed to commit a write (disk full, I/O error); nothing of it was acknowledged. */
  | 'writeFailed'
  /** The engine failed to run a query. */
  | 'readFailed'
  /** The store is closed (or closing) and takes no more calls. */
  | 'closed'
  /** Misuse: an argument is out of its documented range; the message names the field. */
  | 'invalidArgument'
  /**
   * A write of a device whose shard this instance no longer leases (a cluster on PostgreSQL,
   * docs/scale-out.md): another instance owns it now, or the lease ran out; nothing was written.
   */
  | 'fenced';

/**
 * The one error a store throws or rejects with: misuse, bad configuration, or an engine failure.
 * `code` is stable; `cause` carries the engine's own error.
 *
 * @example
 * try { await openSqliteStore({ file }); }
 * catch (e) { if (e instanceof StoreError && e.code === 'databaseTooNew') showUpgradeDialog(e.message); }
 */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  /** For `invalidArgument`: the offending field, e.g. `points[3].value`. */
  readonly field: string | undefined;

  constructor(code: StoreErrorCode, message: string, options: { cause?: unknown; field?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }
}

// ---------------------------------------------------------------------------------------------
// Devices

/** A device as a resource: identity, validated attributes, spec (desired) and status (reported). */
export interface DeviceRecord {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly attributes: JsonObject;
  /** Desired state, set by the operator (firmware version, configuration). */
  readonly spec: JsonObject;
  /** Reported state, from the device. */
  readonly status: JsonObject;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** What {@link Store.upsertDevice} takes. Omitted optional fields keep their stored value (or `[]`/`{}` for a new device). */
export interface DeviceInput {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly tags?: readonly string[];
  readonly attributes?: JsonObject;
  readonly spec?: JsonObject;
  readonly status?: JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Snapshots

/**
 * A running timeout as persisted: its absolute wall-clock deadline, so a restarted actor re-arms
 * it with the remaining time (xstate does not, statelyai/xstate#5331), and its original delay, so
 * the UI can draw progress.
 */
export interface SnapshotDeadline {
  readonly label: string;
  readonly wallDeadlineMs: number;
  readonly delayMs: number;
}

/** One actor's persisted state: one row per device (never one deep snapshot of the tree). */
export interface SnapshotRecord {
  readonly deviceId: string;
  readonly kind: string;
  /** The actor's persisted snapshot, as JSON. */
  readonly snapshot: JsonValue;
  readonly deadlines: readonly SnapshotDeadline[];
  /** The kind's snapshot format version, so a kind can refuse or migrate an older shape. */
  readonly version: number;
  readonly updatedAt: number;
}

export type SnapshotInput = Omit<SnapshotRecord, 'updatedAt'>;

export type SnapshotErrorCode =
  /** The stored snapshot or its deadlines do not parse, or the caller's validator refused it. */
  | 'badSnapshot'
  /** The snapshot's kind is not among the kinds the app knows. */
  | 'unknownKind';

/** Per device: the snapshot to restore, or why that one device cannot be restored. */
export type SnapshotLoad =
  | { readonly ok: true; readonly deviceId: string; readonly value: SnapshotRecord }
  | {
      readonly ok: false;
      readonly deviceId: string;
      readonly kind: string;
      readonly error: StoreFailure<SnapshotErrorCode>;
    };

export interface LoadSnapshotsOptions {
  /** The kinds that exist; a snapshot of any other kind loads as `unknownKind`. Omit to accept all. */
  readonly knownKinds?: Iterable<string>;
  /**
   * Extra validation after parsing: return a reason to refuse the snapshot (`badSnapshot` with that
   * reason), or `undefined` to accept it. A validator that throws refuses it with the thrown message.
   */
  readonly validate?: (record: SnapshotRecord) => string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Telemetry

/** One measurement. Both times are kept: device clocks lie, the receive time orders and ages. */
export interface TelemetryPoint {
  readonly deviceId: string;
  readonly metric: string;
  /** The device's own timestamp, as sent (ms), or null when the device sent none. */
  readonly deviceTs: number | null;
  /** When the host received it (wall-clock ms). Queries and retention use this time. */
  readonly receivedAt: number;
  readonly value: number;
  /**
   * The message it came in (docs/protocol.md: telemetry is stored at most once per device, boot
   * and seq): the device's boot counter and the message's seq. Omitted for conventions without one.
   */
  readonly boot?: number;
  readonly seq?: number;
}

export interface TelemetryAppendSummary {
  /** Points committed. */
  readonly written: number;
  /** Points refused as invalid (non-finite value, empty id, …); they are logged, not written. */
  readonly rejected: number;
  /**
   * Points not stored because their (device, metric, boot, seq) already is: telemetry is stored at
   * most once per device, boot and seq (docs/protocol.md), however old the duplicate.
   */
  readonly duplicates: number;
  /**
   * Only with `{ perPoint: true }`, and only when some point was not written: one entry per point
   * of the call, in order — 0 written, 1 rejected, 2 duplicate. A caller that merged several
   * sources' points into one call (the fleet merges a socket read's messages) gives each its own
   * count from it.
   */
  readonly skipped?: Uint8Array;
}

/** Telemetry counters since the store opened (points, not calls). */
export interface TelemetryStats {
  /** Committed. */
  readonly written: number;
  /** Not stored again: already stored for that (device, metric, boot, seq). */
  readonly duplicates: number;
  /** Refused as invalid. */
  readonly rejected: number;
  /**
   * Refused because the write buffer was full (`overloaded`): lost unless the caller retries after
   * {@link Store.drained}.
   */
  readonly overloaded: number;
  /** Accepted, but their commit failed (disk full, I/O error): lost; the callers got `writeFailed`. */
  readonly failed: number;
  /** The engine's message for the last failed commit, or null. */
  readonly lastFailure: string | null;
  /** Waiting for a commit now. */
  readonly waiting: number;
}

/** Event log counters since the store opened. */
export interface EventStats {
  /** Device events not stored again: already stored for that (device, boot, seq). */
  readonly duplicates: number;
}

/** What {@link Store.stats} reports. */
export interface StoreStats {
  readonly telemetry: TelemetryStats;
  readonly events: EventStats;
}

/** One downsampled bucket `[start, start + width)`; only buckets holding points are returned. */
export interface Bucket {
  readonly start: number;
  readonly min: number;
  readonly max: number;
  readonly avg: number;
  readonly count: number;
}

// ---------------------------------------------------------------------------------------------
// Event log

/** One entry of the append-only event log: every runtime event and device I/O event. */
export interface EventRecord {
  /** Strictly increasing, never reused; the order of the log (not `at`: clocks jump). */
  readonly seq: number;
  readonly at: number;
  readonly deviceId?: string;
  readonly kind: string;
  readonly data: JsonValue;
}

/** Names one message a device sent: its boot counter and the message's seq (docs/protocol.md §8). */
export interface DeviceMessageId {
  readonly boot: number;
  readonly seq: number;
}

export interface EventInput extends Omit<EventRecord, 'seq'> {
  /**
   * The device's protocol `event` message this entry records (needs `deviceId`): the log keeps
   * at most one entry per (deviceId, boot, seq), however late the duplicate and across restarts
   * (docs/protocol.md §8). Omitted for every other event (the host's own, lifecycle, audit).
   */
  readonly deviceMessage?: DeviceMessageId;
}

export interface EventQuery {
  readonly deviceId?: string;
  readonly kind?: string;
  /** `at >= fromMs`. */
  readonly fromMs?: number;
  /** `at < toMs`. */
  readonly toMs?: number;
  /** Ascending pages: only events after this seq. */
  readonly afterSeq?: number;
  /** Descending pages: only events before this seq. */
  readonly beforeSeq?: number;
  /** `'asc'` (default, oldest first) or `'desc'` (newest first, for a live log view). */
  readonly order?: 'asc' | 'desc';
  /** Page size, 1…10 000. */
  readonly limit: number;
}

export interface Page<T> {
  readonly items: readonly RowResult<T>[];
  /**
   * The cursor for the next page (`afterSeq` when ascending, `beforeSeq` when descending), or
   * undefined when this page was the last.
   */
  readonly nextCursor: number | undefined;
}

// ---------------------------------------------------------------------------------------------

/**
 * The persistence port. See the module doc for the contract every engine keeps; each method
 * lists its durability and its expected outcomes. Bulk adoption jobs: src/store/adopt-jobs.ts;
 * each series' newest point: src/store/latest-telemetry.ts; the command audit log:
 * src/store/command-log.ts.
 */
export interface Store extends AdoptJobStore, LatestTelemetryStore, CommandLogStore {
  /**
   * Creates or updates a device (`'full'`). Omitted optional fields keep their stored value;
   * `createdAt` is kept on update. Resolves with the stored record, or `badRecord` when the write
   * committed but a field kept from the stored row does not parse (send that field to repair it).
   */
  upsertDevice(device: DeviceInput): Promise<RowResult<DeviceRecord>>;
  /** Replaces a device's reported status (`'normal'`: the device re-reports it on reconnect). */
  setDeviceStatus(deviceId: string, status: JsonObject): Promise<StoreResult<void, 'notFound'>>;
  /** One device: `notFound`, or `badRecord` if its stored JSON does not parse. */
  getDevice(deviceId: string): Promise<StoreResult<DeviceRecord, 'notFound' | 'badRecord'>>;
  /** Every device, ordered by id; a row that does not parse is a per-row error. */
  listDevices(): Promise<readonly RowResult<DeviceRecord>[]>;
  /**
   * Deletes a device and its snapshot (`'full'`). Its telemetry, events and commands are history
   * and stay until their retention. `notFound` if there was no such device.
   */
  deleteDevice(deviceId: string): Promise<StoreResult<void, 'notFound'>>;
  /**
   * Deletes a device's history (`'full'`): its telemetry, events and commands. For an operator
   * who removes a device and asks for its data to go too; {@link deleteDevice} keeps them.
   */
  purgeDeviceHistory(
    deviceId: string,
  ): Promise<{ readonly telemetry: number; readonly events: number; readonly commands: number }>;

  /**
   * Retention: deletes telemetry points and events older than their cut-off (wall ms; omitted:
   * kept), and commands requested before theirs that are final (open ones are never deleted).
   * In batches of `batchRows`, each its own short write, so ingest goes on between them.
   */
  pruneHistory(
    before: { readonly telemetry?: number; readonly events?: number; readonly commands?: number },
    options?: { readonly batchRows?: number },
  ): Promise<{ readonly telemetry: number; readonly events: number; readonly commands: number }>;

  /** Persists one actor's snapshot and running deadlines, replacing the previous one (`'full'`). */
  saveSnapshot(snapshot: SnapshotInput): Promise<void>;
  /** Every stored snapshot, ordered by device id, each parsed and validated on its own. */
  loadSnapshots(options?: LoadSnapshotsOptions): Promise<readonly SnapshotLoad[]>;
  /** One device's snapshot (to restart one actor), or undefined when none is stored. */
  loadSnapshot(deviceId: string, options?: LoadSnapshotsOptions): Promise<SnapshotLoad | undefined>;

  /**
   * Appends telemetry (`'normal'`). Points are batched with other callers' and written in one
   * statement; the promise resolves once the commit holding them is done (the store holds on to
   * the points until then: do not mutate them meanwhile). Invalid points are refused one by one
   * (`rejected`); a point whose (device, metric, boot, seq) is already stored is skipped and
   * counted (`duplicates`); `overloaded` when the write buffer is full (nothing written).
   *
   * Backpressure: the promise resolves only after the commit, so a link may hold a QoS 1 PUBACK
   * until then. On `overloaded`, stop reading (pause the socket), `await drained()`, and retry
   * the refused points; every refusal and failed commit is counted in {@link Store.stats}.
   *
   * `perPoint`: the summary also says which points were not written (`skipped`).
   */
  appendTelemetry(
    points: readonly TelemetryPoint[],
    options?: { readonly perPoint?: boolean },
  ): Promise<StoreResult<TelemetryAppendSummary, 'overloaded'>>;
  /**
   * `[fromMs, toMs)` of one metric of one device (by receive time), downsampled into `buckets`
   * equal buckets (1…10 000) with min/max/avg/count; empty buckets are left out.
   */
  queryTelemetry(
    deviceId: string,
    metric: string,
    fromMs: number,
    toMs: number,
    buckets: number,
  ): Promise<Bucket[]>;
  /** The metrics a device has telemetry for, sorted. */
  listMetrics(deviceId: string): Promise<string[]>;
  /** Retention: deletes the points received more than `olderThanMs` ago (`'normal'`). */
  pruneTelemetry(olderThanMs: number): Promise<{ readonly deleted: number }>;

  /**
   * Appends to the event log (`'normal'` unless `durability: 'full'`, for operator actions) and
   * resolves with the new seqs, in order, after the commit. An event whose `deviceMessage` is
   * already stored for its device is not stored again: its place in the result holds the stored
   * entry's seq, and it is counted in {@link StoreStats.events} (`duplicates`).
   */
  appendEvents(
    events: readonly EventInput[],
    options?: { readonly durability?: Durability },
  ): Promise<number[]>;
  /** A page of the event log filtered by device, kind and time. */
  queryEvents(query: EventQuery): Promise<Page<EventRecord>>;

  /** Counters for health views: what was written, deduplicated, refused, and why. Cheap. */
  stats(): StoreStats;
  /**
   * Resolves when the telemetry write buffer has room again (at most half full): at once when it
   * has. For a link that got `overloaded`: pause reading, await this, resume and retry.
   *
   * @example
   * const r = await store.appendTelemetry(points);
   * if (!r.ok) { socket.pause(); await store.drained(); socket.resume(); await store.appendTelemetry(points); }
   */
  drained(): Promise<void>;

  /** Flushes buffered writes, waits for their commits, and closes. Later calls reject `closed`. */
  close(): Promise<void>;
}
