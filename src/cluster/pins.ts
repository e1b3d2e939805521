/**
 * Devices pinned to the instance that has their serial port (issue 17 §3, docs/scale-out.md): a
 * serial device can be reached only from the machine its cable is plugged into, so it is run by
 * that machine's instance whatever its shard. The table `fleetvisor_pins` (PostgreSQL migration 8)
 * holds one row per pinned device:
 *
 * - **Pinned by what it says.** A device heard on one of this instance's serial ports is pinned
 *   here: at its first message when no live instance holds it, at any `hello` otherwise (the last
 *   hello wins: a device whose cable moved to another machine follows it there).
 * - **Leased, as one.** A pin lives as long as its instance's pin session (`fleetvisor_pin_sessions`,
 *   PostgreSQL migration 10: one row per instance, expiring as a shard lease does on the
 *   database's clock, renewed with the instance's leases), so a renewal writes one row whatever the
 *   number of pins (test/bench/pins.bench.ts). A session that ran out is never renewed: the
 *   instance starts a new one, and every pin of the old one stays void. An instance that cannot
 *   renew stops its pinned devices with its shards. A void pin's device is run again by its shard
 *   owner (offline, its timeouts running) until its port's instance pins it again. The view
 *   `fleetvisor_live_pins` is the live pins, as every reader sees them.
 * - **Fenced.** Every pin bumps the row's epoch, the pinned instance's fencing token for the
 *   device's writes (src/store/postgres-fence.ts checks it instead of the shard lease); a write
 *   under the shard lease is refused while another instance holds an unexpired pin of the device.
 *   A pin commits holding its shard's lease row `FOR UPDATE`, which the shard owner's writes hold
 *   `FOR SHARE`: the owner's write in flight commits first, and its next one sees the pin. So two
 *   instances never both write a device.
 * - **Followed.** With every renewal an instance reads the others' unexpired pins: a device of one
 *   of its shards pinned elsewhere is stopped here (its writes would be refused); one no longer
 *   pinned anywhere is started again by its shard owner.
 * - A graceful stop releases the instance's pins after its devices were saved.
 *
 * Sparkplug devices are pinned too, by their DBIRTH, to the instance that holds their node
 * ({@link PinKeeper.claim}), and Modbus devices by the instance their attributes name
 * (`declared`). The instance's own pins and the others' are read whole at every renewal: a few
 * rows per machine for its ports, one per Sparkplug device (docs/scale-out.md, "What pins cost").
 *
 * @example
 * const pins = createPinKeeper({ pool, owner: 'site-a-1', leaseMs: 6000, shardOf, logger, changed });
 * pins.heard('pump-7', true);        // a hello on a serial port: pinned here, then `changed({ start })`
 * await pins.renew();                // with each lease renewal
 * pins.here.has('pump-7');           // true: runs here, fenced by the pin's epoch
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';

/** A pin asked under a session that had run out: nothing pinned; a new session is needed. */
export class PinSessionLapsed extends Error {}

/**
 * Starts a new pin session of `owner` (one row per instance, PostgreSQL migration 10): any pin of
 * an earlier session of the same name is void from now on. Returns the session.
 */
export async function startPinSession(db: pg.Pool, owner: string, leaseMs: number): Promise<number> {
  const r = await db.query<{ session: string }>(
    `INSERT INTO fleetvisor_pin_sessions (owner, session, expires_at)
     VALUES ($1, 1, clock_timestamp() + $2 * interval '1 millisecond')
     ON CONFLICT (owner) DO UPDATE SET session = fleetvisor_pin_sessions.session + 1,
       expires_at = EXCLUDED.expires_at
     RETURNING session`,
    [owner, leaseMs],
  );
  const session = Number(r.rows[0]!.session);
  // The void pins of its earlier sessions (an earlier run under the same name, a session that ran out).
  await db.query('DELETE FROM fleetvisor_pins WHERE owner = $1 AND session <> $2', [owner, session]);
  return session;
}

