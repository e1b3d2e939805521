/**
 * The PostgreSQL schema of the {@link Store} as ordered, versioned migrations, and {@link migratePostgres}
 * which applies the missing ones at start. The applied versions are rows of `fleetvisor_schema_version`
 * (its own name, so a database shared with other applications has no clash); a database whose
 * version is above ours is refused (`databaseTooNew`) rather than guessed at.
 *
 * Several instances may start on one database at once: each step runs in its own transaction that
 * first takes a transaction-scoped advisory lock and re-reads the version under it, so a step is
 * applied once and the others wait for it, then find nothing left to do.
 *
 * Only the Store's tables are here: the firmware images, jobs and rollouts and the alarms stay in
 * the SQLite file of the data folder for now (README, "Running on PostgreSQL").
 *
 * Columns mirror the SQLite schema (src/store/migrations.ts) so the same defensive row parsers
 * (src/store/rows.ts) read both: JSON is kept as `text`, not `jsonb`, because `jsonb` would
 * refuse or reformat what the store wrote and turn a damaged value into a failed query instead of
 * one `badRecord` row; times are `bigint` milliseconds, read back as JS numbers; ids sort by
 * `COLLATE "C"` (bytes), as SQLite's do, whatever the database's locale.
 *
 * To change the schema, append a migration with the next version; never edit a released one.
 *
 * @example
 * const { from, to } = await migratePostgres(pool, { logger });   // from 0 to 1 on a new database
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { Migration } from './migrations.js';
import { checkMigrationList } from './migrations.js';
import { messageOf } from './records.js';
import { StoreError } from './store.js';

/** Held (transaction-scoped) while a migration step runs: 'FLTV' as a 32-bit key, then 1. */
export const MIGRATION_LOCK_KEY: readonly [number, number] = [0x464c5456, 1];

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'devices, snapshots, telemetry, events, commands',
    sql: `
      CREATE TABLE devices (
        id          text COLLATE "C" PRIMARY KEY,
        kind        text NOT NULL,
        name        text NOT NULL,
        tags        text NOT NULL DEFAULT '[]',  -- JSON array of strings
        attributes  text NOT NULL DEFAULT '{}',  -- JSON object
        spec        text NOT NULL DEFAULT '{}',  -- JSON object: desired
        status      text NOT NULL DEFAULT '{}',  -- JSON object: reported
        created_at  bigint NOT NULL,
        updated_at  bigint NOT NULL
      );
      CREATE INDEX devices_by_kind ON devices (kind);

      CREATE TABLE snapshots (
        device_id   text COLLATE "C" PRIMARY KEY,
        kind        text NOT NULL,
        snapshot    text NOT NULL,               -- JSON
        deadlines   text NOT NULL DEFAULT '[]',  -- JSON [{label, wallDeadlineMs, delayMs}]
        version     bigint NOT NULL,
        updated_at  bigint NOT NULL
      );

      -- One metric of one device; points carry its small id instead of two strings.
      CREATE TABLE telemetry_series (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device_id   text COLLATE "C" NOT NULL,
        metric      text COLLATE "C" NOT NULL,
        UNIQUE (device_id, metric)
      );

      CREATE TABLE telemetry (
        series_id   bigint NOT NULL,
        received_at bigint NOT NULL,
        device_ts   bigint,
        value       double precision NOT NULL,
        boot        bigint,
        seq         bigint
      );
      CREATE INDEX telemetry_by_series_time ON telemetry (series_id, received_at);
      -- docs/protocol.md: at most once per (device, metric via the series, boot, seq).
      CREATE UNIQUE INDEX telemetry_once ON telemetry (series_id, boot, seq) WHERE seq IS NOT NULL;

      CREATE TABLE events (
        seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused
        at          bigint NOT NULL,
        device_id   text,
        kind        text NOT NULL,
        data        text NOT NULL                                   -- JSON
      );
      CREATE INDEX events_by_device ON events (device_id, seq) WHERE device_id IS NOT NULL;
      CREATE INDEX events_by_kind ON events (kind, seq);
      CREATE INDEX events_by_time ON events (at);

      CREATE TABLE commands (
        seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        command_id   text NOT NULL UNIQUE,
        device_id    text NOT NULL,
        action       text NOT NULL,
        args         text NOT NULL,   -- JSON
        actor        text NOT NULL,
        status       text NOT NULL,
        result       text,            -- JSON
        error        text,            -- JSON {code, message}
        requested_at bigint NOT NULL,
        completed_at bigint,
        expires_at   bigint           -- ms since epoch; NULL: never expires
      );
      CREATE INDEX commands_by_device ON commands (device_id, seq);
      CREATE INDEX commands_by_status ON commands (status, seq);
      CREATE INDEX commands_by_time ON commands (requested_at);
    `,
  },
  {
    version: 2,
    name: 'cluster: shard count, instances, shard leases',
    // docs/scale-out.md. Lease times are the database's clock (timestamptz), never an instance's.
    sql: `
      CREATE TABLE fleetvisor_cluster (
        id           smallint PRIMARY KEY CHECK (id = 1),
        shard_count  integer NOT NULL CHECK (shard_count > 0),
        created_at   timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE fleetvisor_instances (
        id          text COLLATE "C" PRIMARY KEY,
        host        text NOT NULL,
        pid         integer NOT NULL,
        api_url     text,
        started_at  timestamptz NOT NULL,
        seen_at     timestamptz NOT NULL,
        left_at     timestamptz                 -- a graceful stop; NULL while running (or dead)
      );

      -- One row per shard, created with the cluster row. epoch grows by one at every claim: it is
      -- the fencing token every write of the shard's devices checks (src/store/postgres-store.ts).
      CREATE TABLE fleetvisor_leases (
        shard        integer PRIMARY KEY,
        owner        text COLLATE "C",
        epoch        bigint NOT NULL DEFAULT 0,
        expires_at   timestamptz NOT NULL DEFAULT '-infinity',
        acquired_at  timestamptz
      );
      CREATE INDEX fleetvisor_leases_by_owner ON fleetvisor_leases (owner);
    `,
  },
  {
    version: 3,
    name: 'cluster: actions routed to the owner of the device',
    // src/cluster/command-router.ts. One row per action asked on an instance that does not own
    // the device; the owner claims it (pending → running, once), carries it out and writes its
    // answer. Times are the database's clock.
    sql: `
      CREATE TABLE fleetvisor_routed_actions (
        id            text COLLATE "C" PRIMARY KEY,            -- a UUID chosen by the requester
        device_id     text COLLATE "C" NOT NULL,
        shard         integer NOT NULL,
        action        text NOT NULL,
        args          text NOT NULL,                           -- JSON
        actor         text NOT NULL,
        requested_by  text COLLATE "C" NOT NULL,               -- the instance waiting for the answer
        target        text COLLATE "C" NOT NULL,               -- the owner when it was asked
        requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        expires_at    timestamptz NOT NULL,                    -- not claimed after this
        status        text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'done', 'failed')),
        claimed_by    text COLLATE "C",
        claimed_at    timestamptz,
        result        text,                                    -- JSON: the reply, or why it failed
        answered_at   timestamptz
      );
      CREATE INDEX fleetvisor_routed_actions_pending ON fleetvisor_routed_actions (shard, requested_at)
        WHERE status = 'pending';
      CREATE INDEX fleetvisor_routed_actions_by_time ON fleetvisor_routed_actions (requested_at);
    `,
  },
  {
    version: 4,
    name: 'device events at most once per (device, boot, seq)',
    // As SQLite's version 8: the device's own boot and seq of a protocol `event` message, NULL for
    // every other event; the partial unique index is the dedupe key (ON CONFLICT DO NOTHING).
    sql: `
      ALTER TABLE events ADD COLUMN device_boot bigint, ADD COLUMN device_seq bigint;
      CREATE UNIQUE INDEX events_once ON events (device_id, device_boot, device_seq)
        WHERE device_seq IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'bulk adoption jobs',
    // As SQLite's version 9 (src/store/adopt-jobs.ts): the small progress row, and the ids apart.
    sql: `
      CREATE TABLE adopt_jobs (
        id            text COLLATE "C" PRIMARY KEY,
        owner         text COLLATE "C" NOT NULL,  -- 'local', or a cluster instance's id
        selection     text NOT NULL,              -- JSON object: what was asked
        started_by    text NOT NULL,
        started_at    bigint NOT NULL,
        total         bigint NOT NULL,
        state         text NOT NULL,              -- running | finished | cancelled
        done          bigint NOT NULL,            -- the ids [0, done) had their turn
        adopted       bigint NOT NULL,
        failed        bigint NOT NULL,
        skipped       bigint NOT NULL,
        failures      text NOT NULL,              -- JSON [{code, count, message, ids}]
        cancelled_by  text,
        finished_at   bigint,
        updated_at    bigint NOT NULL
      );
      CREATE INDEX adopt_jobs_by_owner ON adopt_jobs (owner, started_at);
      CREATE TABLE adopt_job_ids (
        job_id  text COLLATE "C" PRIMARY KEY,
        ids     text NOT NULL                     -- JSON array of device ids, in the job's order
      );
    `,
  },
  {
    version: 6,
    name: "cluster: each instance's change-feed figures, written with its heartbeat",
    // src/cluster/feed-figures.ts: counts and a relative age (never a clock reading), for the
    // cluster view of every instance. NULL until the instance's first heartbeat that writes them.
    sql: `
      ALTER TABLE fleetvisor_instances ADD COLUMN feed jsonb;
    `,
  },
  {
    version: 7,
    name: 'cluster: leader leases (the Sparkplug Primary Host role)',
    // src/cluster/leadership.ts: one row per named role, leased as a shard is (the database's
    // clock; epoch grows by one at every claim and fences the holder's acts).
    sql: `
      CREATE TABLE fleetvisor_leaders (
        name         text COLLATE "C" PRIMARY KEY,
        owner        text COLLATE "C",
        epoch        bigint NOT NULL DEFAULT 0,
        expires_at   timestamptz NOT NULL DEFAULT '-infinity',
        acquired_at  timestamptz
      );
    `,
  },
  {
    version: 8,
    name: 'cluster: devices pinned to the instance that has their serial port',
    // src/cluster/pins.ts: a device heard on an instance's serial port is that instance's, whatever
    // its shard; the pin is leased as a shard is (renewed with the instance's leases, void once
    // expired) and its epoch, bumped at every pin, fences the pinned instance's writes.
    sql: `
      CREATE TABLE fleetvisor_pins (
        device_id    text COLLATE "C" PRIMARY KEY,
        owner        text COLLATE "C" NOT NULL,
        epoch        bigint NOT NULL,
        expires_at   timestamptz NOT NULL,
        pinned_at    timestamptz NOT NULL
      );
      CREATE INDEX fleetvisor_pins_owner ON fleetvisor_pins (owner);
    `,
  },
  {
    version: 9,
    name: 'cluster: firmware images shared with the instance that runs the device',
    // src/cluster/shared-images.ts: an update asked on one instance of a device another runs puts
    // the image here (its signed manifest as imported, its bytes); the owner imports it from here
    // under its own trust list. Content-addressed: a row never changes.
    sql: `
      CREATE TABLE fleetvisor_firmware_images (
        sha256       text COLLATE "C" PRIMARY KEY,
        manifest     text NOT NULL,
        image        bytea NOT NULL,
        shared_by    text NOT NULL,
        shared_at    timestamptz NOT NULL DEFAULT clock_timestamp()
      );
    `,
  },
  {
    version: 10,
    name: "cluster: a pin lives as long as its instance's pin session",
    // src/cluster/pins.ts: renewing every pin row at every renewal cost the database 72 ms every
    // 2 s per instance at 10,000 pins, 429 ms at 50,000 (test/bench/pins.bench.ts). A pin now
    // names its instance's session (one row per instance, renewed as one); it is live while that
    // session is. A session that ran out is never renewed: the instance starts a new one, and every
    // pin of the old one stays void, as an expired pin did. The old pins are dropped here: each is
    // taken again at its device's next hello, birth or renewal (declared devices).
    sql: `
      CREATE TABLE fleetvisor_pin_sessions (
        owner        text COLLATE "C" PRIMARY KEY,
        session      bigint NOT NULL,
        expires_at   timestamptz NOT NULL
      );
      DELETE FROM fleetvisor_pins;
      ALTER TABLE fleetvisor_pins DROP COLUMN expires_at;
      ALTER TABLE fleetvisor_pins ADD COLUMN session bigint NOT NULL;
      CREATE VIEW fleetvisor_live_pins AS
        SELECT p.device_id, p.owner, p.epoch, p.session, p.pinned_at
        FROM fleetvisor_pins p
        JOIN fleetvisor_pin_sessions s ON s.owner = p.owner AND s.session = p.session
        WHERE s.expires_at > clock_timestamp();
    `,
  },
  {
    version: 11,
    name: "cluster: the devices' broker accounts shared by every instance",
    // src/cluster/shared-accounts.ts: each instance keeps its data folder's accounts file and
    // merges it with this table (the newest change of each account wins), so whichever instance
    // runs a device knows its account: rotated, revoked, or adopted elsewhere. Secrets only as
    // the file holds them, hashed. `version` grows at every write: a reader asks only for what
    // changed since its last read.
    sql: `
      CREATE SEQUENCE fleetvisor_broker_accounts_version;
      CREATE TABLE fleetvisor_broker_accounts (
        device_id    text COLLATE "C" PRIMARY KEY,
        record       text NOT NULL,
        changed_at   bigint NOT NULL,
        changed_by   text NOT NULL,
        version      bigint NOT NULL DEFAULT nextval('fleetvisor_broker_accounts_version')
      );
      CREATE INDEX fleetvisor_broker_accounts_by_version ON fleetvisor_broker_accounts (version);
    `,
  },
  {
    version: 12,
    name: 'cluster: a shared image says it was imported as a downgrade',
    // src/cluster/shared-images.ts: an operator who imported an older image explicitly
    // (--allow-downgrade) on one instance and updates a device another instance runs: that owner
    // imports it as a downgrade too (audited there), where it used to refuse it as one.
    sql: `
      ALTER TABLE fleetvisor_firmware_images ADD COLUMN allow_downgrade boolean NOT NULL DEFAULT false;
    `,
  },
  {
    version: 13,
    name: "cluster: every instance's rollouts, for every UI and for a take-over",
    // src/cluster/shared-rollouts.ts: a rollout runs on the instance its row names and is saved
    // in that instance's data folder; the instance also writes it here (its snapshot, policy and
    // creator), so the Rollouts view of any instance lists it, and another instance takes it over
    // when that one is gone (a claim changes `instance`; a write changes only a row naming the
    // writer).
    sql: `
      CREATE TABLE fleetvisor_rollouts (
        id           text COLLATE "C" PRIMARY KEY,
        instance     text NOT NULL,
        state        text NOT NULL,
        body         text NOT NULL,
        saved_at     timestamptz NOT NULL DEFAULT clock_timestamp()
      );
    `,
  },
];

/** The PostgreSQL schema version this app writes and understands. */
export const POSTGRES_SCHEMA_VERSION: number =
  POSTGRES_MIGRATIONS[POSTGRES_MIGRATIONS.length - 1]?.version ?? 0;

export interface PostgresMigrateOptions {
  /** Defaults to {@link POSTGRES_MIGRATIONS}; tests pass their own list. */
  readonly migrations?: readonly Migration[];
  readonly logger?: Logger;
  /** Names the database in messages (the URL without its password). */
  readonly label?: string;
}

/**
 * Brings the database behind `pool` up to the newest migration.
 *
 * Throws {@link StoreError}: `databaseTooNew` (naming both versions), `openFailed` (cannot read the
 * version), `migrationFailed` (naming the step; the database stays at the previous version).
 */
export async function migratePostgres(
  pool: pg.Pool,
  options: PostgresMigrateOptions = {},
): Promise<{ readonly from: number; readonly to: number }> {
  const migrations = options.migrations ?? POSTGRES_MIGRATIONS;
  checkMigrationList(migrations);
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  const label = options.label ?? 'the PostgreSQL database';

  let from: number | undefined;
  for (;;) {
    const client = await pool.connect();
    let current: number;
    try {
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...MIGRATION_LOCK_KEY]);
        await client.query(
          `CREATE TABLE IF NOT EXISTS fleetvisor_schema_version (
             version     integer PRIMARY KEY,
             name        text NOT NULL,
             applied_at  bigint NOT NULL
           )`,
        );
        const row = await client.query<{ version: number | null }>(
          'SELECT max(version) AS version FROM fleetvisor_schema_version',
        );
        current = row.rows[0]?.version ?? 0;
      } catch (cause) {
        await client.query('ROLLBACK').catch(() => {});
        throw new StoreError(
          'openFailed',
          `cannot read the schema version of ${label}: ${messageOf(cause)}`,
          {
            cause,
          },
        );
      }
      from ??= current;
      if (current > latest) {
        await client.query('ROLLBACK');
        throw new StoreError(
          'databaseTooNew',
          `The database ${label} has schema version ${current}, but this Fleetvisor understands schema versions ` +
            `up to ${latest}. It was written by a newer Fleetvisor: update Fleetvisor, or give --store another database.`,
        );
      }
      const next = migrations.find((m) => m.version === current + 1);
      if (next === undefined) {
        await client.query('COMMIT');
        if (current !== from) options.logger?.info('store migrated', { database: label, from, to: current });
        return { from, to: current };
      }
      try {
        await client.query(next.sql);
        await client.query(
          'INSERT INTO fleetvisor_schema_version (version, name, applied_at) VALUES ($1, $2, $3)',
          [next.version, next.name, Date.now()],
        );
        await client.query('COMMIT');
      } catch (cause) {
        await client.query('ROLLBACK').catch(() => {});
        throw new StoreError(
          'migrationFailed',
          `migration ${next.version} (${next.name}) of ${label} failed: ${messageOf(cause)}; ` +
            `the database stays at schema version ${current}`,
          { cause },
        );
      }
      options.logger?.debug('store migration applied', {
        database: label,
        version: next.version,
        name: next.name,
      });
    } finally {
      client.release();
    }
  }
}
