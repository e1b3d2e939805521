/**
 * The {@link Store} on one SQLite file (sqlite3, Node-API, so the same build runs in Node and
 * Electron), in WAL mode.
 *
 * Connections: one writer and one read-only reader. Every write goes through the writer's queue
 * ({@link createWriteQueue}: group commit, `BEGIN IMMEDIATE`, acknowledged after COMMIT), so there
 * is exactly one write connection (reliability D5). Queries run on the reader, which sees only
 * committed data (WAL snapshot isolation) and runs beside the writer instead of behind it.
 *
 * Durability, per transaction (the writer sets `PRAGMA synchronous` before each one):
 * - `synchronous=FULL` for devices, snapshots, commands and operator events: an acknowledged
 *   operator action or actor transition survives a power loss, not only an app crash.
 * - `synchronous=NORMAL` for telemetry, the runtime event log and reported device status: in WAL
 *   mode an app crash (`kill -9`) still loses no committed transaction; only a power loss may roll
 *   back the last commits, which are high-rate measurements the devices keep sending (reliability
 *   D1/D2: FULL was ~5× slower for this traffic).
 * A FULL commit fsyncs the whole WAL, so it also hardens every NORMAL commit before it.
 *
 * Telemetry: points wait in a buffer, flushed `telemetryFlushMs` after the first one or at once at
 * `telemetryBatchMax` points, and go into SQLite in one statement per `telemetryBatchMax` points
 * (`INSERT … SELECT … FROM json_each(?)`): one call per batch instead of one per row. A series (one
 * metric of one device) gets a small integer id, cached in memory, so a point is four numbers.
 *
 * Not handled here, on purpose: two app instances writing one file (the caller should hold a
 * single-instance lock), and `quick_check` / backup at boot (reliability D4).
 *
 * @example
 * const store = await openSqliteStore({ file: join(dataDir, DATABASE_FILE_NAME), logger });
 * await store.appendTelemetry([{ deviceId: 'pump-1', metric: 'temp', deviceTs: null, receivedAt: Date.now(), value: 21.5 }]);
 * const buckets = await store.queryTelemetry('pump-1', 'temp', Date.now() - 600_000, Date.now(), 60);
 * await store.close();
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { LatestRow } from './latest-telemetry.js';
import { latestFromRows, latestTelemetrySql } from './latest-telemetry.js';
import type { Migration } from './migrations.js';
import { migrate } from './migrations.js';
import { messageOf, requireName } from './records.js';
import { createSqliteAdoptJobs } from './sqlite-adopt-jobs.js';
import { createSqliteCommands } from './sqlite-commands.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { openSqliteConnection } from './sqlite-connection.js';
import type { SqliteContext } from './sqlite-context.js';
import { createSqliteDevices } from './sqlite-devices.js';
import { createSqliteEvents } from './sqlite-events.js';
import type { ExportReader } from './sqlite-export.js';
import { createExportReader } from './sqlite-export.js';
import { createSqliteRetention } from './sqlite-retention.js';
import { createSqliteSnapshots } from './sqlite-snapshots.js';
import { createSqliteTelemetry } from './sqlite-telemetry.js';
import { createWriteQueue } from './sqlite-write-queue.js';
import type { Store } from './store.js';
import { StoreError } from './store.js';
import { commitBuffered, createStoreLife, writerOf } from './store-life.js';
import type { TelemetrySizes } from './store-telemetry.js';
import { telemetryOptions } from './store-telemetry.js';

export interface SqliteStoreOptions {
  /** The database file; its folder is created if missing. */
  readonly file: string;
  readonly logger?: Logger;
  /** How long the first waiting telemetry point waits for others before a flush. Default 50. */
  readonly telemetryFlushMs?: number;
  /** Flush at once at this many waiting points; also the most points per INSERT. Default 10 000. */
  readonly telemetryBatchMax?: number;
  /** Most points waiting for a commit before `appendTelemetry` answers `overloaded`. Default 20 × batch max. */
  readonly telemetryBufferMax?: number;
  /** Wall clock for `createdAt`/`updatedAt` and retention. Default `Date.now`. */
  readonly now?: () => number;
  /** Schema steps; defaults to the app's {@link MIGRATIONS}. For tests. */
  readonly migrations?: readonly Migration[];
}

/** A {@link Store} on SQLite; `file` is the absolute path it opened. */
export interface SqliteStore extends Store {
  readonly file: string;
  /** Streaming readers for export (src/store/sqlite-export.ts). */
  readonly exports: ExportReader;
}

/** Folders the store creates: the user's alone. */
export const PRIVATE_FOLDER_MODE = 0o700;
/** The database and its -wal/-shm files: the user's alone. */
const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes the database file the user's alone before SQLite opens it: created 0600 if missing,
 * tightened to 0600 if readable by others, and the same for a -wal or -shm left from a previous
 * run. SQLite gives the -wal and -shm it creates the database file's mode, so they follow.
 * A file that cannot be changed (another owner) is logged, not fatal: opening decides.
 */