/**
 * Pins `deviceId` to `owner` at a new epoch, under its live pin session `session` (see the module
 * comment on the lock); returns the epoch. Throws when the session ran out: nothing is pinned.
 */
export async function pinDevice(
  pool: pg.Pool,
  owner: string,
  session: number,
  deviceId: string,
  shard: number,
): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const live = await client.query(
      `SELECT 1 FROM fleetvisor_pin_sessions
       WHERE owner = $1 AND session = $2 AND expires_at > clock_timestamp() FOR SHARE`,
      [owner, session],
    );
    if (live.rowCount === 0) throw new PinSessionLapsed(`the pin session ${session} of ${owner} ran out`);
    await client.query('SELECT shard FROM fleetvisor_leases WHERE shard = $1 FOR UPDATE', [shard]);
    const r = await client.query<{ epoch: string }>(
      `INSERT INTO fleetvisor_pins (device_id, owner, epoch, session, pinned_at)
       VALUES ($1, $2, 1, $3, clock_timestamp())
       ON CONFLICT (device_id) DO UPDATE SET owner = EXCLUDED.owner, epoch = fleetvisor_pins.epoch + 1,
         session = EXCLUDED.session, pinned_at = EXCLUDED.pinned_at
       RETURNING epoch`,
      [deviceId, owner, session],
    );
    await client.query('COMMIT');
    return Number(r.rows[0]!.epoch);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Extends `owner`'s pin session: one row, whatever the number of its pins. False when the session
 * had run out (every pin of it is void). Which pins it still holds follows from the others' live
 * pins: only another instance's pin takes a device from it.
 */
export async function renewPins(
  db: pg.Pool,
  owner: string,
  session: number,
  leaseMs: number,
): Promise<boolean> {
  const renewed = await db.query(
    `UPDATE fleetvisor_pin_sessions SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
     WHERE owner = $1 AND session = $2 AND expires_at > clock_timestamp()`,
    [owner, session, leaseMs],
  );
  return renewed.rowCount === 1;
}

/** The devices other instances hold live pins of. */
export async function pinnedElsewhere(db: pg.Pool, owner: string): Promise<Set<string>> {
  const r = await db.query<{ device_id: string }>(
    'SELECT device_id FROM fleetvisor_live_pins WHERE owner <> $1',
    [owner],
  );
  return new Set(r.rows.map((x) => x.device_id));
}

/**
 * The devices of `kind` whose attributes name `owner` as their `instance` (a Modbus device: its
 * port is on that instance's machine, and it says nothing until polled, so no hello can pin it).
 * One query on the devices-by-kind index; attributes that do not parse name no instance.
 */
export async function devicesDeclaredFor(db: pg.Pool, owner: string, kind: string): Promise<string[]> {
  const r = await db.query<{ id: string; attributes: string }>(
    'SELECT id, attributes FROM devices WHERE kind = $1',
    [kind],
  );
  return r.rows
    .filter((row) => {
      try {
        return (JSON.parse(row.attributes) as { instance?: unknown }).instance === owner;
      } catch {
        return false;
      }
    })
    .map((row) => row.id);
}

/** Deletes `owner`'s pins (these devices only, or all of them with its pin session). */
export async function releasePins(
  db: pg.Pool,
  owner: string,
  deviceIds?: readonly string[],
): Promise<number> {
  if (deviceIds !== undefined) {
    const r = await db.query('DELETE FROM fleetvisor_pins WHERE owner = $1 AND device_id = ANY($2::text[])', [
      owner,
      [...deviceIds],
    ]);
    return r.rowCount ?? 0;
  }
  const r = await db.query('DELETE FROM fleetvisor_pins WHERE owner = $1', [owner]);
  await db.query('DELETE FROM fleetvisor_pin_sessions WHERE owner = $1', [owner]);
  return r.rowCount ?? 0;
}

