/**
 * The `discovered` call pages the list (issue 12 §4): newest first, by offset and limit, and by
 * kind, over the real app (embedded broker, SQLite file) with hellos from 30 strangers delivered to
 * its link hub as the MQTT link would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { DiscoveredView } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { DeviceId, HelloMessage } from '../../src/transports/protocol.js';

let dir: string;
let app: App;
let api: HostApiHandle;

const hello = (id: string, kind: string): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: id as DeviceId,
  kind,
  boot: 1,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-discovered-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    adopt: 'manual',
    demo: false,
  });
  api = createHostApi(app);
  const link = { via: 'mqtt', presence: 'status' as const, send: () => true };
  for (let i = 0; i < 30; i++) {
    const id = `stranger-${String(i).padStart(2, '0')}`;
    app.links.hub!.deliver(
      id as DeviceId,
      hello(id, i % 3 === 0 ? 'acme.unknown' : 'fleetvisor.generic'),
      link,
    );
    await new Promise((r) => setTimeout(r, 2)); // distinct first-seen times
  }
});

afterAll(async () => {
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function discovered(args: object): Promise<DiscoveredView[]> {
  const r = await api.call('discovered', args);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as DiscoveredView[];
}

describe('discovered, paged', () => {
  it('answers newest first, by offset and limit, and by kind; refuses a page past 1000', async () => {
    const all = await discovered({});
    expect(all.map((d) => d.id)).toHaveLength(30);
    expect(all[0]!.id).toBe('stranger-29');
    const page = await discovered({ offset: 5, limit: 10 });
    expect(page.map((d) => d.id)).toEqual(all.slice(5, 15).map((d) => d.id));
    const unknown = await discovered({ kind: 'acme.unknown' });
    expect(unknown).toHaveLength(10);
    expect(unknown.every((d) => d.reason === 'unknownKind')).toBe(true);
    const r = await api.call('discovered', { limit: 5000 });
    expect(r.ok ? 'ok' : r.error.code).toBe('badRequest');
  });
});
