/**
 * The Store contract suite: every engine-neutral store test, written once against a
 * {@link StoreEngine} and registered by `defineStoreContract(engine)` from one test file per engine
 * (test/store/sqlite-store.test.ts, test/store/postgres-store.test.ts). Engine-specific tests
 * (the SQLite file's modes, WAL, kill -9, export; PostgreSQL's concurrent migrations) stay in
 * those files.
 *
 * The engine hooks reach the database behind the store's back, as an operator or a damaged disk
 * would: `all`/`exec` run SQL that both engines read the same way (the tables and columns are the
 * same; JSON is text on both), and the two hooks whose SQL differs are methods of their own.
 */
import type { Logger } from '../../src/runtime/runtime.js';
import type { Store } from '../../src/store/store.js';
import { defineAdoptJobsContract } from './contract-adopt-jobs.js';
import { defineAtMostOnceContract } from './contract-at-most-once.js';
import { defineEventsAtMostOnceContract } from './contract-at-most-once-events.js';
import { defineBackpressureContract } from './contract-backpressure.js';
import { defineBadDataContract } from './contract-bad-data.js';
import { defineCoreContract } from './contract-core.js';
import { defineLatestTelemetryContract } from './contract-latest-telemetry.js';
import { defineRetentionContract } from './contract-retention.js';

/** The options every engine's opener takes, as the contract uses them. */
export interface ContractStoreOptions {
  readonly logger?: Logger;
  readonly now?: () => number;
  readonly telemetryFlushMs?: number;
  readonly telemetryBatchMax?: number;
  readonly telemetryBufferMax?: number;
}

export interface StoreEngine {
  /** 'SQLite', 'PostgreSQL': names the describe block. */
  readonly name: string;
  /** The schema version the engine's migrations end at. */
  readonly schemaVersion: number;
  /** Once per file, before any test (create a database, start a server). */
  setupFile?(): Promise<void>;
  teardownFile?(): Promise<void>;
  /** A fresh, empty database for the next test. */
  fresh(): Promise<void>;
  /** After the test (its stores are closed by then). */
  cleanup(): Promise<void>;
  /** Opens a store on the current test's database; again after a close, the same data. */
  open(options?: ContractStoreOptions): Promise<Store>;
  /** Runs a query on the database directly; `count(*)` and bigint columns come back as numbers. */
  all<T>(sql: string): Promise<T[]>;
  /** Runs statements on the database directly (to damage rows). */
  exec(sql: string): Promise<void>;
  /** From now on, inserting a telemetry point with this value fails with this message. */
  refuseTelemetryValue(value: number, message: string): Promise<void>;
  /** Marks the database as written by an app whose schema is at `version`. */
  setSchemaVersion(version: number): Promise<void>;
}

/** Registers the whole contract suite for `engine`. */
export function defineStoreContract(engine: StoreEngine): void {
  defineCoreContract(engine);
  defineAtMostOnceContract(engine);
  defineEventsAtMostOnceContract(engine);
  defineBackpressureContract(engine);
  defineBadDataContract(engine);
  defineRetentionContract(engine);
  defineAdoptJobsContract(engine);
  defineLatestTelemetryContract(engine);
}
