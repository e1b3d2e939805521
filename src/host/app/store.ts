/**
 * The app's store: SQLite in the data folder (the demo's own file in demo mode), or PostgreSQL
 * when `storeUrl` is given; and the retention that trims its history.
 *
 * @example
 * const { file, store } = await openAppStore(setup, demo);
 * startRetention(setup, store);
 */
import { join } from 'node:path';
import { DATABASE_FILE_NAME } from '../../store/data-dir.js';
import type { PostgresStore } from '../../store/postgres-store.js';
import { openPostgresStore } from '../../store/postgres-store.js';
import type { ExportReader } from '../../store/sqlite-export.js';
import { openSqliteStore } from '../../store/sqlite-store.js';
import type { Store } from '../../store/store.js';
import { createRetention } from '../retention.js';
import type { AppSetup } from './setup.js';

/** The demo's own database, so demo devices never mix with a real fleet. */
export const DEMO_DATABASE_FILE_NAME = 'demo.sqlite';

export interface AppStore {
  /** The SQLite file: the fleet's store unless on PostgreSQL; firmware and alarms live in it either way. */
  readonly file: string;
  readonly store: Store;
  readonly exports: ExportReader | undefined;
  /** Set when the store is on PostgreSQL, for the cluster's fence. */
  readonly postgresStore: PostgresStore | undefined;
}

/** Throws when a cluster is asked for without PostgreSQL, or when the store cannot open. */
export async function openAppStore(setup: AppSetup, demo: boolean): Promise<AppStore> {
  const { options, log, stops } = setup;
  // The SQLite file holds the fleet's store unless storeUrl names a PostgreSQL database; the
  // firmware images, jobs and rollouts and the alarms stay in it either way (README).
  const file = join(options.dataDir, demo ? DEMO_DATABASE_FILE_NAME : DATABASE_FILE_NAME);
  let store: Store;
  let exports: ExportReader | undefined;
  let postgresStore: PostgresStore | undefined;
  if (options.cluster && options.storeUrl === undefined)
    throw new Error('a cluster instance needs its store on PostgreSQL (storeUrl)');
  if (options.storeUrl === undefined) {
    const sqlite = await openSqliteStore({ file, logger: log });
    store = sqlite;
    exports = sqlite.exports;
  } else {
    const postgres = await openPostgresStore({
      url: options.storeUrl,
      logger: log,
      // A paused instance must not hold its lease rows locked past half a lease (docs/scale-out.md).
      ...(options.cluster
        ? { idleInTransactionTimeoutMs: Math.floor((options.cluster.leaseMs ?? 6000) / 2) }
        : {}),
    });
    store = postgres;
    postgresStore = postgres;
    log.info('store on PostgreSQL', { database: postgres.database });
    if (demo)
      log.warn('the simulated demo fleet writes into this PostgreSQL database (--no-demo to keep it out)');
  }
  stops.push(() => store.close());
  log.info('data', { file });
  return { file, store, exports, postgresStore };
}

/** Telemetry, events and finished commands older than the options' days are deleted, on a timer. */
export function startRetention(setup: AppSetup, store: Store): void {
  const retention = createRetention({ runtime: setup.runtime, store, days: setup.options.retention ?? {} });
  retention.start();
  setup.stops.push(async () => retention.stop());
}