export interface PinChanges {
  /** Devices this instance runs from now on (pinned here, or back to its shard): start them. */
  readonly start: readonly string[];
  /** Devices it no longer runs (pinned elsewhere, or its pin ran out): stop them, writing nothing. */
  readonly stop: readonly string[];
}

export interface PinKeeperOptions {
  readonly pool: pg.Pool;
  /** This instance, as the rows name their owner. */
  readonly owner: string;
  readonly leaseMs: number;
  readonly shardOf: (deviceId: string) => number;
  /** Whether this instance holds the lease of the shard now. */
  readonly holdsShard: (shard: number) => boolean;
  readonly logger: Logger;
  /** Told after each change of what runs here; a failure is logged. */
  readonly changed: (changes: PinChanges) => Promise<void>;
  /**
   * The devices declared to run on this instance (a Modbus device naming it as its `instance`),
   * read with every renewal: pinned here as a hello pins a serial device, and released when no
   * longer declared.
   */
  readonly declared?: () => Promise<readonly string[]>;
}

export interface PinKeeper {
  /** Devices pinned here, with their pins' epochs. */
  readonly here: ReadonlyMap<string, number>;
  /** Devices other instances hold unexpired pins of, as of the last renewal or pin. */
  readonly elsewhere: ReadonlySet<string>;
  /** A message from `deviceId` on one of this instance's serial ports (`hello`: it was a hello). */
  heard(deviceId: string, hello: boolean): void;
  /**
   * Pins the device here now, as a hello does, and resolves once it runs here (started from the
   * store when it existed): true, or false when the pin could not be taken. A Sparkplug device
   * born under a node this instance holds is claimed so (its shard may be another's).
   */
  claim(deviceId: string): Promise<boolean>;
  /** With each lease renewal: this instance's pins extended, the others' read. */
  renew(): Promise<void>;
  /** Every pin here dropped locally (the leases' local deadline passed): their devices stop. */
  loseAll(why: string): void;
  /** Releases every pin of this instance (a graceful stop, once its devices are saved). */
  release(): Promise<void>;
  /** Counts since start, for the logs and tests. */
  stats(): { readonly pinned: number; readonly lost: number };
}