export function makePrivate(file: string, logger: Logger): void {
  if (process.platform === 'win32') return;
  try {
    closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  } catch {
    // Opening the database reports why (no permission, a folder in the way, …).
    return;
  }
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, PRIVATE_FILE_MODE);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        logger.warn('cannot make a database file private (mode 0600)', { path, error: messageOf(cause) });
    }
  }
}

// Connection settings. The WAL checkpoints every ~16 MB and is truncated back to 64 MB at most
// (reliability D3: bounded WAL); the writer's 32 MB page cache holds the hot index pages of a
// large fleet's series, which is what keeps batched inserts fast.
const WRITER_PRAGMAS = `
  PRAGMA cache_size = -32768;
  PRAGMA wal_autocheckpoint = 4000;
  PRAGMA journal_size_limit = 67108864;
  PRAGMA temp_store = MEMORY;
`;
const READER_PRAGMAS = 'PRAGMA cache_size = -16384;';

/**
 * Opens (creating if needed) the store at `options.file`: WAL mode, migrations to the app's schema.
 *
 * Throws {@link StoreError}: `databaseTooNew` (the file is from a newer Fleetvisor; the message
 * names both schema versions), `openFailed` (not a database, not Fleetvisor's, no permission, WAL
 * refused), `migrationFailed`, `invalidArgument` (an option out of range).
 *
 * @example
 * const store = await openSqliteStore({ file: '/home/me/.local/share/fleetvisor/fleetvisor.sqlite' });
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const file = resolve(requireName(options.file, 'file'));
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const sizes = telemetryOptions(options);

  try {
    mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_FOLDER_MODE });
  } catch (cause) {
    throw new StoreError('openFailed', `cannot create the folder of ${file}: ${messageOf(cause)}`, { cause });
  }
  makePrivate(file, logger);
  let writer: SqliteConnection | undefined;
  let reader: SqliteConnection | undefined;
  let schema: { from: number; to: number };
  try {
    writer = await openSqliteConnection(file, { readOnly: false });
    const mode = await writer.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
    if (mode?.journal_mode !== 'wal')
      throw new StoreError('openFailed', `${file} refused WAL mode (journal_mode is ${mode?.journal_mode})`);
    await writer.exec(`PRAGMA synchronous = FULL; ${WRITER_PRAGMAS}`);
    schema = await migrate(writer, { migrations: options.migrations, logger });
    reader = await openSqliteConnection(file, { readOnly: true });
    await reader.exec(READER_PRAGMAS);
  } catch (error) {
    await reader?.close().catch(() => {});
    await writer?.close().catch(() => {});
    if (error instanceof StoreError) throw error;
    throw new StoreError('openFailed', `cannot open the database ${file}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  logger.info('store opened', { file, schemaVersion: schema.to, migratedFrom: schema.from });
  return createSqliteStore({ file, writer, reader, logger, now, sizes });
}

interface Parts {
  readonly file: string;
  readonly writer: SqliteConnection;
  readonly reader: SqliteConnection;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sizes: TelemetrySizes;
}

/** The store assembled from its concerns, each in its own file; only the close is here. */
function createSqliteStore(parts: Parts): SqliteStore {
  const { file, writer, reader, logger } = parts;
  const queue = createWriteQueue(writer);
  const life = createStoreLife(file);
  const context: SqliteContext = {
    reader,
    queue,
    write: writerOf(queue),
    life,
    logger,
    now: parts.now,
    seriesIds: new Map(),
  };
  const { buffer: telemetry, ...telemetryCalls } = createSqliteTelemetry(context, parts.sizes);
  const { buffer: events, eventStats, ...eventCalls } = createSqliteEvents(context);
  return {
    file,
    exports: createExportReader(reader, life.ensureOpen),
    ...createSqliteDevices(context),
    ...createSqliteSnapshots(context),
    ...telemetryCalls,
    ...eventCalls,
    stats: () => ({ ...telemetryCalls.stats(), events: eventStats() }),
    ...createSqliteCommands(context),
    ...createSqliteRetention(context),
    ...createSqliteAdoptJobs(context),
    latestTelemetry: (options) =>
      life.read('latestTelemetry', async () => {
        const { sql, params } = latestTelemetrySql('sqlite', options);
        return latestFromRows(await reader.all<LatestRow>(sql, params));
      }),

    close() {
      return life.close(async () => {
        await commitBuffered(telemetry, events, queue);
        try {
          await reader.close();
        } finally {
          // The last connection to close checkpoints the WAL into the database and removes it.
          await writer.close();
        }
        logger.info('store closed', { file });
      });
    },
  };
}
