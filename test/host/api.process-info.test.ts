/**
 * `processInfo` on the real app (embedded broker, simulated demo devices over MQTT, SQLite): a
 * device machine's state, mailbox, timers and snapshot size; a kill, then the timeline says when
 * and why it ended and that its supervisor restarted it; a terminate and restart through the API
 * show as a stop and a start; a stopped child is still described; bad arguments are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { ProcessInfo, TreeNode } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { waitFor } from '../transports/helpers.js';

let dir: string;
let app: App;
let api: HostApiHandle;
const ids = ['demo-m001', 'demo-m002'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-process-info-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 200 },
    conventions: [],
  });
  api = createHostApi(app);
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

/** The device's supervisor pid and its machine's pid, from the tree. */
async function pidsOf(id: string): Promise<{ supervisor: number; machine: number | null }> {
  const tree = await ok<TreeNode>('tree', {});
  const sup = find(tree, (n) => n.name === `device:${id}`)!;
  return { supervisor: sup.pid!, machine: sup.children!.find((c) => c.childId === 'machine')!.pid };
}

describe('processInfo', () => {
  it('describes a device machine: state, mailbox, timers, snapshot size, no exit yet', async () => {
    const { supervisor, machine } = await pidsOf('demo-m001');
    const info = await ok<ProcessInfo>('processInfo', { supervisorPid: supervisor, childId: 'machine' });
    expect(info).toMatchObject({
      pid: machine,
      name: 'demo-m001',
      kind: 'statem',
      type: 'worker',
      status: 'running',
      supervisor: { pid: supervisor, name: 'device:demo-m001' },
      childId: 'machine',
      restartType: 'permanent',
      restarts: 0,
      deviceId: 'demo-m001',
      state: 'connected',
      hibernating: false,
      lastExit: null,
      timeline: [],
    });
    // xstate handles an event when it is sent: a machine's mailbox never holds one between turns.
    expect(info.mailbox.length).toBe(0);
    expect(info.mailbox.note).toContain('synchronously');
    // The liveness deadline the fleet keeps armed in the connected state, with the event it sends.
    const liveness = info.timers.find((t) => t.kind === 'named' && t.key === 'liveness');
    expect(liveness?.event).toBeTruthy();
    expect(liveness!.deadline).toBeGreaterThan(Date.now() - 1000);
    expect(info.timers.length).toBe(app.runtime.timers.ownedBy(machine!).length);
    // Its snapshot as JSON (the context moves with telemetry: about the size measured here).
    const persisted = Buffer.byteLength(JSON.stringify(machineOf('demo-m001')));
    expect(info.memory.bytes).toBeGreaterThan(persisted / 2);
    expect(info.memory.bytes).toBeLessThan(persisted * 2);
    expect(info.memory.note).toContain('snapshot');
    // Asked by pid, the same process.
    const byPid = await ok<ProcessInfo>('processInfo', { pid: machine });
    expect(byPid).toMatchObject({ pid: machine, name: 'demo-m001', state: 'connected' });
  });

  it('a supervisor says its mailbox and has no measurable memory', async () => {
    const { supervisor } = await pidsOf('demo-m001');
    const info = await ok<ProcessInfo>('processInfo', { pid: supervisor });
    expect(info).toMatchObject({ kind: 'supervisor', type: 'supervisor', name: 'device:demo-m001' });
    expect(info.supervisor?.name).toBe('devices');
    expect(info.mailbox.length).toBe(0);
    expect(info.memory).toMatchObject({ bytes: null });
    expect(info.memory.note).toContain('not measurable');
    const root = await ok<ProcessInfo>('processInfo', { pid: app.supervisor.pid });
    expect(root).toMatchObject({ supervisor: null, childId: null, kind: 'supervisor', status: 'running' });
  });

  it('after a kill, the timeline says when and why it ended and that its supervisor restarted it', async () => {
    const before = await pidsOf('demo-m002');
    const killedAt = Date.now();
    await ok('killProcess', { pid: before.machine });
    await waitFor(
      () =>
        app.fleet.device('demo-m002')?.restarts === 1 && app.fleet.device('demo-m002')?.health === 'running',
      5000,
      'machine restarted',
    );
    const after = await pidsOf('demo-m002');
    expect(after.machine).not.toBe(before.machine);
    const info = await ok<ProcessInfo>('processInfo', {
      supervisorPid: after.supervisor,
      childId: 'machine',
    });
    expect(info).toMatchObject({ pid: after.machine, restarts: 1, status: 'running' });
    expect(info.timeline).toHaveLength(1);
    const [entry] = info.timeline;
    expect(entry).toMatchObject({
      pid: before.machine,
      kind: 'crash',
      reason: 'killed',
      replacedBy: { pid: after.machine, by: 'restart', restartsInWindow: 1, maxRestarts: 3 },
    });
    expect(entry!.at).toBeGreaterThanOrEqual(killedAt);
    expect(entry!.replacedBy!.at).toBeGreaterThanOrEqual(entry!.at);
    expect(info.lastExit).toMatchObject({ reason: 'killed', type: 'killed', detail: null, at: entry!.at });
  });

  it('a terminate and a restart through the API show as a stop and a start; a stopped child is described', async () => {
    const { supervisor, machine } = await pidsOf('demo-m002');
    await ok('terminateChild', { supervisorPid: supervisor, childId: 'machine' });
    const stopped = await ok<ProcessInfo>('processInfo', {
      supervisorPid: supervisor,
      childId: 'machine',
      pid: machine,
    });
    expect(stopped).toMatchObject({
      pid: null,
      kind: null,
      name: 'demo-m002',
      status: 'stopped',
      lastExit: { reason: 'shutdown', type: 'shutdown' },
      mailbox: { length: null },
      timers: [],
    });
    expect(stopped.timeline.at(-1)).toMatchObject({ pid: machine, kind: 'stop', reason: 'shutdown' });
    expect(stopped.timeline.at(-1)?.replacedBy).toBeUndefined();
    const restarted = await ok<{ pid: number }>('restartChild', {
      supervisorPid: supervisor,
      childId: 'machine',
    });
    const info = await ok<ProcessInfo>('processInfo', { supervisorPid: supervisor, childId: 'machine' });
    expect(info.pid).toBe(restarted.pid);
    expect(info.timeline).toHaveLength(2);
    expect(info.timeline.at(-1)).toMatchObject({
      pid: machine,
      replacedBy: { pid: restarted.pid, by: 'start' },
    });
  });

  it('refuses what names no process', async () => {
    const none = await api.call('processInfo', {});
    expect(none).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    const missing = await api.call('processInfo', { pid: 999_999 });
    expect(missing).toMatchObject({ ok: false, error: { code: 'notFound' } });
    const { supervisor } = await pidsOf('demo-m001');
    const child = await api.call('processInfo', { supervisorPid: supervisor, childId: 'nope' });
    expect(child).toMatchObject({ ok: false, error: { code: 'notFound' } });
  });
});

/** The machine's persisted state, as the API measures it. */
function machineOf(id: string): unknown {
  const sup = app.fleet.supervisor.whichChildren().find((c) => c.id === id)?.process as
    | { whichChildren(): { id: string; process?: { persistedState(): unknown } }[] }
    | undefined;
  return sup
    ?.whichChildren()
    .find((c) => c.id === 'machine')
    ?.process?.persistedState();
}
