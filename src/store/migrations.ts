/**
 * The SQLite schema as ordered, versioned migrations. `PRAGMA user_version` holds the version a
 * database is at; {@link migrate} runs at start and applies the missing steps, each in its own
 * transaction, and refuses a database newer than the app (`databaseTooNew`) rather than guess at a
 * schema it does not know. `PRAGMA application_id` marks the file as Fleetvisor's, so pointing the
 * app at some other SQLite file fails clearly instead of migrating it.
 *
 * To change the schema, append a migration with the next version; never edit a released one.
 *
 * @example
 * const { from, to } = await migrate(conn, { logger });
 * // from 0 to 1 on a new file; from 1 to 1 on the next start
 */
import type { Logger } from '../runtime/runtime.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { StoreError } from './store.js';

export interface Migration {
  /** 1, 2, 3, … without gaps. */
  readonly version: number;
  readonly name: string;
  /** One or more statements; they run inside the migration's transaction. */
  readonly sql: string;
}

/** 'FLTV': written into the database header by the first migration. */
export const APPLICATION_ID = 0x464c5456;

/**
 * Tables are STRICT: a value of the wrong type is refused when written, so what reads back is at
 * worst corrupt JSON text, which the store parses defensively. JSON columns have no CHECK on
 * purpose: a CHECK costs on every write and cannot protect against a damaged file anyway.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'devices, snapshots, telemetry, events, commands',
    sql: `
      PRAGMA application_id = ${APPLICATION_ID};

      CREATE TABLE devices (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        tags        TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
        attributes  TEXT NOT NULL DEFAULT '{}',  -- JSON object
        spec        TEXT NOT NULL DEFAULT '{}',  -- JSON object: desired
        status      TEXT NOT NULL DEFAULT '{}',  -- JSON object: reported
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX devices_by_kind ON devices (kind);

      -- One row per device actor (never one deep snapshot of the tree).
      CREATE TABLE snapshots (
        device_id   TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        snapshot    TEXT NOT NULL,               -- JSON
        deadlines   TEXT NOT NULL DEFAULT '[]',  -- JSON [{label, wallDeadlineMs, delayMs}]
        version     INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;

      -- A series is one metric of one device: points carry its small integer id, which keeps the
      -- table and its index about half the size of repeating two strings on every point.
      CREATE TABLE telemetry_series (
        id          INTEGER PRIMARY KEY,
        device_id   TEXT NOT NULL,
        metric      TEXT NOT NULL,
        UNIQUE (device_id, metric)
      ) STRICT;

      CREATE TABLE telemetry (
        series_id   INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        device_ts   INTEGER,
        value       REAL NOT NULL
      ) STRICT;
      -- (device, metric, received_at) through the series id: range queries and per-series pruning.
      CREATE INDEX telemetry_by_series_time ON telemetry (series_id, received_at);

      CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after a delete
        at          INTEGER NOT NULL,
        device_id   TEXT,
        kind        TEXT NOT NULL,
        data        TEXT NOT NULL                       -- JSON
      ) STRICT;
      CREATE INDEX events_by_device ON events (device_id, seq) WHERE device_id IS NOT NULL;
      CREATE INDEX events_by_kind ON events (kind, seq);
      CREATE INDEX events_by_time ON events (at);

      CREATE TABLE commands (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        command_id   TEXT NOT NULL UNIQUE,
        device_id    TEXT NOT NULL,
        action       TEXT NOT NULL,
        args         TEXT NOT NULL,   -- JSON
        actor        TEXT NOT NULL,
        status       TEXT NOT NULL,
        result       TEXT,            -- JSON
        error        TEXT,            -- JSON {code, message}
        requested_at INTEGER NOT NULL,
        completed_at INTEGER
      ) STRICT;
      CREATE INDEX commands_by_device ON commands (device_id, seq);
      CREATE INDEX commands_by_status ON commands (status, seq);
      CREATE INDEX commands_by_time ON commands (requested_at);
    `,
  },
  {
    version: 2,
    name: 'command expiry',
    sql: `
      ALTER TABLE commands ADD COLUMN expires_at INTEGER;  -- ms since epoch; NULL: never expires
    `,
  },
  {
    version: 3,
    name: 'telemetry at most once per (device, boot, seq)',
    // docs/protocol.md: telemetry is stored at most once per device, boot and seq. The series id
    // stands for (device, metric), so a message's points (one per metric) each get their own key.
    // Partial: points of conventions without boot/seq (NULL) take no room in the index.
    sql: `
      ALTER TABLE telemetry ADD COLUMN boot INTEGER;
      ALTER TABLE telemetry ADD COLUMN seq INTEGER;
      CREATE UNIQUE INDEX telemetry_once ON telemetry (series_id, boot, seq) WHERE seq IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'firmware images',
    // docs/firmware.md: the bytes live in the data folder under their SHA-256; these rows describe
    // them. One row per (kind, version) makes "the same version with other bytes" impossible even
    // for two imports racing; refs are what else holds an image (update jobs, rollouts).
    sql: `
      CREATE TABLE firmware_images (
        sha256            TEXT PRIMARY KEY,
        version           TEXT NOT NULL,
        hardware_revision TEXT,
        size              INTEGER NOT NULL,
        key_id            TEXT NOT NULL,
        manifest          TEXT NOT NULL,  -- JSON: the signed manifest as imported
        imported_at       INTEGER NOT NULL,
        imported_by       TEXT NOT NULL,
        downgrade_from    TEXT            -- set when imported as an explicit downgrade
      ) STRICT;

      CREATE TABLE firmware_image_kinds (
        kind     TEXT NOT NULL,
        version  TEXT NOT NULL,
        sha256   TEXT NOT NULL REFERENCES firmware_images (sha256),
        PRIMARY KEY (kind, version)
      ) STRICT;
      CREATE INDEX firmware_image_kinds_by_image ON firmware_image_kinds (sha256);

      CREATE TABLE firmware_image_refs (
        sha256     TEXT NOT NULL REFERENCES firmware_images (sha256),
        holder     TEXT NOT NULL,  -- e.g. job:<id>, rollout:<id>
        created_at INTEGER NOT NULL,
        PRIMARY KEY (sha256, holder)
      ) STRICT;
    `,
  },
  {
    version: 5,
    name: 'firmware update jobs',
    // docs/firmware.md §7: a device's current or last update job, written at every step, so an
    // app restarted (or killed) mid-update continues each job at its step. The image it holds is
    // referenced as job:<device id> while the job runs.
    sql: `
      CREATE TABLE firmware_jobs (
        device_id   TEXT PRIMARY KEY,
        sha256      TEXT NOT NULL,
        transfer_id TEXT NOT NULL,
        version     TEXT NOT NULL,
        step        TEXT NOT NULL,
        offset      INTEGER NOT NULL,
        boot        INTEGER,          -- the device's boot before the image was applied
        deadline    INTEGER,          -- wall ms by which the current step must end
        error       TEXT,             -- JSON { step, code, message }
        actor       TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 6,
    name: 'firmware rollouts',
    // docs/firmware.md §8: a rollout written at every change (its frozen device list, each
    // device's state, its policy), so a restarted app continues it where it was, paused or not.
    sql: `
      CREATE TABLE firmware_rollouts (
        id          TEXT PRIMARY KEY,
        sha256      TEXT NOT NULL,
        version     TEXT NOT NULL,
        state       TEXT NOT NULL,
        body        TEXT NOT NULL,  -- JSON: the rollout's snapshot and policy
        actor       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 7,
    name: 'alarms',
    // Issue 15 §3 (src/alarms): the rules as validated JSON, and every alarm with who raised,
    // acknowledged, cleared and shelved it, and when. At most one open alarm per rule and device.
    sql: `
      CREATE TABLE alarm_rules (
        id          TEXT PRIMARY KEY,
        body        TEXT NOT NULL,  -- JSON: the rule (src/alarms/rules.ts)
        updated_by  TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE alarms (
        id            INTEGER PRIMARY KEY,
        rule_id       TEXT NOT NULL,
        device_id     TEXT NOT NULL,
        severity      TEXT NOT NULL,
        message       TEXT NOT NULL,
        value         REAL,
        raised_at     INTEGER NOT NULL,
        acked_at      INTEGER,
        acked_by      TEXT,
        cleared_at    INTEGER,
        cleared_by    TEXT,
        shelved_until INTEGER,
        shelved_by    TEXT
      ) STRICT;
      CREATE UNIQUE INDEX alarms_open ON alarms (rule_id, device_id) WHERE cleared_at IS NULL;
      CREATE INDEX alarms_device ON alarms (device_id, id);
    `,
  },
  {
    version: 8,
    name: 'device events at most once per (device, boot, seq)',
    // docs/protocol.md §8, issue 12 §5: a device's `event` message is logged at most once, as its
    // telemetry is (version 3). The device's own boot and seq, named apart from the log's seq;
    // NULL for every other event (the host's, lifecycle, audit), which the partial index skips.
    sql: `
      ALTER TABLE events ADD COLUMN device_boot INTEGER;
      ALTER TABLE events ADD COLUMN device_seq INTEGER;
      CREATE UNIQUE INDEX events_once ON events (device_id, device_boot, device_seq)
        WHERE device_seq IS NOT NULL;
    `,
  },
  {
    version: 9,
    name: 'bulk adoption jobs',
    // src/store/adopt-jobs.ts (issue 13): the host's bulk adoption survives a restart. The progress
    // row is rewritten after every batch; the ids (up to 10,000 and more) are written once, in a
    // table of their own, so that rewrite stays small. One job per owner is kept.
    sql: `
      CREATE TABLE adopt_jobs (
        id            TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,     -- 'local', or a cluster instance's id
        selection     TEXT NOT NULL,     -- JSON object: what was asked
        started_by    TEXT NOT NULL,
        started_at    INTEGER NOT NULL,
        total         INTEGER NOT NULL,
        state         TEXT NOT NULL,     -- running | finished | cancelled
        done          INTEGER NOT NULL,  -- the ids [0, done) had their turn
        adopted       INTEGER NOT NULL,
        failed        INTEGER NOT NULL,
        skipped       INTEGER NOT NULL,
        failures      TEXT NOT NULL,     -- JSON [{code, count, message, ids}]
        cancelled_by  TEXT,
        finished_at   INTEGER,
        updated_at    INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX adopt_jobs_by_owner ON adopt_jobs (owner, started_at);
      CREATE TABLE adopt_job_ids (
        job_id  TEXT PRIMARY KEY,
        ids     TEXT NOT NULL              -- JSON array of device ids, in the job's order
      ) STRICT;
    `,
  },
  {
    version: 10,
    name: 'firmware job settings',
    // Issue 14: a job's trial and telemetry checks, so a restarted app continues a single update
    // with its own (a rollout's job also had its rollout's checks). NULL: a row written before
    // this version, whose job takes its image's trial again.
    sql: `
      ALTER TABLE firmware_jobs ADD COLUMN settings TEXT;  -- JSON { trialMs?, trialChecks? }
    `,
  },
];

/** The schema version this app writes and understands. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

export interface MigrateOptions {
  /** Defaults to {@link MIGRATIONS}; tests pass their own list. */
  readonly migrations?: readonly Migration[];
  readonly logger?: Logger;
}

