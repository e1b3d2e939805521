/**
 * The fleet table's metric columns after a host restart (issue 13): `latestValues` answers each
 * device's last value from the store at once, not only values heard since the start. A real app
 * (embedded broker, SQLite file) with devices whose telemetry is in its store; the host restarts
 * on the same data folder, and the first answer carries every device's last value with the time
 * it was received (the newest by receive time, whatever order it was written in), only for
 * devices of the fleet. Before, it was empty until the devices spoke again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import type { Results } from '../../../src/host/contract.js';

type ResultOf<M extends keyof Results> = Results[M];

import { silentLogger } from '../../../src/runtime/runtime.js';
import { freePort, uniqueId } from '../../transports/helpers.js';

const DEVICES = 12;

let dir: string;
let port: number;
let app: App | undefined;
let api: HostApiHandle | undefined;
const prefix = `lv${uniqueId()}`.toLowerCase();

async function start(): Promise<void> {
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port },
    adopt: 'manual',
    demo: false,
  });
  api = createHostApi(app);
}

async function stop(): Promise<void> {
  api?.close();
  await app?.stop();
  api = undefined;
  app = undefined;
}

async function latest(metric?: string, ids?: string[]): Promise<ResultOf<'latestValues'>> {
  const r = await api!.call('latestValues', {
    ...(metric === undefined ? {} : { metric }),
    ...(ids ? { ids } : {}),
  });
  if (!r.ok) throw new Error(`latestValues: ${r.error.code}: ${r.error.message}`);
  return r.value as ResultOf<'latestValues'>;
}

const mine = (values: ResultOf<'latestValues'>['values']) =>
  values.filter((v) => v.id.startsWith(prefix)).sort((a, b) => a.id.localeCompare(b.id));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-latest-restart-'));
  port = await freePort();
  await start();
}, 60_000);

afterAll(async () => {
  await stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('latest values across a host restart', () => {
  it('answers every device’s last stored value at once after a restart', async () => {
    const ids = Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`);
    for (const id of ids)
      expect((await api!.call('deviceAdd', { id, kind: 'fleetvisor.generic' })).ok, id).toBe(true);
    // Two points per series, the newer written first: the newest by receive time wins.
    const t = Date.now() - 60_000;
    const point = (deviceId: string, metric: string, receivedAt: number, value: number) => ({
      deviceId,
      metric,
      deviceTs: null,
      receivedAt,
      value,
    });
    const written = await app!.store.appendTelemetry(
      ids.flatMap((id, i) => [
        point(id, 'temp', t + 1_000 + i, 20 + i),
        point(id, 'temp', t + i, -1),
        point(id, 'rssi', t + 2_000 + i, -50 - i),
      ]),
    );
    expect(written).toMatchObject({ ok: true, value: { written: DEVICES * 3 } });
    // History of a device no longer in the fleet: kept, but not a row of the table.
    await app!.store.appendTelemetry([point(`${prefix}-removed`, 'temp', t, 99)]);
    await stop();

    await start();
    const after = await latest();
    expect(after.metrics).toEqual(['rssi', 'temp']);
    expect(mine((await latest('temp')).values)).toEqual(
      ids.map((id, i) => ({ id, at: t + 1_000 + i, value: 20 + i })).sort((a, b) => a.id.localeCompare(b.id)),
    );
    expect(mine((await latest('rssi')).values)).toHaveLength(DEVICES);
    expect((await latest('temp', [ids[3]!])).values).toEqual([{ id: ids[3], at: t + 1_003, value: 23 }]);

    // A value heard after the start is newer than the stored one, and wins.
    app!.fleet.ingestTelemetry(ids[0]!, { temp: 42 }, null);
    const now = mine((await latest('temp')).values).find((v) => v.id === ids[0]);
    expect(now?.value).toBe(42);
    expect(now!.at).toBeGreaterThan(t + 1_000);
  }, 120_000);
});
