/**
 * The {@link FirmwareStore} on the app's SQLite file, through a connection of its own.
 *
 * Why its own connection and not the store's writer queue: firmware writes are a handful per day
 * (an import, a delete), and the CLI must work on a data folder with no app running. Each write is
 * one `BEGIN IMMEDIATE` transaction with `synchronous=FULL`; SQLite's lock and the busy timeout
 * order it with the app's writer (WAL mode), in this process or another.
 *
 * Its concerns share the connection and the write turn (sqlite-firmware-context.ts): images
 * (sqlite-firmware-images.ts), who holds them (sqlite-firmware-refs.ts), update jobs
 * (sqlite-firmware-jobs.ts) and rollouts (sqlite-firmware-rollouts.ts).
 *
 * @example
 * const fw = await openSqliteFirmwareStore({ file: join(dataDir, DATABASE_FILE_NAME) });
 * for (const r of await fw.listImages()) if (r.ok) console.log(r.value.version, r.value.kinds);
 * await fw.close();
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { FirmwareStore } from './firmware-store.js';
import { migrate } from './migrations.js';
import { messageOf, requireName } from './records.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { openSqliteConnection } from './sqlite-connection.js';
import { createFirmwareContext } from './sqlite-firmware-context.js';
import { createSqliteFirmwareImages } from './sqlite-firmware-images.js';
import { createSqliteFirmwareJobs } from './sqlite-firmware-jobs.js';
import { createSqliteFirmwareRefs } from './sqlite-firmware-refs.js';
import { createSqliteFirmwareRollouts } from './sqlite-firmware-rollouts.js';
import { makePrivate, PRIVATE_FOLDER_MODE } from './sqlite-store.js';
import { StoreError } from './store.js';

export interface SqliteFirmwareStoreOptions {
  /** The app's database file (created, with the app's schema, if missing). */
  readonly file: string;
  readonly logger?: Logger;
  /** Wall clock for `importedAt` and the audit. Default `Date.now`. */
  readonly now?: () => number;
}

export interface SqliteFirmwareStore extends FirmwareStore {
  readonly file: string;
}

/**
 * Opens the firmware store on `options.file`, bringing its schema up to the app's.
 * Throws {@link StoreError} as `openSqliteStore` does (`openFailed`, `databaseTooNew`, `migrationFailed`).
 */
export async function openSqliteFirmwareStore(
  options: SqliteFirmwareStoreOptions,
): Promise<SqliteFirmwareStore> {
  const file = resolve(requireName(options.file, 'file'));
  const now = options.now ?? Date.now;
  let conn: SqliteConnection | undefined;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_FOLDER_MODE });
    makePrivate(file, options.logger ?? silentLogger);
    conn = await openSqliteConnection(file, { readOnly: false });
    const mode = await conn.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
    if (mode?.journal_mode !== 'wal')
      throw new StoreError('openFailed', `${file} refused WAL mode (journal_mode is ${mode?.journal_mode})`);
    await conn.exec('PRAGMA synchronous = FULL');
    await migrate(conn, { logger: options.logger });
  } catch (error) {
    await conn?.close().catch(() => {});
    if (error instanceof StoreError) throw error;
    throw new StoreError('openFailed', `cannot open the database ${file}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const context = createFirmwareContext(conn, now);
  return {
    file,
    ...createSqliteFirmwareImages(context),
    ...createSqliteFirmwareRefs(context),
    ...createSqliteFirmwareJobs(context, options.logger),
    ...createSqliteFirmwareRollouts(context),
    close: context.close,
  };
}
