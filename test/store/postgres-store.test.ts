/**
 * The PostgreSQL store: the Store contract suite (test/store/contract.ts) on a real PostgreSQL
 * database made for this file (test/store/postgres-helpers.ts; emptied before each test, dropped
 * after the file), then what only PostgreSQL has: instances migrating one database at once, URL
 * checks, an unreachable server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION } from '../../src/store/postgres-migrations.js';
import type { PostgresStore } from '../../src/store/postgres-store.js';
import { openPostgresStore, redactPostgresUrl } from '../../src/store/postgres-store.js';
import { StoreError } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';
import { defineStoreContract } from './contract.js';
import type { TestDatabase } from './postgres-helpers.js';
import { createTestDatabase } from './postgres-helpers.js';

let db: TestDatabase | undefined;
const database = (): TestDatabase => {
  if (db === undefined) throw new Error('the test database was not created');
  return db;
};

beforeAll(async () => {
  db = await createTestDatabase();
}, 60_000);
afterAll(async () => {
  await db?.drop();
});

function postgresEngine(): StoreEngine {
  return {
    name: 'PostgreSQL',
    schemaVersion: POSTGRES_SCHEMA_VERSION,
    fresh: () => database().reset(),
    async cleanup() {},
    open: (options = {}) => openPostgresStore({ url: database().url, ...options }),
    all: async <T>(sql: string) => (await database().query(sql)) as T[],
    async exec(sql) {
      await database().query(sql);
    },
    async refuseTelemetryValue(value, message) {
      await database().query(
        `CREATE FUNCTION refuse_telemetry() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.value = ${value} THEN RAISE EXCEPTION '${message}'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON telemetry FOR EACH ROW EXECUTE FUNCTION refuse_telemetry();`,
      );
    },
    async setSchemaVersion(version) {
      await database().query(
        "INSERT INTO fleetvisor_schema_version (version, name, applied_at) VALUES ($1, 'from a newer app', 0)",
        [version],
      );
    },
  };
}

defineStoreContract(postgresEngine());

describe('PostgreSQL store: the database', () => {
  const opened: PostgresStore[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it('is migrated once when several instances start on it together (advisory lock)', async () => {
    await database().reset();
    const stores = await Promise.all(
      Array.from({ length: 4 }, () => openPostgresStore({ url: database().url })),
    );
    opened.push(...stores);
    const versions = await database().query<{ version: number }>(
      'SELECT version FROM fleetvisor_schema_version ORDER BY version',
    );
    expect(versions.map((v) => v.version)).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
    // All four write to the same tables.
    await Promise.all(stores.map((s, i) => s.upsertDevice({ id: `d${i}`, kind: 'generic', name: `D${i}` })));
    expect((await stores[0]!.listDevices()).length).toBe(4);
  });

  it('keeps times as epoch milliseconds (bigint), beyond 32 bits', async () => {
    await database().reset();
    const at = 8_640_000_000_000_000; // the largest Date
    const store = await openPostgresStore({ url: database().url, now: () => at });
    opened.push(store);
    const saved = await store.upsertDevice({ id: 'd1', kind: 'generic', name: 'D1' });
    expect(saved).toMatchObject({ ok: true, value: { createdAt: at, updatedAt: at } });
    const [seq] = await store.appendEvents([{ at, kind: 'k', data: null }]);
    expect((await store.queryEvents({ limit: 1 })).items[0]).toEqual({
      ok: true,
      value: { seq, at, kind: 'k', data: null },
    });
  });

  it('orders ids by their bytes, as SQLite does, whatever the database locale', async () => {
    await database().reset();
    const store = await openPostgresStore({ url: database().url });
    opened.push(store);
    for (const id of ['b', 'B', 'a', 'A', '_x', 'é'])
      await store.upsertDevice({ id, kind: 'generic', name: id });
    const ids = (await store.listDevices()).map((d) => (d.ok ? d.value.id : d.id));
    expect(ids).toEqual(['A', 'B', '_x', 'a', 'b', 'é']);
  });

  it('refuses a URL that is not postgres:// (invalidArgument) and an unreachable server (openFailed)', async () => {
    await expect(openPostgresStore({ url: 'mysql://x@y/z' })).rejects.toMatchObject({
      code: 'invalidArgument',
      field: 'url',
    });
    const error = await openPostgresStore({ url: 'postgres://nobody:secret@127.0.0.1:1/none' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'openFailed' });
    // The password never reaches a message.
    expect((error as Error).message).not.toContain('secret');
    expect(redactPostgresUrl('postgres://u:pw@h/db')).toBe('postgres://u:***@h/db');
  });
});
