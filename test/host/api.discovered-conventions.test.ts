/**
 * One adoption policy and one Discovered list for every convention (issue 11 §3): an app started
 * with `adopt: 'manual'` lists a Homie device (a real homie-device peer) and a Sparkplug node and
 * device (Eclipse Tahu's client) beside a device of our own protocol, each with its convention;
 * none joins the fleet by itself; `adopt` through the API adds each one, and the fleet rows carry
 * their convention. Before, Homie and Sparkplug adopted automatically whatever `--adopt` said, and
 * the Discovered view knew only our own protocol.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { DeviceRow, DiscoveredView } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { DeviceId, HelloMessage } from '../../src/transports/protocol.js';
import { runCleanups, startPeer } from '../conventions/homie-helpers.js';
import type { PeerConfig } from '../conventions/sparkplug-peer.js';
import { uniqueId } from '../transports/helpers.js';

const SPARKPLUG_PEER = fileURLToPath(new URL('../conventions/sparkplug-peer.ts', import.meta.url));

let dir: string;
let app: App;
let api: HostApiHandle;
let sparkplugPeer: ChildProcess | undefined;
const homieId = `boiler-${uniqueId()}`.toLowerCase();
const group = `G${uniqueId()}`.replace(/[^A-Za-z0-9]/g, '');
const ownId = `pump-${uniqueId()}`;

async function call<T>(method: string, args: object): Promise<T> {
  const r = await api.call(method as never, args as never);
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.value as T;
}

const discovered = () => call<DiscoveredView[]>('discovered', { limit: 1000 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-discovered-conv-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    adopt: 'manual',
    demo: false,
  });
  api = createHostApi(app);
  const url = app.brokerUrl!;
  // The embedded broker asks every device for its account, as a real fleet's would.
  const accounts = app.brokerAccounts!;
  const homieSecret = accounts.issueDevice(homieId, { convention: 'homie', base: 'homie' });
  await startPeer(url, {
    id: homieId,
    base: 'homie',
    firmware: '2.1.0',
    username: homieId,
    password: homieSecret,
  });
  const nodeAccount = `node-${uniqueId()}`;
  const nodeSecret = accounts.issueDevice(nodeAccount, { convention: 'sparkplug', group, node: 'line4' });
  const config: PeerConfig = {
    url,
    group,
    node: 'line4',
    devices: ['press2'],
    clientId: `peer-${uniqueId()}`,
    keepalive: 5,
    dataIntervalMs: 0,
    username: nodeAccount,
    password: nodeSecret,
  };
  sparkplugPeer = spawn(process.execPath, ['--import', 'tsx', SPARKPLUG_PEER, JSON.stringify(config)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const hello: HelloMessage = {
    v: 1,
    type: 'hello',
    deviceId: ownId as DeviceId,
    kind: 'fleetvisor.generic',
    boot: 1,
    firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
    capabilities: [],
  };
  app.links.hub!.deliver(ownId as DeviceId, hello, { via: 'mqtt', presence: 'status', send: () => true });
}, 60_000);

afterAll(async () => {
  sparkplugPeer?.kill('SIGKILL');
  await runCleanups();
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('discovered across conventions, with --adopt manual', () => {
  it('lists the Homie device, the Sparkplug node and our own device, each with its convention; none joins by itself', async () => {
    let rows: DiscoveredView[] = [];
    // Listed at its first attribute; its firmware comes with a later one ($fw/version).
    const complete = () => rows.length >= 3 && rows.some((d) => d.id === homieId && d.firmware !== '');
    for (const deadline = Date.now() + 20_000; !complete(); ) {
      if (Date.now() > deadline)
        throw new Error(`three discovered devices expected, got ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 100));
      rows = await discovered();
    }
    const byConvention = (c: string) => rows.filter((d) => d.convention === c).map((d) => d.id);
    expect(byConvention('own')).toEqual([ownId]);
    expect(byConvention('homie')).toEqual([homieId]);
    // A node's devices are listed once the node is adopted (its births are asked for then).
    expect(byConvention('sparkplug')).toEqual([`${group}-line4`]);
    const homie = rows.find((d) => d.id === homieId)!;
    expect(homie).toMatchObject({ kind: 'homie.device', firmware: '2.1.0', reason: 'manual' });
    expect(rows.find((d) => d.id === `${group}-line4`)).toMatchObject({
      kind: 'sparkplug.node',
      via: `sparkplug:${group}/line4`,
      reason: 'manual',
    });
    for (const d of rows) expect(app.fleet.has(d.id)).toBe(false);
  }, 30_000);

  it('adopts each through the same call; the fleet rows say their convention', async () => {
    for (const id of [homieId, `${group}-line4`, ownId]) {
      const row = await call<DeviceRow>('adopt', { id });
      expect(row.id).toBe(id);
    }
    const press = `${group}-line4-press2`;
    for (const deadline = Date.now() + 10_000; !(await discovered()).some((d) => d.id === press); ) {
      if (Date.now() > deadline) throw new Error('the adopted node’s device was never listed');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await discovered()).find((d) => d.id === press)).toMatchObject({
      convention: 'sparkplug',
      kind: 'sparkplug.device',
    });
    expect((await call<DeviceRow>('adopt', { id: press })).convention).toBe('sparkplug');
    expect(app.fleet.has(homieId)).toBe(true);
    expect(app.fleet.has(`${group}-line4`)).toBe(true);
    const rows = await call<{ items: DeviceRow[] }>('devices', { limit: 100 });
    const conventionOf = (id: string) => rows.items.find((r) => r.id === id)?.convention ?? 'own';
    expect(conventionOf(homieId)).toBe('homie');
    expect(conventionOf(`${group}-line4`)).toBe('sparkplug');
    expect(conventionOf(ownId)).toBe('own');
    expect(rows.items.find((r) => r.id === ownId)).not.toHaveProperty('convention');
    const left = (await discovered()).map((d) => d.id);
    expect(left).not.toContain(homieId);
    expect(left).not.toContain(ownId);
    // Adopting what no convention lists says so.
    const r = await api.call('adopt', { id: 'nobody-here' });
    expect(r.ok ? 'ok' : r.error.code).toBe('notFound');
  }, 30_000);
});
