import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Migration } from '../../src/store/migrations.js';
import { APPLICATION_ID, MIGRATIONS, migrate, SCHEMA_VERSION } from '../../src/store/migrations.js';
import type { SqliteConnection } from '../../src/store/sqlite-connection.js';
import { openSqliteConnection } from '../../src/store/sqlite-connection.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { StoreError } from '../../src/store/store.js';
import { rawAll, rawExec, recordingLogger, tempDir } from './helpers.js';

describe('migrations', () => {
  let tmp: ReturnType<typeof tempDir>;
  let conn: SqliteConnection;

  beforeEach(async () => {
    tmp = tempDir();
    conn = await openSqliteConnection(tmp.file, { readOnly: false });
  });
  afterEach(async () => {
    await conn.close();
    tmp.cleanup();
  });

  const userVersion = async () =>
    (await rawAll<{ user_version: number }>(tmp.file, 'PRAGMA user_version'))[0]!.user_version;

  it('brings a new database to the app schema, marks it as Fleetvisor, and is a no-op the next time', async () => {
    const logger = recordingLogger();
    expect(await migrate(conn, { logger })).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(await userVersion()).toBe(SCHEMA_VERSION);
    const appId = await rawAll<{ application_id: number }>(tmp.file, 'PRAGMA application_id');
    expect(appId[0]!.application_id).toBe(APPLICATION_ID);
    const tables = await rawAll<{ name: string }>(
      tmp.file,
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    expect(tables.map((t) => t.name)).toEqual([
      'adopt_job_ids',
      'adopt_jobs',
      'alarm_rules',
      'alarms',
      'commands',
      'devices',
      'events',
      'firmware_image_kinds',
      'firmware_image_refs',
      'firmware_images',
      'firmware_jobs',
      'firmware_rollouts',
      'snapshots',
      'telemetry',
      'telemetry_series',
    ]);
    expect(logger.lines.some((l) => l.message === 'store migrated')).toBe(true);

    expect(await migrate(conn)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
  });

  it('applies only the missing steps, in order, keeping the data', async () => {
    const v1: Migration = {
      version: 1,
      name: 'things',
      sql: 'CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)',
    };
    const v2: Migration = {
      version: 2,
      name: 'things.color',
      sql: "ALTER TABLE things ADD COLUMN color TEXT DEFAULT 'red'",
    };
    expect(await migrate(conn, { migrations: [v1] })).toEqual({ from: 0, to: 1 });
    await conn.run("INSERT INTO things (name) VALUES ('bolt')");
    expect(await migrate(conn, { migrations: [v1, v2] })).toEqual({ from: 1, to: 2 });
    expect(await conn.all('SELECT name, color FROM things')).toEqual([{ name: 'bolt', color: 'red' }]);
  });

  it('leaves the database at the last good version when a step fails, naming the step', async () => {
    const v1: Migration = { version: 1, name: 'things', sql: 'CREATE TABLE things (id INTEGER PRIMARY KEY)' };
    const v2: Migration = {
      version: 2,
      name: 'broken step',
      sql: 'CREATE TABLE half (id INTEGER); CREATE TABLE nope (',
    };
    const error = await migrate(conn, { migrations: [v1, v2] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'migrationFailed' });
    expect((error as Error).message).toContain('migration 2 (broken step)');
    expect((error as Error).message).toContain('stays at schema version 1');
    expect((error as Error).cause).toBeInstanceOf(Error);
    expect(await userVersion()).toBe(1);
    // The step's first statement rolled back with it.
    expect(await rawAll(tmp.file, "SELECT name FROM sqlite_schema WHERE name = 'half'")).toEqual([]);
  });

  it('refuses a database newer than the app, naming both versions, and leaves it untouched', async () => {
    await rawExec(tmp.file, `PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
    const error = await migrate(conn).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'databaseTooNew' });
    const message = (error as Error).message;
    expect(message).toContain(`schema version ${SCHEMA_VERSION + 5}`);
    expect(message).toContain(`up to ${SCHEMA_VERSION}`);
    expect(message).toContain('newer Fleetvisor');
    expect(await userVersion()).toBe(SCHEMA_VERSION + 5);
  });

  it("refuses another application's SQLite database instead of migrating it", async () => {
    await rawExec(tmp.file, 'PRAGMA application_id = 1234; CREATE TABLE theirs (x)');
    const error = await migrate(conn).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'openFailed' });
    expect((error as Error).message).toContain('another application');
    expect(await userVersion()).toBe(0);
  });

  it('refuses a migration list with a gap (misuse)', async () => {
    const error = await migrate(conn, {
      migrations: [
        { version: 1, name: 'a', sql: 'SELECT 1' },
        { version: 3, name: 'c', sql: 'SELECT 1' },
      ],
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalidArgument', field: 'migrations[1].version' });
  });
});

describe('opening a store', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('refuses a database written by a newer app with databaseTooNew, and opens nothing', async () => {
    const store = await openSqliteStore({ file: tmp.file });
    await store.close();
    await rawExec(tmp.file, `PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    const error = await openSqliteStore({ file: tmp.file }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'databaseTooNew' });
    expect((error as Error).message).toMatch(
      new RegExp(
        `schema version ${SCHEMA_VERSION + 1}, but this Fleetvisor understands schema versions up to ${SCHEMA_VERSION}`,
      ),
    );
  });

  it('refuses a file that is not a database with openFailed naming the file', async () => {
    writeFileSync(
      tmp.file,
      'this is not an SQLite database, just some text that is long enough to have a header',
    );
    const error = await openSqliteStore({ file: tmp.file }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'openFailed' });
    expect((error as Error).message).toContain(tmp.file);
  });
});
