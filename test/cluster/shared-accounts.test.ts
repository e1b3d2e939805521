/**
 * The devices' broker accounts shared by a cluster's instances (src/cluster/shared-accounts.ts),
 * on a real PostgreSQL (a database of this file's own) and real accounts files in two data folders:
 * - an account issued on one instance verifies on the other (its hashed secret travels, never the
 *   secret); a rotation made on the other stops the old secret on the first;
 * - both changed before they merge: the later change wins on both, a revocation at the same time
 *   wins; a change is never undone by an older row;
 * - a damaged row is skipped with a warning, the rest are taken; a pass with nothing new takes
 *   nothing;
 * - two real apps: a device run by alpha whose account is revoked on beta is shown disconnected on
 *   alpha, "broker account revoked", and its messages are no longer taken.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SharedAccounts } from '../../src/cluster/shared-accounts.js';
import { startSharedAccounts } from '../../src/cluster/shared-accounts.js';
import { ACCOUNT_REVOKED_REASON } from '../../src/host/app/revoked-devices.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { migratePostgres } from '../../src/store/postgres-migrations.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

let db: TestDatabase;
let pool: pg.Pool;
const dirs: string[] = [];
const stops: (() => Promise<unknown>)[] = [];

/** A data folder's accounts, on a clock the test sets. */
function folder(name: string, clock: { t: number }): BrokerAccounts {
  const dir = mkdtempSync(join(tmpdir(), `fv-shared-accounts-${name}-`));
  dirs.push(dir);
  return openBrokerAccounts(dir, { now: () => clock.t });
}

function shared(accounts: BrokerAccounts, instanceId: string, logger: Logger = silentLogger): SharedAccounts {
  const s = startSharedAccounts({ db: pool, accounts, instanceId, logger, intervalMs: 3_600_000 });
  stops.push(() => s.stop());
  return s;
}

const secretOk = async (accounts: BrokerAccounts, id: string, secret: string) =>
  (await accounts.verify(id, Buffer.from(secret), id)).ok;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await migratePostgres(pool);
}, 30_000);

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await pool?.end();
  await db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('broker accounts merged through the shared table', () => {
  it('issued on alpha, it verifies on beta; rotated on beta, the old secret stops on alpha', async () => {
    const clock = { t: 1_800_000_000_000 };
    const a = folder('a1', clock);
    const b = folder('b1', clock);
    const sa = shared(a, 'alpha');
    const sb = shared(b, 'beta');
    await Promise.all([sa.syncNow(), sb.syncNow()]);
    const id = uniqueId('acct-');
    const first = a.issueDevice(id);
    expect(await sa.syncNow()).toEqual({ pushed: [id], taken: [] });
    expect(await sb.syncNow()).toEqual({ pushed: [], taken: [id] });
    expect(await secretOk(b, id, first)).toBe(true);
    // Only the hashes travel.
    const row = await pool.query<{ record: string; changed_by: string }>(
      'SELECT record, changed_by FROM fleetvisor_broker_accounts WHERE device_id = $1',
      [id],
    );
    expect(row.rows[0]?.changed_by).toBe('alpha');
    expect(row.rows[0]?.record).not.toContain(first);

    clock.t += 1000;
    const second = b.issueDevice(id);
    await sb.syncNow();
    expect((await sa.syncNow()).taken).toEqual([id]);
    expect(await secretOk(a, id, first)).toBe(false);
    expect(await secretOk(a, id, second)).toBe(true);
    // Nothing new: nothing taken, nothing written.
    expect(await sa.syncNow()).toEqual({ pushed: [], taken: [] });
  });

  it('changed on both before they merge: the later change wins on both; at the same time, the revocation', async () => {
    const clock = { t: 1_800_000_100_000 };
    const a = folder('a2', clock);
    const b = folder('b2', clock);
    const sa = shared(a, 'alpha');
    const sb = shared(b, 'beta');
    const later = uniqueId('later-');
    const tie = uniqueId('tie-');
    a.issueDevice(later);
    a.issueDevice(tie);
    await sa.syncNow();
    await sb.syncNow();
    // Alpha revokes `later` at t+1 s, beta rotates it at t+2 s; both revoke or rotate `tie` at t+3 s.
    clock.t += 1000;
    a.revokeDevice(later);
    clock.t += 1000;
    const rotated = b.issueDevice(later);
    clock.t += 1000;
    a.revokeDevice(tie);
    b.issueDevice(tie);
    await sa.syncNow(); // alpha writes its revocations first
    await sb.syncNow(); // beta's later rotation replaces one; its tie loses to the revocation
    await sa.syncNow();
    for (const acc of [a, b]) {
      const byId = new Map(acc.devices().map((d) => [d.id, d]));
      expect(byId.get(later)?.revokedAt).toBeNull();
      expect(byId.get(tie)?.revokedAt).not.toBeNull();
      expect(await secretOk(acc, later, rotated)).toBe(true);
    }
  });

  it('a damaged row is skipped with a warning naming it; the others are taken', async () => {
    const clock = { t: 1_800_000_200_000 };
    const a = folder('a3', clock);
    const good = uniqueId('good-');
    const bad = uniqueId('bad-');
    const c = folder('c3', clock);
    const sc = shared(c, 'gamma');
    await sc.syncNow();
    a.issueDevice(good);
    const sa = shared(a, 'alpha');
    await sa.syncNow();
    await pool.query(
      `INSERT INTO fleetvisor_broker_accounts (device_id, record, changed_at, changed_by)
       VALUES ($1, '{"convention":{"convention":"sparkplug","group":"STATE","node":"n"}}', 1, 'mallory')`,
      [bad],
    );
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (msg, fields) => warnings.push(`${msg} ${JSON.stringify(fields)}`),
    };
    const d = folder('d3', clock);
    const sd = shared(d, 'delta', logger); // its first pass starts at once
    await sd.syncNow();
    const ids = d.devices().map((x) => x.id);
    expect(ids).toContain(good);
    expect(ids).not.toContain(bad);
    expect(warnings.some((w) => w.includes('does not read') && w.includes(bad) && w.includes('STATE'))).toBe(
      true,
    );
  });
});

