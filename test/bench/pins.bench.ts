/**
 * What device pins cost PostgreSQL (`npm run bench -- pins`; issue 17, docs/scale-out.md "What pins
 * cost"). Every Sparkplug device is pinned to the instance that holds its node, and every serial
 * device to its port's instance (src/cluster/pins.ts); each instance renews its own pins with its
 * leases, every `leaseMs / 3` (2 s at the default 6 s lease), and reads the others' unexpired pins
 * at the same time. So the cost grows with the pinned devices, and this measures it at each size of
 * `BENCH_PIN_SIZES` (default 10,000 and 50,000 pins per instance), with three instances' worth of
 * pins in the table (each instance's renewal reads the other two's):
 *
 * - `pin_ms`: one pin (a device's DBIRTH or first serial hello): its transaction with the shard
 *   lease row locked; median over 500.
 * - `renew_<n>_ms`: one renewal of an instance's n pins (its pin session's one row) plus its read
 *   of the others' 2n live pins (which tell it the pins taken from it), median over 10 — the time the database spends on it
 *   every 2 s. Goal: at most a tenth of the renewal interval (200 ms), so renewals never crowd out
 *   the writes of the fleet. First figures, when every pin row was updated at each renewal: 72 ms
 *   at 10,000 pins, 429 ms at 50,000.
 *
 * A database `fv_test_<random>` on FLEETVISOR_TEST_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres), dropped after; the same server as the tests, on this
 * 2-core machine.
 */
import pg from 'pg';
import { pinDevice, pinnedElsewhere, renewPins, startPinSession } from '../../src/cluster/pins.js';
import { migratePostgres } from '../../src/store/postgres-migrations.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { nowUs, percentile, report } from './bench-kit.js';

const SUITE = 'pins';
const LEASE_MS = 6000;
const RENEW_EVERY_MS = LEASE_MS / 3;
const SIZES = (process.env.BENCH_PIN_SIZES ?? '10000,50000').split(',').map(Number);
const INSTANCES = ['site-a', 'site-b', 'site-c'];

const db = await createTestDatabase();
const pool = new pg.Pool({ connectionString: db.url, max: 4 });
try {
  await migratePostgres(pool);

  const one: number[] = [];
  const probe = await startPinSession(pool, 'site-a', 3_600_000);
  for (let i = 0; i < 500; i++) {
    const start = nowUs();
    await pinDevice(pool, 'site-a', probe, `probe-${i}`, i % 1024);
    one.push((nowUs() - start) / 1000);
  }
  one.sort((a, b) => a - b);
  report(
    SUITE,
    'pin_ms',
    percentile(one, 50),
    'ms',
    '<=',
    5,
    `one pin (a DBIRTH or a first serial hello), median of 500; p99 ${percentile(one, 99).toFixed(2)} ms`,
  );
  await pool.query('DELETE FROM fleetvisor_pins; DELETE FROM fleetvisor_pin_sessions');

  for (const size of SIZES) {
    // Three instances' pins, written in bulk (as many births over time would leave them).
    const sessions = new Map<string, number>();
    for (const owner of INSTANCES) {
      const session = await startPinSession(pool, owner, 3_600_000);
      sessions.set(owner, session);
      await pool.query(
        `INSERT INTO fleetvisor_pins (device_id, owner, epoch, session, pinned_at)
         SELECT $1 || '-' || g, $1, 1, $3, clock_timestamp()
         FROM generate_series(1, $2) AS g`,
        [owner, size, session],
      );
    }
    await pool.query('VACUUM ANALYZE fleetvisor_pins');
    const times: number[] = [];
    const reads: number[] = [];
    let held = 0;
    let others = 0;
    for (let i = 0; i < 10; i++) {
      const start = nowUs();
      held = (await renewPins(pool, 'site-a', sessions.get('site-a')!, LEASE_MS)) ? size : 0;
      const renewed = nowUs();
      others = (await pinnedElsewhere(pool, 'site-a')).size;
      times.push((nowUs() - start) / 1000);
      reads.push((nowUs() - renewed) / 1000);
      await new Promise((r) => setTimeout(r, 100));
    }
    times.sort((a, b) => a - b);
    reads.sort((a, b) => a - b);
    if (held !== size || others !== 2 * size)
      throw new Error(`renewal kept ${held} own and saw ${others} others' pins, not ${size} and ${2 * size}`);
    report(
      SUITE,
      `renew_${size}_ms`,
      percentile(times, 50),
      'ms',
      '<=',
      RENEW_EVERY_MS / 10,
      `one instance renews its ${size} pins and reads the others' ${2 * size}, median of 10 ` +
        `(max ${times.at(-1)!.toFixed(1)} ms; the read of the others' ${percentile(reads, 50).toFixed(1)} ms of it); every ${RENEW_EVERY_MS} ms per instance: ` +
        `${((percentile(times, 50) / RENEW_EVERY_MS) * 100).toFixed(1)} % of the database's time per instance`,
    );
    await pool.query('DELETE FROM fleetvisor_pins; DELETE FROM fleetvisor_pin_sessions');
  }
} finally {
  await pool.end();
  await db.drop();
}