export function createPinKeeper(options: PinKeeperOptions): PinKeeper {
  const { pool, owner, leaseMs, logger: log } = options;
  const here = new Map<string, number>();
  let elsewhere = new Set<string>();
  /** Pins in flight, by device: resolved once the pin is taken (or failed) and told. */
  const pinning = new Map<string, Promise<void>>();
  /** Pinned because they are declared here (not heard on a port): released when no longer declared. */
  const byDeclaration = new Set<string>();
  /** A device whose pin failed or that another instance holds: not tried on its telemetry before this. */
  const quietUntil = new Map<string, number>();
  const counts = { pinned: 0, lost: 0 };
  let stopped = false;
  /** This instance's live pin session: started at the first pin or renewal, again after one ran out. */
  let session: Promise<number> | undefined;
  const sessionNow = (): Promise<number> => {
    if (!session) {
      const started = startPinSession(pool, owner, leaseMs);
      session = started;
      // A failed start is tried again at the next pin or renewal.
      started.catch(() => {
        if (session === started) session = undefined;
      });
    }
    return session;
  };

  const tell = (changes: PinChanges) => {
    if (changes.start.length === 0 && changes.stop.length === 0) return Promise.resolve();
    return options
      .changed(changes)
      .catch((error: unknown) =>
        log.error('cluster: acting on pinned devices failed', { error: String(error) }),
      );
  };

  async function pin(deviceId: string, why: string): Promise<void> {
    const current = sessionNow();
    try {
      const epoch = await pinDevice(pool, owner, await current, deviceId, options.shardOf(deviceId));
      if (stopped) return;
      here.set(deviceId, epoch);
      const moved = elsewhere.delete(deviceId);
      quietUntil.delete(deviceId);
      counts.pinned++;
      log.info('cluster: device pinned here', {
        device: deviceId,
        why,
        epoch,
        ...(moved ? { from: 'another instance' } : {}),
      });
      await tell({ start: [deviceId], stop: [] });
    } catch (error) {
      if (error instanceof PinSessionLapsed && session === current) session = undefined;
      quietUntil.set(deviceId, performance.now() + leaseMs / 3);
      log.warn('cluster: pinning a device failed; tried again at its next message or birth', {
        device: deviceId,
        error: (error as Error).message,
      });
    } finally {
      pinning.delete(deviceId);
    }
  }

  return {
    here,
    get elsewhere() {
      return elsewhere;
    },
    heard(deviceId, hello) {
      if (stopped || here.has(deviceId) || pinning.has(deviceId)) return;
      // Another instance's pin gives way to a hello only; a failed pin waits a renewal period.
      if (!hello && (elsewhere.has(deviceId) || (quietUntil.get(deviceId) ?? 0) > performance.now())) return;
      pinning.set(deviceId, pin(deviceId, 'heard on a serial port of this machine'));
    },
    async claim(deviceId) {
      if (stopped) return false;
      if (!here.has(deviceId)) {
        let inFlight = pinning.get(deviceId);
        if (!inFlight) {
          inFlight = pin(deviceId, 'claimed: its Sparkplug node runs here');
          pinning.set(deviceId, inFlight);
        }
        await inFlight;
      }
      return here.has(deviceId);
    },
    async renew() {
      if (stopped) return;
      const current = sessionNow();
      const renewed = await renewPins(pool, owner, await current, leaseMs);
      if (!renewed) {
        // The session ran out (this instance was paused or cut off past a lease): every pin of it
        // is void, maybe taken by another instance meanwhile. A new session; devices pin again.
        if (session === current) session = undefined;
        if (here.size > 0)
          log.warn('cluster: the pin session ran out; its pins are void', {
            instance: owner,
            pins: here.size,
          });
      }
      const others = await pinnedElsewhere(pool, owner);
      const stop = new Set<string>();
      for (const id of [...here.keys()])
        if (!renewed || others.has(id)) {
          here.delete(id);
          counts.lost++;
          // Still this instance's through its shard when nobody else pinned it: it runs on.
          if (others.has(id) || !options.holdsShard(options.shardOf(id))) stop.add(id);
        }
      const start: string[] = [];
      for (const id of others)
        if (!elsewhere.has(id) && !stop.has(id) && options.holdsShard(options.shardOf(id))) stop.add(id);
      for (const id of elsewhere)
        if (!others.has(id) && !here.has(id) && options.holdsShard(options.shardOf(id))) start.push(id);
      elsewhere = others;
      if (options.declared) {
        const declared = new Set(await options.declared());
        for (const id of declared)
          if (!here.has(id) && !pinning.has(id)) {
            byDeclaration.add(id);
            pinning.set(id, pin(id, 'its attributes name this instance'));
          }
        const undeclared = [...byDeclaration].filter((id) => !declared.has(id));
        if (undeclared.length > 0) {
          await releasePins(pool, owner, undeclared);
          for (const id of undeclared) {
            byDeclaration.delete(id);
            here.delete(id);
            if (!options.holdsShard(options.shardOf(id))) stop.add(id);
          }
        }
      }
      if (stop.size > 0) {
        log.warn('cluster: devices no longer run here (pinned to another instance, or the pin ran out)', {
          devices: stop.size,
        });
      }
      await tell({ start, stop: [...stop] });
    },
    loseAll(why) {
      if (here.size === 0) return;
      const stop = [...here.keys()];
      here.clear();
      counts.lost += stop.length;
      log.error(`cluster: ${stop.length} pinned devices lost (${why}); they stop`, { instance: owner });
      void tell({ start: [], stop });
    },
    async release() {
      stopped = true;
      here.clear();
      await releasePins(pool, owner);
    },
    stats: () => ({ ...counts }),
  };
}