export interface MigrateResult {
  /** The version the database was at. */
  readonly from: number;
  /** The version it is at now. */
  readonly to: number;
}

/**
 * Brings the database on `conn` (a writer) up to the newest migration. Each step re-reads the
 * version inside `BEGIN IMMEDIATE`, so two processes starting at once cannot apply a step twice.
 *
 * Throws {@link StoreError}: `databaseTooNew` (naming both versions), `openFailed` (not a Fleetvisor
 * database), `migrationFailed` (naming the step; the database stays at the previous version).
 */
export async function migrate(conn: SqliteConnection, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = options.migrations ?? MIGRATIONS;
  checkMigrationList(migrations);
  const latest = migrations[migrations.length - 1]?.version ?? 0;

  const applicationId =
    (await conn.get<{ application_id: number }>('PRAGMA application_id'))?.application_id ?? 0;
  if (applicationId !== 0 && applicationId !== APPLICATION_ID)
    throw new StoreError(
      'openFailed',
      `${conn.file} is an SQLite database of another application (application_id ${applicationId}), not Fleetvisor's`,
    );

  let from: number | undefined;
  for (;;) {
    await conn.exec('BEGIN IMMEDIATE');
    let current: number;
    try {
      current = (await conn.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
    } catch (cause) {
      await rollback(conn);
      throw new StoreError('openFailed', `cannot read the schema version of ${conn.file}`, { cause });
    }
    from ??= current;
    if (current > latest) {
      await rollback(conn);
      throw new StoreError(
        'databaseTooNew',
        `The database ${conn.file} has schema version ${current}, but this Fleetvisor understands schema versions ` +
          `up to ${latest}. It was written by a newer Fleetvisor: update Fleetvisor, or start it with another ` +
          'data folder (--data-dir or FLEETVISOR_DATA_DIR).',
      );
    }
    const next = migrations.find((m) => m.version === current + 1);
    if (next === undefined) {
      await conn.exec('COMMIT');
      if (current !== from) options.logger?.info('store migrated', { file: conn.file, from, to: current });
      return { from, to: current };
    }
    try {
      await conn.exec(next.sql);
      await conn.exec(`PRAGMA user_version = ${next.version}`);
      await conn.exec('COMMIT');
    } catch (cause) {
      await rollback(conn);
      throw new StoreError(
        'migrationFailed',
        `migration ${next.version} (${next.name}) of ${conn.file} failed: ${(cause as Error).message}; ` +
          `the database stays at schema version ${current}`,
        { cause },
      );
    }
    options.logger?.debug('store migration applied', {
      file: conn.file,
      version: next.version,
      name: next.name,
    });
  }
}

/** Misuse guard, for both engines' lists: versions must run 1, 2, 3, … in order. */
export function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new StoreError(
        'invalidArgument',
        `migrations[${i}].version must be ${i + 1}, found ${m.version}`,
        {
          field: `migrations[${i}].version`,
        },
      );
  });
}

async function rollback(conn: SqliteConnection): Promise<void> {
  try {
    await conn.exec('ROLLBACK');
  } catch {
    // Nothing to roll back: SQLite already ended the transaction on the error.
  }
}
