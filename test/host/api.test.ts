/**
 * The host API over the real app: embedded broker, simulated demo devices over MQTT, the fleet on
 * a real SQLite file. What the views rely on: the tree, device rows and details, envelopes for
 * every error, bulk actions with per-device results, killing a process and watching it return,
 * and a push stream that coalesces and resyncs a client that falls behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { DeviceDetail, DeviceRow, Page, PushMessage, TreeNode } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { waitFor } from '../transports/helpers.js';

let dir: string;
let app: App;
let api: HostApiHandle;
const ids = ['demo-m001', 'demo-m002', 'demo-m003'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-api-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 3, serial: 0, telemetryIntervalMs: 100 },
  });
  api = createHostApi(app, { resyncAfterMs: 300 });
  await waitFor(
    () => ids.every((id) => app.fleet.device(id)?.state === 'connected'),
    10_000,
    'demo connected',
  );
});

afterAll(async () => {
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function ok<T>(method: string, args: unknown): Promise<T> {
  const r = await api.call(method, args);
  if (!r.ok) throw new Error(`${method} failed: ${r.error.code} ${r.error.message}`);
  return r.value as T;
}

function find(node: TreeNode, pred: (n: TreeNode) => boolean): TreeNode | undefined {
  if (pred(node)) return node;
  for (const c of node.children ?? []) {
    const f = find(c, pred);
    if (f) return f;
  }
  return undefined;
}

describe('host API', () => {
  it('shows the supervision tree: links with the MQTT link, devices with a supervisor and machine each', async () => {
    const tree = await ok<TreeNode>('tree', {});
    // The root is the app's real root supervisor; its children newest first, as OTP lists them.
    expect(tree).toMatchObject({ type: 'supervisor', pid: app.supervisor.pid, strategy: 'oneForOne' });
    expect(tree.children?.map((c) => c.childId)).toEqual(['links', 'devices', 'broker']);
    expect(find(tree, (n) => n.childId === 'mqtt')).toMatchObject({ type: 'worker', status: 'running' });
    const sup = find(tree, (n) => n.name === 'device:demo-m001');
    expect(sup).toMatchObject({ type: 'supervisor', strategy: 'restForOne', intensity: { maxRestarts: 3 } });
    expect(sup?.children?.[0]).toMatchObject({
      childId: 'machine',
      state: 'connected',
      deviceId: 'demo-m001',
    });
  });

  it('shows a device that reports a parent (a Sparkplug device) inside its parent’s node', async () => {
    await app.fleet.reportStatus('demo-m002', { parent: 'demo-m001' });
    try {
      const tree = await ok<TreeNode>('tree', {});
      const devices = tree.children?.find((c) => c.childId === 'devices');
      expect(devices?.children?.map((c) => c.deviceId)).not.toContain('demo-m002');
      const parent = find(tree, (n) => n.name === 'device:demo-m001');
      expect(parent?.children?.map((c) => c.name)).toEqual(['demo-m001', 'device:demo-m002']);
    } finally {
      await app.fleet.reportStatus('demo-m002', { parent: null });
    }
  });

  it('lists devices with filters and paging, and one device in detail', async () => {
    const page = await ok<Page<DeviceRow>>('devices', { text: 'm00', limit: 2 });
    expect(page.items.map((d) => d.id)).toEqual(['demo-m001', 'demo-m002']);
    expect(page.total).toBe(3);
    expect(page.next).toBe(2);
    expect((await ok<Page<DeviceRow>>('devices', { state: 'disconnected' })).items).toEqual([]);
    const d = await ok<DeviceDetail>('device', { id: 'demo-m002' });
    expect(d).toMatchObject({ state: 'connected', firmware: '1.0.0', link: { up: true, via: 'mqtt' } });
    expect(d.timers.map((t) => t.key)).toContain('liveness');
    expect(d.timers[0]!.deadline).toBeGreaterThan(Date.now());
    expect(d.machine?.states.map((s) => s.path)).toEqual(['disconnected', 'connecting', 'connected']);
    expect(d.machine?.states[0]).toMatchObject({ initial: true });
    expect(d.actions.map((a) => a.name)).toEqual(
      expect.arrayContaining(['reboot', 'identify', 'setInterval']),
    );
  });

  it('answers every error in an envelope, naming the problem', async () => {
    expect(await api.call('nope', {})).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(await api.call('devices', { limit: -1 })).toMatchObject({
      ok: false,
      error: { code: 'badRequest', message: expect.stringContaining('limit') },
    });
    expect(await api.call('device', { id: 'ghost' })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    expect(await api.call('device', { id: 'demo-m001', extra: 1 })).toMatchObject({
      ok: false,
      error: { code: 'badRequest' },
    });
    expect(await api.call('killProcess', { pid: 999_999 })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
  });

  it('a command refused by the command tracker answers its own code, unchanged (one closed set)', async () => {
    const results = await ok<{ id: string; ok: boolean; error?: { code: string; message: string } }[]>(
      'act',
      {
        ids: ['demo-m001'],
        action: 'setInterval',
        args: { ms: 5 },
      },
    );
    expect(results[0]).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringContaining('ms') },
    });
    const big = await ok<{ id: string; ok: boolean; error?: { code: string } }[]>('act', {
      ids: ['demo-m001'],
      action: 'setConfig',
      args: { blob: 'x'.repeat(20_000) },
    });
    expect(big[0]).toMatchObject({ ok: false, error: { code: 'badArgs' } });
  });

  it('sends an action to several devices and gives each one’s result', async () => {
    const results = await ok<{ id: string; ok: boolean; error?: { code: string } }[]>('act', {
      ids: ['demo-m001', 'demo-m003', 'ghost'],
      action: 'setInterval',
      args: { ms: 200 },
    });
    expect(results.map((r) => [r.id, r.ok])).toEqual([
      ['demo-m001', true],
      ['demo-m003', true],
      ['ghost', false],
    ]);
    expect(results[2]!.error?.code).toBe('notFound');
    await waitFor(
      () => app.sim!.mqtt.filter((s) => s.device.intervalMs === 200).length === 2,
      5000,
      'applied',
    );
  });

  it('kills a device’s process; it comes back in its state with one more restart', async () => {
    const tree = await ok<TreeNode>('tree', {});
    const machine = find(tree, (n) => n.deviceId === 'demo-m003' && n.childId === 'machine')!;
    const before = app.fleet.device('demo-m003')!.restarts;
    expect(await ok('killProcess', { pid: machine.pid })).toEqual({ killed: machine.pid });
    await waitFor(() => app.fleet.device('demo-m003')!.restarts === before + 1, 5000, 'restarted');
    expect(app.fleet.device('demo-m003')!.state).toBe('connected');
  });

  it('the embedded broker is a child of the root: a kill restarts it on the same URL and the devices come back', async () => {
    const tree = await ok<TreeNode>('tree', {});
    const broker = find(tree, (n) => n.key === 'fleetvisor/broker')!;
    expect(broker).toMatchObject({ type: 'worker', status: 'running', restartType: 'permanent' });
    expect(await ok('killProcess', { pid: broker.pid })).toEqual({ killed: broker.pid });
    await waitFor(
      () => {
        const now = app.supervisor.whichChildren().find((c) => c.id === 'broker');
        return now?.status === 'running' && now.pid !== broker.pid;
      },
      10_000,
      'broker restarted',
    );
    expect(app.broker?.url).toBe(app.brokerUrl);
    const after = find(await ok<TreeNode>('tree', {}), (n) => n.key === 'fleetvisor/broker')!;
    expect(after).toMatchObject({ restarts: 1, reason: 'killed', status: 'running' });
    await waitFor(
      () => ids.every((id) => app.fleet.device(id)?.link.up && app.fleet.device(id)?.state === 'connected'),
      20_000,
      'devices back on the restarted broker',
    );
  }, 30_000);

  it('refuses to kill what the root cannot restart (links, devices, the root itself)', async () => {
    const tree = await ok<TreeNode>('tree', {});
    for (const key of ['fleetvisor/links', 'fleetvisor/devices', 'fleetvisor']) {
      const n = find(tree, (x) => x.key === key)!;
      const r = await api.call('killProcess', { pid: n.pid });
      expect(r).toMatchObject({ ok: false, error: { code: 'notAllowed' } });
    }
    expect(app.supervisor.alive).toBe(true);
  });

  it('a device whose supervisor gave up stays in the tree, failed, with the reason', async () => {
    const id = 'demo-m002';
    for (let i = 0; i < 4; i++) {
      const machine = find(
        await ok<TreeNode>('tree', {}),
        (n) => n.deviceId === id && n.childId === 'machine',
      );
      if (!machine?.pid) break;
      await ok('killProcess', { pid: machine.pid });
      await waitFor(
        () => {
          const d = app.fleet.device(id);
          return d?.health === 'failed' || d?.restarts === i + 1;
        },
        5000,
        `kill ${i + 1} handled`,
      );
    }
    await waitFor(() => app.fleet.device(id)?.health === 'failed', 5000, 'device failed');
    const node = find(await ok<TreeNode>('tree', {}), (n) => n.key === `fleetvisor/devices/${id}`);
    expect(node).toMatchObject({ status: 'failed', pid: null, deviceId: id, name: `device:${id}` });
    expect(node?.reason).toContain('crashLoop');
    expect(node?.reason).toContain('killed');
    await ok('restartDevice', { id });
    const back = find(await ok<TreeNode>('tree', {}), (n) => n.key === `fleetvisor/devices/${id}`);
    expect(back?.status).toBe('running');
  }, 30_000);

  it('pushes the tree on state transitions, not only when processes start or exit', async () => {
    const id = 'demo-m001';
    const got: PushMessage[] = [];
    const close = api.openStream({ send: (m) => got.push(m), congested: () => false });
    const treeState = (m: PushMessage) => {
      const tree = m.type === 'resync' ? undefined : m.tree;
      return tree ? find(tree, (n) => n.deviceId === id && n.childId === 'machine')?.state : undefined;
    };
    try {
      const processEvents: string[] = [];
      const off = app.runtime.events.subscribe((e) => {
        if ((e.type === 'process.started' || e.type === 'process.exited') && e.name.includes(id))
          processEvents.push(e.type);
      });
      app.sim!.mqtt.find((s) => s.id === id)!.dropLink(4000);
      await waitFor(
        () => got.some((m) => treeState(m) === 'disconnected'),
        10_000,
        'tree shows disconnected',
      );
      await waitFor(
        () => got.at(-1) !== undefined && app.fleet.device(id)?.state === 'connected',
        15_000,
        'back',
      );
      await waitFor(
        () =>
          got.some(
            (m, i) =>
              i > 0 &&
              treeState(m) === 'connected' &&
              got.slice(0, i).some((x) => treeState(x) === 'disconnected'),
          ),
        10_000,
        'tree shows connected again',
      );
      off();
      // No process of that device started or exited: the states came with the transitions.
      expect(processEvents).toEqual([]);
    } finally {
      close();
    }
  }, 40_000);

  it('pushes a snapshot, then coalesced diffs with telemetry', async () => {
    const got: PushMessage[] = [];
    const close = api.openStream({ send: (m) => got.push(m), congested: () => false });
    try {
      expect(got[0]).toMatchObject({ type: 'snapshot', seq: 1 });
      if (got[0]?.type === 'snapshot')
        expect(got[0].devices.map((d) => d.id)).toEqual(expect.arrayContaining(ids));
      await waitFor(
        () => got.some((m) => m.type === 'diff' && m.telemetry.length > 0),
        5000,
        'telemetry diff',
      );
      const t0 = Date.now();
      const start = got.length;
      await new Promise((r) => setTimeout(r, 1000));
      const perSecond = ((got.length - start) * 1000) / (Date.now() - t0);
      expect(perSecond).toBeLessThanOrEqual(21);
      const seqs = got.map((m) => (m.type === 'resync' ? 0 : m.seq));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    } finally {
      close();
    }
  });

  it('sends nothing to a congested client, tells it to resync, then sends a fresh snapshot', async () => {
    const got: PushMessage[] = [];
    let congested = false;
    const close = api.openStream({ send: (m) => got.push(m), congested: () => congested });
    try {
      congested = true;
      const sentBefore = got.length;
      await waitFor(() => got.some((m) => m.type === 'resync'), 5000, 'resync');
      // Nothing but the resync while congested: telemetry kept flowing meanwhile.
      expect(got.slice(sentBefore).map((m) => m.type)).toEqual(['resync']);
      congested = false;
      await waitFor(() => got.at(-1)?.type === 'snapshot', 5000, 'fresh snapshot');
    } finally {
      close();
    }
  });
});
