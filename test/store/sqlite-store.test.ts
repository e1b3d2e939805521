/**
 * The SQLite store: the Store contract suite (test/store/contract.ts) on a real SQLite file per
 * test, then what only SQLite has (one WAL-mode file at a path, its schema steps, its message for a
 * newer database). kill -9, file modes, the write queue and export have their own files.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TelemetryPoint } from '../../src/store/index.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { StoreError } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';
import { defineStoreContract } from './contract.js';
import { rawAll, rawExec, tempDir } from './helpers.js';

const T = 1_750_000_000_000;

/** A new temp folder per test; the hooks use a sqlite3 connection of their own. */
function sqliteEngine(): StoreEngine {
  let tmp: ReturnType<typeof tempDir> | undefined;
  const file = () => {
    if (tmp === undefined) throw new Error('no test database: call fresh() first');
    return tmp.file;
  };
  return {
    name: 'SQLite',
    schemaVersion: SCHEMA_VERSION,
    async fresh() {
      tmp?.cleanup();
      tmp = tempDir();
    },
    async cleanup() {
      tmp?.cleanup();
      tmp = undefined;
    },
    open: (options = {}) => openSqliteStore({ file: file(), ...options }),
    all: (sql) => rawAll(file(), sql),
    exec: (sql) => rawExec(file(), sql),
    refuseTelemetryValue: (value, message) =>
      rawExec(
        file(),
        `CREATE TRIGGER refuse BEFORE INSERT ON telemetry WHEN NEW.value = ${value} BEGIN SELECT RAISE(ABORT, '${message}'); END`,
      ),
    setSchemaVersion: (version) => rawExec(file(), `PRAGMA user_version = ${version}`),
  };
}

defineStoreContract(sqliteEngine());

describe('SQLite store: the file', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;

  beforeEach(async () => {
    tmp = tempDir();
    store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 1 });
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  const message = (seq: number): TelemetryPoint[] =>
    ['temp', 'rssi'].map((metric, i) => ({
      deviceId: 'd1',
      metric,
      deviceTs: null,
      receivedAt: T + seq,
      value: i,
      boot: 1,
      seq,
    }));

  it('is one SQLite file in WAL mode at the given path, its folder created', async () => {
    await store.close();
    const nested = `${tmp.dir}/a/b/fleet.sqlite`;
    store = await openSqliteStore({ file: nested });
    expect(store.file).toBe(nested);
    const mode = await rawAll<{ journal_mode: string }>(nested, 'PRAGMA journal_mode');
    expect(mode[0]!.journal_mode).toBe('wal');
  });

  it('upgrades a database of the schema before telemetry dedupe, keeping its telemetry', async () => {
    await store.close();
    tmp.cleanup();
    tmp = tempDir();
    store = await openSqliteStore({ file: tmp.file, migrations: MIGRATIONS.slice(0, 2) });
    await store.close();
    await rawExec(
      tmp.file,
      `INSERT INTO telemetry_series (id, device_id, metric) VALUES (1, 'd1', 'temp');
       INSERT INTO telemetry (series_id, received_at, device_ts, value) VALUES (1, ${T}, NULL, 1), (1, ${T}, NULL, 1);`,
    );
    store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 1 });
    await store.appendTelemetry(message(1));
    expect(await store.appendTelemetry(message(1))).toMatchObject({ value: { written: 0, duplicates: 2 } });
    const rows = await rawAll<{ n: number }>(tmp.file, 'SELECT count(*) AS n FROM telemetry');
    expect(rows[0]!.n).toBe(4);
  });

  it('names the file and the data-folder options when the database is from a newer app', async () => {
    await store.close();
    await rawExec(tmp.file, `PRAGMA user_version = ${SCHEMA_VERSION + 3}`);
    const error = await openSqliteStore({ file: tmp.file }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toBe(
      `The database ${tmp.file} has schema version ${SCHEMA_VERSION + 3}, but this Fleetvisor understands schema ` +
        `versions up to ${SCHEMA_VERSION}. It was written by a newer Fleetvisor: update Fleetvisor, or start it ` +
        'with another data folder (--data-dir or FLEETVISOR_DATA_DIR).',
    );
  });
});