describe('two apps in a cluster', () => {
  let broker: EmbeddedBroker;
  let alpha: App;
  let beta: App;
  let sim: MqttSimDevice;

  async function instance(name: string): Promise<App> {
    const dataDir = mkdtempSync(join(tmpdir(), `fv-shared-accounts-app-${name}-`));
    dirs.push(dataDir);
    const app = await startApp({
      dataDir,
      logger: silentLogger,
      storeUrl: db.url,
      cluster: { instanceId: name, shardCount: 16, leaseMs: 3000 },
      mqtt: { url: broker.url },
      demo: false,
      adopt: 'auto',
      conventions: [],
    });
    stops.push(() => app.stop());
    return app;
  }

  beforeAll(async () => {
    broker = await startEmbeddedBroker({ port: 0 });
    stops.push(() => broker.close());
    alpha = await instance('alpha');
    beta = await instance('beta');
    await waitFor(
      () => (alpha.cluster?.keeper.held.size ?? 0) === 8 && (beta.cluster?.keeper.held.size ?? 0) === 8,
      20_000,
      'the shards split 8/8',
      50,
    );
  }, 60_000);

  it('a device alpha runs, its account revoked on beta: alpha shows it disconnected, "broker account revoked"', async () => {
    let id = uniqueId('rv-');
    for (let i = 0; !alpha.cluster?.keeper.owns(id); i++) id = uniqueId(`rv${i}-`);
    // Its account is made on alpha, which adopts it when it says hello.
    alpha.brokerAccounts!.issueDevice(id);
    await waitFor(
      () => beta.brokerAccounts!.devices().some((d) => d.id === id),
      10_000,
      'beta to know the account',
      50,
    );
    sim = await startMqttSimDevice(broker.url, {
      id,
      telemetryIntervalMs: 200,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
    });
    stops.push(() => sim.stop());
    await waitFor(
      () => alpha.fleet.device(id)?.state.startsWith('connected') === true,
      20_000,
      'connected on alpha',
      50,
    );

    expect(beta.brokerAccounts!.revokeDevice(id)).toBe(true);
    await waitFor(() => alpha.fleet.device(id)?.link.up === false, 10_000, 'alpha to let it go', 50);
    expect(alpha.fleet.device(id)?.link.reason).toBe(ACCOUNT_REVOKED_REASON);
    // Its telemetry, still sent (the embedded broker here takes no accounts), does not bring it back.
    await new Promise((r) => setTimeout(r, 1500));
    expect(alpha.fleet.device(id)?.link).toMatchObject({ up: false, reason: ACCOUNT_REVOKED_REASON });
    expect(alpha.brokerAccounts?.devices().find((d) => d.id === id)?.revokedAt).not.toBeNull();
  }, 60_000);
});
