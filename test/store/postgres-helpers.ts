/**
 * A PostgreSQL database per test file: {@link createTestDatabase} makes `fv_test_<random>` on the
 * server at {@link adminUrl} (127.0.0.1:5432 as postgres, trust auth, or FLEETVISOR_TEST_PG_URL)
 * and `drop()` removes it (`WITH (FORCE)`). When the server cannot be reached it tries to start the
 * machine's cluster (`pg_ctlcluster --skip-systemctl-redirect <version> main start`, else `service postgresql start`) and
 * fails with a clear message if it still cannot connect: the PostgreSQL suite never skips itself.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import pg from 'pg';

export const ADMIN_URL_ENV = 'FLEETVISOR_TEST_PG_URL';

/** The maintenance database's URL: where test databases are created from. */
export function adminUrl(): string {
  return process.env[ADMIN_URL_ENV] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** `url` pointing at database `name` instead. */
export function urlOfDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

const INT8_OID = 20;
/** The store's own parsing: bigint as a number. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (text: string) => Number(text)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

async function tryConnect(url: string): Promise<Error | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    await client.end().catch(() => {});
  }
}

/** Starts the local cluster the Debian way; returns what it tried. */
function startLocalPostgres(): string[] {
  const tried: string[] = [];
  const versions = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').sort().reverse()
    : [];
  const attempts: [string, string[]][] = [
    // --skip-systemctl-redirect: where systemd does not run (containers, CI), start it directly.
    ...versions.map((v): [string, string[]] => [
      'pg_ctlcluster',
      ['--skip-systemctl-redirect', v, 'main', 'start'],
    ]),
    ['service', ['postgresql', 'start']],
  ];
  for (const [command, args] of attempts) {
    tried.push(`${command} ${args.join(' ')}`);
    try {
      execFileSync(command, args, { stdio: 'pipe', timeout: 30_000 });
      return tried;
    } catch {
      // The next way, if any.
    }
  }
  return tried;
}

let reachable: Promise<void> | undefined;

/** Resolves once the admin URL answers; starts the local server if needed; else rejects, saying why. */
export function ensurePostgres(): Promise<void> {
  reachable ??= (async () => {
    const url = adminUrl();
    let error = await tryConnect(url);
    if (error === undefined) return;
    const tried = startLocalPostgres();
    for (let i = 0; i < 20 && error !== undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      error = await tryConnect(url);
    }
    if (error !== undefined)
      throw new Error(
        `PostgreSQL is needed for the PostgreSQL store tests and is not reachable at ${url} (${error.message}). ` +
          `Tried to start it: ${tried.join('; ') || 'nothing to try'}. Install and start PostgreSQL ` +
          `(Debian: apt-get install postgresql; trust auth for 127.0.0.1), or set ${ADMIN_URL_ENV} to a ` +
          'superuser URL of a server that is.',
      );
  })();
  return reachable;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Runs SQL on the test database through a connection of its own (behind the store's back). */
  query<T extends pg.QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Empties the database: drops and recreates its public schema. */
  reset(): Promise<void>;
  drop(): Promise<void>;
}

/** Creates `fv_test_<random>` (see the module doc). */
export async function createTestDatabase(): Promise<TestDatabase> {
  await ensurePostgres();
  const admin = adminUrl();
  const name = `fv_test_${randomBytes(6).toString('hex')}`;
  await withClient(admin, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = urlOfDatabase(admin, name);
  const client = new pg.Client({ connectionString: url, types: TYPES });
  await client.connect();
  return {
    name,
    url,
    async query<T extends pg.QueryResultRow>(sql: string, params: readonly unknown[] = []) {
      return (await client.query<T>(sql, [...params])).rows;
    },
    async reset() {
      await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    },
    async drop() {
      await client.end().catch(() => {});
      await withClient(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}
