/**
 * The store's public surface: the engine-neutral port, today's SQLite engine, the schema version,
 * and where the data folder is. Everything else in src/store is internal.
 *
 * @example
 * import { openSqliteStore, resolveDataDir, currentDataDirInput, DATABASE_FILE_NAME } from './store/index.js';
 * const store = await openSqliteStore({ file: join(resolveDataDir(currentDataDirInput()), DATABASE_FILE_NAME) });
 */

export type {
  AdoptJobFailure,
  AdoptJobInput,
  AdoptJobProgress,
  AdoptJobRecord,
  AdoptJobState,
} from './adopt-jobs.js';
export type { DataDirInput } from './data-dir.js';
export {
  currentDataDirInput,
  DATA_DIR_ENV,
  DATA_DIR_OPTION,
  DATABASE_FILE_NAME,
  dataDirArg,
  resolveDataDir,
} from './data-dir.js';
export type { LatestPoint } from './latest-telemetry.js';
export type { Migration } from './migrations.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { SqliteStore, SqliteStoreOptions } from './sqlite-store.js';
export { openSqliteStore } from './sqlite-store.js';
export type {
  Bucket,
  CommandAuditRecord,
  CommandInput,
  CommandQuery,
  CommandStatus,
  CommandUpdate,
  DeviceInput,
  DeviceMessageId,
  DeviceRecord,
  Durability,
  EventInput,
  EventQuery,
  EventRecord,
  EventStats,
  JsonObject,
  JsonValue,
  LoadSnapshotsOptions,
  Page,
  RowResult,
  SnapshotDeadline,
  SnapshotErrorCode,
  SnapshotInput,
  SnapshotLoad,
  SnapshotRecord,
  Store,
  StoreErrorCode,
  StoreFailure,
  StoreResult,
  StoreStats,
  TelemetryAppendSummary,
  TelemetryPoint,
  TelemetryStats,
} from './store.js';
export { COMMAND_STATUSES, StoreError } from './store.js';
