/**
 * `--store postgres://…` (or `"store"` in a --config file) puts the fleet's store on PostgreSQL;
 * without it, SQLite in the data folder. The real binary runs its demo fleet on a test database.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/host/main.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { startServe } from './serve-rig.js';

describe('--store', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleetvisor-store-option-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const options = (argv: string[]) => {
    const parsed = parseCommandLine(['--data-dir', dir, ...argv], {});
    if (parsed.help) throw new Error('help');
    return parsed.options;
  };

  it('takes a postgres:// URL, from the command line or a config file; SQLite without it', () => {
    expect(options(['--store', 'postgres://fleet@db.lan/fleetvisor']).storeUrl).toBe(
      'postgres://fleet@db.lan/fleetvisor',
    );
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ store: 'postgresql://fleet@db.lan:5433/f' }));
    expect(options(['--config', config]).storeUrl).toBe('postgresql://fleet@db.lan:5433/f');
    expect(options([]).storeUrl).toBeUndefined();
    expect(() => options(['--store', 'sqlite:///tmp/x'])).toThrow(/--store must be a postgres:\/\//);
  });

  it('--cluster joins the instances on that database and broker; it needs both, and a usable name', () => {
    const pgUrl = 'postgres://fleet@db.lan/fleetvisor';
    const mqtt = ['--mqtt-url', 'mqtt://broker.lan:1883'];
    expect(options(['--store', pgUrl, '--cluster', ...mqtt]).cluster).toEqual({});
    expect(options(['--store', pgUrl, '--cluster', '--instance', 'site-a.1', ...mqtt]).cluster).toEqual({
      instanceId: 'site-a.1',
    });
    expect(options(['--store', pgUrl, ...mqtt]).cluster).toBeUndefined();
    expect(() => options(['--cluster', ...mqtt])).toThrow(/--cluster needs --store postgres/);
    expect(() => options(['--store', pgUrl, '--cluster'])).toThrow(/--cluster needs --mqtt-url/);
    expect(() => options(['--store', pgUrl, '--instance', 'x', ...mqtt])).toThrow(
      /--instance goes with --cluster/,
    );
    expect(() => options(['--store', pgUrl, '--cluster', '--instance', 'a b', ...mqtt])).toThrow(
      /--instance must be/,
    );
  });
});

describe('fleetvisor serve --store postgres://…', () => {
  let db: TestDatabase;
  let dataDir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'fleetvisor-store-pg-'));
  }, 60_000);
  afterAll(async () => {
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the fleet on PostgreSQL: devices, snapshots and telemetry land in the database', async () => {
    const serve = await startServe(dataDir, ['--store', db.url, '--demo-devices', '2', '--broker-port', '0']);
    try {
      await expect
        .poll(
          async () => {
            const [counts] = await db.query<{ devices: number; snapshots: number; points: number }>(
              `SELECT (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM snapshots) AS snapshots,
                      (SELECT count(*) FROM telemetry) AS points`,
            );
            return counts!.devices >= 2 && counts!.snapshots >= 2 && counts!.points > 0;
          },
          { timeout: 60_000, interval: 500 },
        )
        .toBe(true);
      expect(serve.output()).toContain('store on PostgreSQL');
    } finally {
      await serve.stop();
    }
  }, 120_000);
});
