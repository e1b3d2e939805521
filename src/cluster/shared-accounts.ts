/**
 * The devices' broker accounts shared by every instance of a cluster (docs/scale-out.md, "Broker
 * accounts"): each instance keeps its data folder's accounts file (README, *Connecting devices*)
 * and merges it with the table `fleetvisor_broker_accounts` (PostgreSQL migration 11) every
 * `intervalMs` (2 s): the accounts changed here (through the API, a removed device, or
 * `fleetvisor broker device …` on this data folder) are written there, and those changed elsewhere
 * are taken into the file. Each account's newest change wins (the time its secret was issued or it
 * was revoked; at the same time a revocation wins, broker-accounts.ts `newerAccount`), so whichever
 * instance runs a device after a take-over knows its account: it can rotate or revoke it, and a
 * revocation made anywhere keeps the device's messages out everywhere.
 *
 * - Only what the file holds travels: secrets hashed (scrypt and Mosquitto's PBKDF2), never in
 *   clear. A new secret reaches an external Mosquitto from the instance that issued it (its
 *   handover, broker-accounts-handover.ts), as on one instance.
 * - A write never replaces a newer row (`WHERE changed_at < …` in the upsert), so two instances
 *   changing one account at once end on the same account.
 * - Reads are incremental: rows whose `version` (a sequence, taken at every write) is past the last
 *   one read, less a margin for writes that committed out of order; taking a row twice changes
 *   nothing.
 * - A row that does not parse is skipped with a warning naming it; the rest are taken.
 * - The clocks of the instances decide which change is newest: keep them in sync (NTP), as the
 *   leases' expiry already asks.
 *
 * Provisioning secrets (per kind) stay each instance's own.
 *
 * @example
 * const shared = startSharedAccounts({ db: pool, accounts, instanceId: 'alpha', logger });
 * await shared.syncNow(); // { pushed: ['pump-7'], taken: ['pump-9'] }
 * await shared.stop();
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { BrokerAccounts, DeviceAccountRecord } from '../transports/broker-accounts.js';
import { accountChangedAt } from '../transports/broker-accounts.js';
import { parseAccountRecord } from '../transports/broker-accounts-file.js';

export interface SharedAccountsOptions {
  readonly db: pg.Pool;
  readonly accounts: Pick<BrokerAccounts, 'records' | 'merge'>;
  readonly instanceId: string;
  readonly logger: Logger;
  /** How often the file and the table are merged; default 2000 ms. */
  readonly intervalMs?: number;
  /** Called with the ids taken from the table (revocations among them), after the file is saved. */
  readonly onTaken?: (ids: readonly string[]) => void;
}

export interface SharedAccountsPass {
  /** Accounts changed here, written to the table. */
  readonly pushed: readonly string[];
  /** Accounts changed elsewhere, taken into the file. */
  readonly taken: readonly string[];
}

export interface SharedAccounts {
  /** One merge now (after the one under way, if any). Throws what the database throws. */
  syncNow(): Promise<SharedAccountsPass>;
  stop(): Promise<void>;
}

/** Writes that committed out of order by this many versions are still read. */
const REREAD_MARGIN = 1_000;

/** Rows written in one statement at most. */
const PUSH_BATCH = 500;

export function startSharedAccounts(options: SharedAccountsOptions): SharedAccounts {
  const { db, accounts, instanceId, logger } = options;
  const intervalMs = options.intervalMs ?? 2000;
  /** Each account's change time as last written to or read from the table. */
  const known = new Map<string, number>();
  let lastVersion = 0;
  let running: Promise<SharedAccountsPass> = Promise.resolve({ pushed: [], taken: [] });
  let stopped = false;
  const warned = new Set<string>();

  async function push(): Promise<string[]> {
    const changed: [string, DeviceAccountRecord][] = [];
    for (const [id, r] of Object.entries(accounts.records()))
      if ((known.get(id) ?? -1) < accountChangedAt(r)) changed.push([id, r]);
    for (let i = 0; i < changed.length; i += PUSH_BATCH) {
      const batch = changed.slice(i, i + PUSH_BATCH);
      await db.query(
        `INSERT INTO fleetvisor_broker_accounts (device_id, record, changed_at, changed_by)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
         ON CONFLICT (device_id) DO UPDATE
           SET record = EXCLUDED.record, changed_at = EXCLUDED.changed_at,
               changed_by = EXCLUDED.changed_by,
               version = nextval('fleetvisor_broker_accounts_version')
           WHERE fleetvisor_broker_accounts.changed_at < EXCLUDED.changed_at
              OR (fleetvisor_broker_accounts.changed_at = EXCLUDED.changed_at
                  AND fleetvisor_broker_accounts.record <> EXCLUDED.record
                  AND EXCLUDED.record LIKE '%"revokedAt"%')`,
        [
          batch.map(([id]) => id),
          batch.map(([, r]) => JSON.stringify(r)),
          batch.map(([, r]) => accountChangedAt(r)),
          batch.map(() => instanceId),
        ],
      );
      for (const [id, r] of batch) known.set(id, accountChangedAt(r));
    }
    return changed.map(([id]) => id);
  }

  async function pull(): Promise<string[]> {
    const r = await db.query<{ device_id: string; record: string; version: string }>(
      `SELECT device_id, record, version FROM fleetvisor_broker_accounts
       WHERE version > $1 ORDER BY version`,
      [Math.max(0, lastVersion - REREAD_MARGIN)],
    );
    const theirs = new Map<string, DeviceAccountRecord>();
    for (const row of r.rows) {
      lastVersion = Math.max(lastVersion, Number(row.version));
      let record: DeviceAccountRecord;
      try {
        record = parseAccountRecord(JSON.parse(row.record));
      } catch (error) {
        if (!warned.has(row.device_id)) {
          warned.add(row.device_id);
          logger.warn('cluster: a shared broker account does not read: skipped', {
            deviceId: row.device_id,
            error: (error as Error).message,
          });
        }
        continue;
      }
      theirs.set(row.device_id, record);
      known.set(row.device_id, Math.max(known.get(row.device_id) ?? -1, accountChangedAt(record)));
    }
    return theirs.size > 0 ? accounts.merge(theirs) : [];
  }

  async function pass(): Promise<SharedAccountsPass> {
    // Ours first: a change made here is never overwritten by an older row read before it.
    const pushed = await push();
    const taken = await pull();
    if (taken.length > 0) {
      logger.info('cluster: broker accounts changed on other instances taken', {
        accounts: taken.length,
        first: taken.slice(0, 5),
      });
      options.onTaken?.(taken);
    }
    return { pushed, taken };
  }

  const syncNow = (): Promise<SharedAccountsPass> => {
    running = running.catch(() => ({ pushed: [], taken: [] })).then(pass);
    return running;
  };

  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    syncNow()
      .catch((error: unknown) =>
        logger.warn('cluster: broker accounts not merged with the shared table (tried again)', {
          error: String(error),
        }),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();

  return {
    syncNow,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      // The last change made here still reaches the others.
      await syncNow().catch(() => {});
    },
  };
}
