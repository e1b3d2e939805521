/**
 * The fleet declared in the config file, on the real app (embedded broker, a real SQLite file)
 * started three times on one data folder: missing devices are added, changed ones updated, an
 * unlisted one kept — and removed only with `prune`; a device listed with another kind is left
 * alone; every change audited with the actor `config`; a malformed section names the field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppOptions } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import { declaredDevicesOption, readDeclaredDevices } from '../../src/host/declared-devices.js';
import { silentLogger } from '../../src/runtime/runtime.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fv-declared-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const generic = 'fleetvisor.generic';

async function run(
  config: Record<string, unknown>,
  extra?: (app: Awaited<ReturnType<typeof startApp>>) => Promise<void>,
) {
  const devices = readDeclaredDevices(config);
  const options: AppOptions = {
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: false,
    conventions: [],
    ...(devices ? { devices } : {}),
  };
  const app = await startApp(options);
  try {
    const list = app.fleet
      .list()
      .map((d) => ({ id: d.id, name: d.name, tags: d.tags, kind: d.kind, attributes: d.attributes }))
      .sort((a, b) => a.id.localeCompare(b.id));
    const audits = (await app.store.queryEvents({ kind: 'device.audit', limit: 100 })).items.flatMap((i) =>
      i.ok
        ? [{ id: i.value.deviceId, ...(i.value.data as Record<string, unknown>) } as Record<string, unknown>]
        : [],
    );
    await extra?.(app);
    return { list, audits };
  } finally {
    await app.stop();
  }
}

describe('the declared fleet of the config file', () => {
  it('adds missing devices, updates changed ones, keeps unlisted ones, prunes only when asked', async () => {
    const first = await run(
      {
        devices: [
          { id: 'gen-1', kind: generic, name: 'Boiler', tags: ['east'] },
          { id: 'gen-2', kind: generic, attributes: { connectTimeoutMs: 5000 } },
        ],
      },
      async (app) => {
        await app.fleet.addDevice({ id: 'by-hand', kind: generic });
      },
    );
    expect(first.list.map((d) => d.id)).toEqual(['gen-1', 'gen-2']);
    expect(first.audits).toEqual([
      expect.objectContaining({ id: 'gen-1', action: 'add', actor: 'config', via: 'config' }),
      expect.objectContaining({ id: 'gen-2', action: 'add', actor: 'config' }),
    ]);

    const second = await run({
      devices: [
        { id: 'gen-1', kind: generic, name: 'Boiler room', tags: ['east'] },
        { id: 'gen-2', kind: 'modbus.device' },
      ],
    });
    expect(second.list.map((d) => [d.id, d.name])).toEqual([
      ['by-hand', 'by-hand'],
      ['gen-1', 'Boiler room'],
      ['gen-2', 'gen-2'],
    ]);
    expect(second.audits.slice(2)).toEqual([
      expect.objectContaining({ id: 'gen-1', action: 'edit', actor: 'config', changed: ['name'] }),
    ]);

    const third = await run({
      devices: [{ id: 'gen-1', kind: generic, name: 'Boiler room', tags: ['east'] }],
      prune: true,
    });
    expect(third.list.map((d) => d.id)).toEqual(['gen-1']);
    expect(third.audits.slice(3).map((a) => [a.id, a.action, a.actor])).toEqual([
      ['by-hand', 'remove', 'config'],
      ['gen-2', 'remove', 'config'],
    ]);
  }, 60_000);

  it('names the field of a malformed section, in the config file too', () => {
    expect(() => readDeclaredDevices({ devices: [{ id: 'x' }] })).toThrow(/devices\.0\.kind/);
    expect(() =>
      readDeclaredDevices({
        devices: [
          { id: 'x', kind: generic },
          { id: 'x', kind: generic },
        ],
      }),
    ).toThrow(/'x' is listed twice/);
    expect(readDeclaredDevices({ 'no-demo': true })).toBeUndefined();
    const file = join(dir, 'fleetvisor.json');
    writeFileSync(file, JSON.stringify({ 'no-demo': true, prune: 'yes' }));
    expect(() => declaredDevicesOption(['--config', file])).toThrow(/--config .*fleetvisor\.json: prune/);
    writeFileSync(file, JSON.stringify({ devices: [{ id: 'a', kind: generic }] }));
    expect(declaredDevicesOption([`--config=${file}`])).toEqual({
      devices: { devices: [{ id: 'a', kind: generic }], prune: false },
    });
  });
});
